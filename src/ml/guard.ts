/**
 * Out-of-distribution guard: does an input look like the eye crops the model was trained on?
 * Fitted at training time on the network's penultimate features (global average pool):
 *  - a Mahalanobis distance to the training eyes (shrunk covariance), and
 *  - a logistic eye / not-eye head on the standardised features plus that distance, trained on the
 *    training eyes (clean and augmented) against synthetic non-eyes (negatives.ts).
 * The guard score is the head's logit (higher = more eye-like); an input scoring below the
 * threshold is NOT_AN_EYE. The threshold is the `eyeRefusal` quantile of validation-eye scores.
 */
export const GUARD_METHOD = 'penultimate-features: logistic eye/not-eye head on standardised features + log Mahalanobis distance';

export interface GuardParams {
  method: string;
  dim: number;
  /** Standardisation of the features (training eyes). */
  mean: number[];
  std: number[];
  /** Lower-triangular Cholesky factor (row-major dim x dim) of the shrunk covariance of standardised features. */
  cholesky: number[];
  /** Standardisation of log(d^2). */
  logDistMean: number;
  logDistStd: number;
  /** Head: logit = weights . [z, logDist] + bias. */
  weights: number[];
  bias: number;
  /** NOT_AN_EYE when score < threshold. */
  threshold: number;
}

/** Rates the guard reached when it was fitted (stored in the bundle meta and the model card). */
export interface GuardSummary {
  method: string;
  threshold: number;
  /** Target share of validation eyes refused when the threshold was chosen. */
  eyeRefusalTarget: number;
  negativesUsed: number;
  negativeKinds: string[];
  [figure: string]: unknown;
}

function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) l[i * n + i] = Math.sqrt(Math.max(s, 1e-9));
      else l[i * n + j] = s / l[j * n + j];
    }
  }
  return l;
}

/** Standardised features and log squared Mahalanobis distance of n feature rows. */
function transform(p: Pick<GuardParams, 'dim' | 'mean' | 'std' | 'cholesky'>, features: Float32Array | Float64Array, n: number): { z: Float64Array; logDist: Float64Array } {
  const d = p.dim;
  const z = new Float64Array(n * d), logDist = new Float64Array(n), y = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) z[i * d + k] = (features[i * d + k] - p.mean[k]) / p.std[k];
    // Forward substitution L y = z: d^2 = |y|^2.
    let d2 = 0;
    for (let r = 0; r < d; r++) {
      let s = z[i * d + r];
      for (let k = 0; k < r; k++) s -= p.cholesky[r * d + k] * y[k];
      y[r] = s / p.cholesky[r * d + r];
      d2 += y[r] * y[r];
    }
    logDist[i] = Math.log(d2 + 1e-6);
  }
  return { z, logDist };
}

/** Guard scores (head logits; higher = more eye-like) of n feature rows. */
export function guardScores(p: GuardParams, features: Float32Array | Float64Array, n: number): Float64Array {
  const { z, logDist } = transform(p, features, n);
  const out = new Float64Array(n), d = p.dim;
  for (let i = 0; i < n; i++) {
    let s = p.bias + p.weights[d] * (logDist[i] - p.logDistMean) / p.logDistStd;
    for (let k = 0; k < d; k++) s += p.weights[k] * z[i * d + k];
    out[i] = s;
  }
  return out;
}

/** The q-quantile (linear interpolation) of values. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const a = Float64Array.from(values).sort();
  if (a.length === 0) return Number.NaN;
  const pos = Math.min(a.length - 1, Math.max(0, q * (a.length - 1)));
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}

export interface GuardFitInput {
  dim: number;
  /** Features of eye crops (training split, clean and augmented). */
  eyes: Float32Array;
  eyeCount: number;
  /** Features of synthetic non-eyes. */
  negatives: Float32Array;
  negativeCount: number;
  /** Features of the validation eyes: the threshold is their `eyeRefusal` quantile. */
  validationEyes: Float32Array;
  validationCount: number;
  eyeRefusal: number;
  /** L2 penalty of the head (default 1e-3). */
  l2?: number;
  iterations?: number;
}

