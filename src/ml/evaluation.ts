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
  /** Share of images decided INCONCLUSIVE. */
  inconclusiveRate: number;
  /** Share of images the out-of-distribution guard refused (NOT_AN_EYE); 0 without a guard. */
  notAnEyeRate: number;
  /** Accuracy over the decided (FEMALE or MALE) images. */
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

/** NOT_AN_EYE: the out-of-distribution guard refused the input (never FEMALE or MALE then). */
export type Decision = 'FEMALE' | 'MALE' | 'INCONCLUSIVE' | 'NOT_AN_EYE';

export function decide(pMale: number, t: Pick<Thresholds, 'female' | 'male'>): Decision {
  if (pMale >= t.male && pMale >= 0.5) return 'MALE';
  if (pMale <= t.female && pMale < 0.5) return 'FEMALE';
  return 'INCONCLUSIVE';
}

/**
 * Metrics of P(male) against labels. Decisions come from the band, or from `decisions` when given
 * (e.g. cross-fitted thresholds, or the guard's NOT_AN_EYE); INCONCLUSIVE and NOT_AN_EYE are
 * both undecided.
 */
export function evaluate(pMale: ArrayLike<number>, labels: ArrayLike<number>, thresholds: Pick<Thresholds, 'female' | 'male'>, decisions?: ArrayLike<Decision>): EvaluationMetrics {
  const n = labels.length;
  let tf = 0, fm = 0, mf = 0, mm = 0, decided = 0, decidedRight = 0, inconclusive = 0, refused = 0;
  for (let i = 0; i < n; i++) {
    const pred = pMale[i] >= 0.5 ? 1 : 0;
    if (labels[i]) { if (pred) mm++; else mf++; } else if (pred) fm++; else tf++;
    const d = decisions ? decisions[i] : decide(pMale[i], thresholds);
    if (d === 'INCONCLUSIVE') inconclusive++;
    else if (d === 'NOT_AN_EYE') refused++;
    if (d === 'FEMALE' || d === 'MALE') {
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
    inconclusiveRate: div(inconclusive, n),
    notAnEyeRate: div(refused, n),
    decidedAccuracy: div(decidedRight, decided),
  };
}

/** Wilson score interval of a proportion k/n (95% by default). */
export function wilsonInterval(k: number, n: number, z = 1.96): [number, number] {
  if (n <= 0) return [Number.NaN, Number.NaN];
  const p = k / n, z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * Percentile bootstrap interval of a statistic, resampling whole groups (people) with replacement
 * so that images of one person move together. `stat` gets the resampled item indices.
 */
export function groupBootstrap(groups: readonly string[], stat: (indices: number[]) => number, opts: { resamples?: number; seed?: number; level?: number } = {}): [number, number] {
  const byGroup = new Map<string, number[]>();
  groups.forEach((g, i) => { const a = byGroup.get(g); if (a) a.push(i); else byGroup.set(g, [i]); });
  const members = [...byGroup.values()];
  let state = (opts.seed ?? 12345) >>> 0;
  const rand = () => { state = (state + 0x6d2b79f5) >>> 0; let t = state; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const values: number[] = [];
  for (let b = 0; b < (opts.resamples ?? 400); b++) {
    const idx: number[] = [];
    for (let k = 0; k < members.length; k++) idx.push(...members[Math.floor(rand() * members.length)]);
    const v = stat(idx);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const alpha = (1 - (opts.level ?? 0.95)) / 2;
  const at = (q: number) => values[Math.min(values.length - 1, Math.max(0, Math.round(q * (values.length - 1))))];
  return values.length ? [at(alpha), at(1 - alpha)] : [Number.NaN, Number.NaN];
}

export interface MetricIntervals {
  /** 95% intervals: Wilson for proportions, group (person) bootstrap for ECE, AUC and the recall gap. */
  accuracy: [number, number];
  recallFemale: [number, number];
  recallMale: [number, number];
  decidedAccuracy: [number, number];
  inconclusiveRate: [number, number];
  ece: [number, number];
  auc: [number, number];
  recallGap: [number, number];
  method: string;
}

/** Confidence intervals for the main metrics (see MetricIntervals). */
export function metricIntervals(m: EvaluationMetrics, pMale: ArrayLike<number>, labels: ArrayLike<number>, groups: readonly string[], decisions: ArrayLike<Decision>): MetricIntervals {
  const [[tf, fm], [mf, mm]] = m.confusionMatrix.matrix;
  let decided = 0, decidedRight = 0, undecided = 0;
  for (let i = 0; i < labels.length; i++) {
    const d = decisions[i];
    if (d === 'FEMALE' || d === 'MALE') { decided++; if ((d === 'MALE' ? 1 : 0) === labels[i]) decidedRight++; } else if (d === 'INCONCLUSIVE') undecided++;
  }
  const sub = (idx: number[]) => ({ p: idx.map((i) => pMale[i]), l: idx.map((i) => labels[i]) });
  const recallGap = (idx: number[]) => {
    let f = 0, fr = 0, ml = 0, mr = 0;
    for (const i of idx) { const pred = pMale[i] >= 0.5 ? 1 : 0; if (labels[i]) { ml++; if (pred) mr++; } else { f++; if (!pred) fr++; } }
    return Math.abs(mr / ml - fr / f);
  };
  return {
    accuracy: wilsonInterval(tf + mm, m.n),
    recallFemale: wilsonInterval(tf, tf + fm),
    recallMale: wilsonInterval(mm, mf + mm),
    decidedAccuracy: wilsonInterval(decidedRight, decided),
    inconclusiveRate: wilsonInterval(undecided, m.n),
    ece: groupBootstrap(groups, (idx) => { const s = sub(idx); return expectedCalibrationError(s.p, s.l); }),
    auc: groupBootstrap(groups, (idx) => { const s = sub(idx); return rocAuc(s.p, s.l); }, { resamples: 200 }),
    recallGap: groupBootstrap(groups, recallGap),
    method: 'Wilson 95% for proportions; 95% percentile bootstrap resampling people (groups) for ECE, AUC and |recall F - recall M|',
  };
}
