/**
 * Batch normalisation in training mode as one kernel forward and one backward, for the wasm and
 * cpu backends. The stock layer computes it as moments (Mean, Sub, Square, Mean) followed by
 * FusedBatchNorm; on wasm every reduction over the leading axes transposes the whole activation
 * first, and the backward pass adds some thirty more small ops per layer. Profiled on the compact
 * network that was about a fifth of a training step (docs/performance.md, "Training"). Here each
 * direction is two passes over the activation in JS, reading and writing the backend's memory in
 * place (the wasm heap needs no copy).
 *
 * Same math as tfjs-layers' training branch: biased batch variance, y = (x - mean) / sqrt(var +
 * eps) * gamma + beta; the mean and variance are outputs too (the layer updates its moving
 * averages with them) and gradients flowing into them are honoured.
 */
import * as tf from '@tensorflow/tfjs';

export const BN_TRAIN = 'EyecaseBatchNormTraining';
export const BN_TRAIN_GRAD = 'EyecaseBatchNormTrainingGrad';

type Backend = tf.KernelBackend & {
  // wasm
  wasm?: { HEAPU8: Uint8Array };
  typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array;
  makeOutput?: (shape: number[], dtype: tf.DataType) => tf.TensorInfo;
  // cpu
  makeTensorInfo?: (shape: number[], dtype: tf.DataType, values?: Float32Array) => tf.TensorInfo;
};

/**
 * Allocate the outputs, then view inputs and outputs as Float32Arrays. On wasm, allocating can
 * grow the heap and detach earlier views, so every view is taken after the last allocation.
 */
function withBuffers(backend: Backend, inputs: tf.TensorInfo[], outShapes: number[][],
  body: (ins: Float32Array[], outs: Float32Array[]) => void): tf.TensorInfo[] {
  for (const t of inputs) if (t.dtype !== 'float32') throw new Error(`${BN_TRAIN}: float32 inputs only, got ${t.dtype}`);
  if (backend.typedArrayFromHeap && backend.makeOutput) {
    const outs = outShapes.map((s) => backend.makeOutput!(s, 'float32'));
    body(inputs.map((t) => backend.typedArrayFromHeap!(t)), outs.map((t) => backend.typedArrayFromHeap!(t)));
    return outs;
  }
  const outArrays = outShapes.map((s) => new Float32Array(tf.util.sizeFromShape(s)));
  body(inputs.map((t) => backend.readSync(t.dataId) as Float32Array), outArrays);
  return outShapes.map((s, i) => backend.makeTensorInfo!(s, 'float32', outArrays[i]));
}

// Loops run over blocks of ROWS rows, channel by channel inside a block: the per-channel
// accumulators and factors then live in registers, which measured 1.5-2.7x faster in V8 than
// indexing per-channel arrays for every element; the block stays in the L1 cache.
const ROWS = 64;

/**
 * Per-channel float64 sums over [rows, C]: s1 = sum(p - pShift), s2 = sum((p - pShift) * (q - qShift)).
 * The batch statistics (p = q = x) and the backward pass (p = dy, q = x) both reduce this way.
 */
function channelSums(p: Float32Array, pShift: ArrayLike<number> | null, q: Float32Array, qShift: ArrayLike<number>, C: number, s1: Float64Array, s2: Float64Array): void {
  for (let b = 0; b < p.length; b += ROWS * C) {
    const end = Math.min(p.length, b + ROWS * C);
    for (let c = 0; c < C; c++) {
      const pk = pShift ? pShift[c] : 0, qk = qShift[c];
      let a1 = 0, a2 = 0;
      for (let o = b + c; o < end; o += C) { const d = p[o] - pk; a1 += d; a2 += d * (q[o] - qk); }
      s1[c] += a1; s2[c] += a2;
    }
  }
}

/**
 * Per-channel mean and biased variance of x viewed as [rows, C], in one pass: sums of x - k and
 * (x - k)^2 with k the channel's first value (the shift keeps the difference of sums from
 * cancelling when the mean is large against the spread).
 */
function moments(x: Float32Array, C: number, mean: Float64Array, variance: Float64Array): void {
  const rows = x.length / C;
  const s1 = new Float64Array(C), s2 = new Float64Array(C);
  const first = x.subarray(0, C);
  channelSums(x, first, x, first, C, s1, s2);
  for (let c = 0; c < C; c++) {
    const m = s1[c] / rows;
    mean[c] = x[c] + m;
    variance[c] = Math.max(0, s2[c] / rows - m * m);
  }
}