/** Fit the guard (pure arithmetic, deterministic). */
export function fitGuard(input: GuardFitInput): GuardParams {
  const d = input.dim, n = input.eyeCount;
  const mean = new Array<number>(d).fill(0), std = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mean[k] += input.eyes[i * d + k] / n;
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) std[k] += (input.eyes[i * d + k] - mean[k]) ** 2 / n;
  for (let k = 0; k < d; k++) std[k] = Math.sqrt(std[k]) + 1e-3;
  // Covariance of the standardised eye features, shrunk 10% towards the identity.
  const cov = new Float64Array(d * d), z = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) z[k] = (input.eyes[i * d + k] - mean[k]) / std[k];
    for (let a = 0; a < d; a++) { const za = z[a]; for (let b = 0; b <= a; b++) cov[a * d + b] += za * z[b]; }
  }
  const shrink = 0.1;
  for (let a = 0; a < d; a++) for (let b = 0; b <= a; b++) {
    const v = (1 - shrink) * cov[a * d + b] / n + (a === b ? shrink : 0);
    cov[a * d + b] = v; cov[b * d + a] = v;
  }
  const chol = Array.from(cholesky(cov, d));
  const base = { dim: d, mean, std, cholesky: chol };
  const pos = transform(base, input.eyes, n);
  const neg = transform(base, input.negatives, input.negativeCount);
  let ldMean = 0, ldVar = 0;
  for (let i = 0; i < n; i++) ldMean += pos.logDist[i] / n;
  for (let i = 0; i < n; i++) ldVar += (pos.logDist[i] - ldMean) ** 2 / n;
  const ldStd = Math.sqrt(ldVar) + 1e-6;
  // Logistic head, full-batch Adam, classes weighted equally.
  const rows: Array<{ z: Float64Array; off: number; ld: number; y: number; w: number }> = [];
  for (let i = 0; i < n; i++) rows.push({ z: pos.z, off: i * d, ld: (pos.logDist[i] - ldMean) / ldStd, y: 1, w: 0.5 / n });
  for (let i = 0; i < input.negativeCount; i++) rows.push({ z: neg.z, off: i * d, ld: (neg.logDist[i] - ldMean) / ldStd, y: 0, w: 0.5 / input.negativeCount });
  const D = d + 1, w = new Float64Array(D + 1); // last = bias
  const m = new Float64Array(D + 1), v = new Float64Array(D + 1), g = new Float64Array(D + 1);
  const l2 = input.l2 ?? 1e-3, lr = 0.05, iters = input.iterations ?? 400;
  for (let t = 1; t <= iters; t++) {
    g.fill(0);
    for (const r of rows) {
      let s = w[D] + w[d] * r.ld;
      for (let k = 0; k < d; k++) s += w[k] * r.z[r.off + k];
      const p = s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
      const e = (p - r.y) * r.w;
      for (let k = 0; k < d; k++) g[k] += e * r.z[r.off + k];
      g[d] += e * r.ld; g[D] += e;
    }
    for (let k = 0; k < D; k++) g[k] += l2 * w[k];
    for (let k = 0; k <= D; k++) {
      m[k] = 0.9 * m[k] + 0.1 * g[k];
      v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k];
      w[k] -= (lr * (m[k] / (1 - 0.9 ** t))) / (Math.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8);
    }
  }
  const params = compactGuard({
    method: GUARD_METHOD, ...base, logDistMean: ldMean, logDistStd: ldStd,
    weights: Array.from(w.subarray(0, D)), bias: w[D], threshold: 0,
  });
  params.threshold = quantile(guardScores(params, input.validationEyes, input.validationCount), input.eyeRefusal);
  return params;
}

/** Share of scores below the threshold (refused). */
export function refusalRate(scores: ArrayLike<number>, threshold: number): number {
  let k = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] < threshold) k++;
  return scores.length ? k / scores.length : Number.NaN;
}

/** Round the stored numbers (7 significant digits) so the bundle header stays small. */
export function compactGuard(p: GuardParams): GuardParams {
  const r = (x: number) => Number(x.toPrecision(7));
  return { ...p, mean: p.mean.map(r), std: p.std.map(r), cholesky: p.cholesky.map(r), weights: p.weights.map(r) };
}
