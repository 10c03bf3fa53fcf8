/**
 * Evaluation of a binary classifier from logits (log-odds of MALE): accuracy, per-class recall and
 * precision, ROC AUC, confusion matrix, expected calibration error, temperature scaling, and the
 * INCONCLUSIVE band's thresholds.
 */
export interface Thresholds {
  /** Decide FEMALE when P(male) <= female (i.e. P(female) >= 1 - female). */
  female: number;
  /** Decide MALE when P(male) >= male. Between the two: INCONCLUSIVE. */
  male: number;
  /** Accuracy the decisions outside the band reached on validation when the thresholds were chosen. */
  targetAccuracy: number;
}

export interface Calibration { method: 'temperature'; temperature: number; eceBefore: number; eceAfter: number; nllBefore: number; nllAfter: number }

export interface EvaluationMetrics {
  n: number;
  nFemale: number;
  nMale: number;
  accuracy: number;
  recallFemale: number;
  recallMale: number;
  precisionFemale: number;
  precisionMale: number;
  auc: number;
  ece: number;
  logLoss: number;
  /** rows: true class (FEMALE, MALE); columns: predicted class (FEMALE, MALE), at P = 0.5. */
  confusionMatrix: { labels: ['FEMALE', 'MALE']; matrix: [[number, number], [number, number]] };
  inconclusiveRate: number;
  /** Accuracy over the decided (not INCONCLUSIVE) images. */
  decidedAccuracy: number;
}

export const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

export function probabilities(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const p = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) p[i] = sigmoid(logits[i] / temperature);
  return p;
}

export function logLoss(pMale: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, pMale[i]));
    s -= labels[i] ? Math.log(p) : Math.log(1 - p);
  }
  return s / Math.max(1, labels.length);
}

/** Expected calibration error over `bins` equal-width bins of the predicted class's confidence. */
export function expectedCalibrationError(pMale: ArrayLike<number>, labels: ArrayLike<number>, bins = 15): number {
  const count = new Float64Array(bins), conf = new Float64Array(bins), acc = new Float64Array(bins);
  for (let i = 0; i < labels.length; i++) {
    const p = pMale[i];
    const c = Math.max(p, 1 - p);
    const b = Math.min(bins - 1, Math.floor(((c - 0.5) / 0.5) * bins));
    count[b]++; conf[b] += c; acc[b] += (p >= 0.5 ? 1 : 0) === labels[i] ? 1 : 0;
  }
  let e = 0;
  for (let b = 0; b < bins; b++) if (count[b]) e += (count[b] / labels.length) * Math.abs(acc[b] / count[b] - conf[b] / count[b]);
  return e;
}

/** ROC AUC by the rank statistic (ties get average ranks). */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Float64Array(labels.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = r;
    i = j + 1;
  }
  let pos = 0, sumPos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]) { pos++; sumPos += ranks[i]; }
  const neg = labels.length - pos;
  if (!pos || !neg) return Number.NaN;
  return (sumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Fit a temperature T > 0 minimising the NLL of sigmoid(logit / T) (golden-section search on log T). */
export function fitTemperature(logits: ArrayLike<number>, labels: ArrayLike<number>): number {
  const nll = (logT: number) => logLoss(probabilities(logits, Math.exp(logT)), labels);
  let a = Math.log(0.05), b = Math.log(20);
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a), d = a + g * (b - a);
  let fc = nll(c), fd = nll(d);
  for (let it = 0; it < 60; it++) {
    if (fc < fd) { b = d; d = c; fd = fc; c = b - g * (b - a); fc = nll(c); }
    else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = nll(d); }
  }
  return Math.exp((a + b) / 2);
}

export function calibrate(logits: ArrayLike<number>, labels: ArrayLike<number>): Calibration {
  const temperature = fitTemperature(logits, labels);
  const before = probabilities(logits, 1), after = probabilities(logits, temperature);
  return {
    method: 'temperature', temperature,
    eceBefore: expectedCalibrationError(before, labels), eceAfter: expectedCalibrationError(after, labels),
    nllBefore: logLoss(before, labels), nllAfter: logLoss(after, labels),
  };
}

/**
 * Choose the band so that, on this (validation) data, MALE decisions (P(male) >= male) and FEMALE
 * decisions (P(male) <= female) each reach `targetAccuracy`, keeping as many images decided as
 * possible. Each side's threshold is the loosest one whose decisions (all images at least as
 * confident) are still at least that accurate; both sides stay on their side of 0.5.
 */
export function chooseThresholds(pMale: ArrayLike<number>, labels: ArrayLike<number>, targetAccuracy: number): Thresholds {
  const side = (cls: 0 | 1): number => {
    // confidence for this side: pMale for MALE, 1 - pMale for FEMALE
    const cand: Array<{ c: number; ok: number }> = [];
    for (let i = 0; i < labels.length; i++) {
      const c = cls ? pMale[i] : 1 - pMale[i];
      if (c >= 0.5) cand.push({ c, ok: labels[i] === cls ? 1 : 0 });
    }
    cand.sort((x, y) => y.c - x.c);
    let best = 1, right = 0;
    for (let k = 0; k < cand.length; k++) {
      right += cand[k].ok;
      // only cut between distinct confidence values
      if (k + 1 < cand.length && cand[k + 1].c === cand[k].c) continue;
      if (right / (k + 1) >= targetAccuracy) best = cand[k].c;
    }
    return Math.max(0.5, best);
  };
  const male = side(1);
  const female = 1 - side(0);
  return { female, male, targetAccuracy };
}

export type Decision = 'FEMALE' | 'MALE' | 'INCONCLUSIVE';

export function decide(pMale: number, t: Pick<Thresholds, 'female' | 'male'>): Decision {
  if (pMale >= t.male && pMale >= 0.5) return 'MALE';
  if (pMale <= t.female && pMale < 0.5) return 'FEMALE';
  return 'INCONCLUSIVE';
}

export function evaluate(pMale: ArrayLike<number>, labels: ArrayLike<number>, thresholds: Pick<Thresholds, 'female' | 'male'>): EvaluationMetrics {
  const n = labels.length;
  let tf = 0, fm = 0, mf = 0, mm = 0, decided = 0, decidedRight = 0;
  for (let i = 0; i < n; i++) {
    const pred = pMale[i] >= 0.5 ? 1 : 0;
    if (labels[i]) { if (pred) mm++; else mf++; } else if (pred) fm++; else tf++;
    const d = decide(pMale[i], thresholds);
    if (d !== 'INCONCLUSIVE') {
      decided++;
      if ((d === 'MALE' ? 1 : 0) === labels[i]) decidedRight++;
    }
  }
  const div = (a: number, b: number) => (b ? a / b : Number.NaN);
  return {
    n, nFemale: tf + fm, nMale: mf + mm,
    accuracy: div(tf + mm, n),
    recallFemale: div(tf, tf + fm), recallMale: div(mm, mf + mm),
    precisionFemale: div(tf, tf + mf), precisionMale: div(mm, mm + fm),
    auc: rocAuc(pMale, labels),
    ece: expectedCalibrationError(pMale, labels),
    logLoss: logLoss(pMale, labels),
    confusionMatrix: { labels: ['FEMALE', 'MALE'], matrix: [[tf, fm], [mf, mm]] },
    inconclusiveRate: div(n - decided, n),
    decidedAccuracy: div(decidedRight, decided),
  };
}