/** out = a * p + b * q + k per channel (q optional), over [rows, C]. */
function affine(out: Float32Array, p: Float32Array, a: Float32Array, q: Float32Array | null, b: Float32Array | null, k: Float32Array, C: number): void {
  for (let s = 0; s < p.length; s += ROWS * C) {
    const end = Math.min(p.length, s + ROWS * C);
    for (let c = 0; c < C; c++) {
      const ac = a[c], kc = k[c];
      if (q && b) { const bc = b[c]; for (let o = s + c; o < end; o += C) out[o] = p[o] * ac + q[o] * bc + kc; }
      else for (let o = s + c; o < end; o += C) out[o] = p[o] * ac + kc;
    }
  }
}

type Inputs = Record<string, tf.TensorInfo>;

function forwardKernel({ inputs, attrs, backend }: { inputs: Inputs; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo[] {
  const { x, gamma, beta } = inputs;
  const eps = (attrs as unknown as { epsilon: number }).epsilon;
  const C = x.shape[x.shape.length - 1];
  return withBuffers(backend as Backend, [x, gamma, beta], [x.shape, [C], [C]], ([xv, g, b], [y, meanOut, varOut]) => {
    const mean = new Float64Array(C), variance = new Float64Array(C);
    moments(xv, C, mean, variance);
    const a = new Float32Array(C), s = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      a[c] = g[c] / Math.sqrt(variance[c] + eps);
      s[c] = b[c] - mean[c] * a[c];
      meanOut[c] = mean[c];
      varOut[c] = variance[c];
    }
    affine(y, xv, a, null, null, s, C);
  });
}

function gradKernel({ inputs, attrs, backend }: { inputs: Inputs; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo[] {
  const { dy, x, gamma, mean, variance, dMean, dVariance } = inputs;
  const eps = (attrs as unknown as { epsilon: number }).epsilon;
  const C = x.shape[x.shape.length - 1];
  return withBuffers(backend as Backend, [dy, x, gamma, mean, variance, dMean, dVariance], [x.shape, [C], [C]],
    ([g, xv, gm, mu, vr, dm, dv], [dx, dGamma, dBeta]) => {
      const rows = xv.length / C;
      const sumDy = new Float64Array(C), sumDyX = new Float64Array(C);
      channelSums(g, null, xv, mu, C, sumDy, sumDyX);
      // dx = dy * k1 + x * k2 + k3 (the x terms also carry the gradients of the mean and variance outputs).
      const k1 = new Float32Array(C), k2 = new Float32Array(C), k3 = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        const inv = 1 / Math.sqrt(vr[c] + eps);
        dBeta[c] = sumDy[c];
        dGamma[c] = sumDyX[c] * inv;
        k1[c] = gm[c] * inv;
        k2[c] = (-gm[c] * inv * inv * inv * sumDyX[c] + 2 * dv[c]) / rows;
        k3[c] = (-gm[c] * inv * sumDy[c] + dm[c]) / rows - k2[c] * mu[c];
      }
      affine(dx, g, k1, xv, k2, k3, C);
    });
}

const BACKENDS = ['wasm', 'cpu'];
let registered = false;

/** Register the kernels and their gradient (idempotent; before or after setBackend). */
export function registerFusedBatchNorm(): void {
  if (registered) return;
  for (const backendName of BACKENDS) {
    if (!tf.getKernel(BN_TRAIN, backendName)) tf.registerKernel({ kernelName: BN_TRAIN, backendName, kernelFunc: forwardKernel as unknown as tf.KernelFunc });
    if (!tf.getKernel(BN_TRAIN_GRAD, backendName)) tf.registerKernel({ kernelName: BN_TRAIN_GRAD, backendName, kernelFunc: gradKernel as unknown as tf.KernelFunc });
  }
  tf.registerGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const [dy, dMean, dVariance] = dys as tf.Tensor[];
      const [x, gamma, mean, variance] = saved;
      const [dx, dGamma, dBeta] = tf.engine().runKernel(BN_TRAIN_GRAD, { dy, x, gamma, mean, variance, dMean, dVariance } as never, attrs) as tf.Tensor[];
      return { x: () => dx, gamma: () => dGamma, beta: () => dBeta };
    },
  });
  registered = true;
}

/** True when the current backend has the fused kernels. */
export function fusedBatchNormAvailable(): boolean {
  return registered && tf.getKernel(BN_TRAIN, tf.getBackend()) != null;
}

/**
 * Training-mode batch normalisation over every axis but the last: [normalised x, batch mean,
 * biased batch variance]. Differentiable in x, gamma and beta.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  return tf.engine().runKernel(BN_TRAIN, { x, gamma, beta } as never, { epsilon } as never) as unknown as [tf.Tensor, tf.Tensor1D, tf.Tensor1D];
}
