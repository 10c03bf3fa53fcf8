/**
 * Gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks (Conv2DBackpropFilter,
 * DepthwiseConv2dNativeBackpropInput, DepthwiseConv2dNativeBackpropFilter) and a faster
 * Conv2DBackpropInput (the stock wasm one is a naive loop), all expressed through fast forward
 * ops: a convolution with swapped axes, a flipped filter over a zero-dilated gradient, or strided
 * slices. Plus a FusedBatchNorm gradient that broadcasts instead of tiling.
 *
 * The implementations are backend-agnostic (they only call tf ops), so the tests compare them
 * against the plain JS backend's own kernels on the cpu backend itself.
 */
import * as tf from '@tensorflow/tfjs';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
type DimRounding = 'floor' | 'round' | 'ceil' | undefined;

function pair(v: number | [number, number] | undefined): [number, number] {
  if (v == null) return [1, 1];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function asTensor4D(t: tf.TensorInfo | tf.Tensor): tf.Tensor4D {
  if ((t as tf.Tensor).rank != null) return t as tf.Tensor4D;
  return tf.engine().makeTensorFromTensorInfo(t as tf.TensorInfo) as tf.Tensor4D;
}

/** Insert (s-1) zeros between rows and columns: [N,H,W,C] -> [N,H*sh,W*sw,C] (trailing zeros included). */
function dilate(x: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  let out: tf.Tensor4D = x;
  if (sh > 1) {
    const r = out.reshape([n * h, 1, w, c]);
    out = tf.concat([r, tf.zeros([n * h, sh - 1, w, c])], 1).reshape([n, h * sh, w, c]);
  }
  if (sw > 1) {
    const h2 = out.shape[1];
    const r = out.reshape([n * h2 * w, 1, c]);
    out = tf.concat([r, tf.zeros([n * h2 * w, sw - 1, c])], 1).reshape([n, h2, w * sw, c]);
  }
  return out;
}

/**
 * Rotate a [kh,kw,a,b] filter by 180 degrees in JS (filters are small; the wasm Reverse kernel is
 * slow), optionally swapping the last two axes -> [kh,kw,b,a].
 */
function flipFilter(filter: tf.Tensor4D, swapIO: boolean): tf.Tensor4D {
  const [kh, kw, a, b] = filter.shape;
  const src = filter.dataSync() as Float32Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
    const so = ((kh - 1 - i) * kw + (kw - 1 - j)) * a * b, o = (i * kw + j) * a * b;
    if (!swapIO) { out.set(src.subarray(so, so + a * b), o); continue; }
    for (let p = 0; p < a; p++) for (let q = 0; q < b; q++) out[o + q * a + p] = src[so + p * b + q];
  }
  return tf.tensor4d(out, swapIO ? [kh, kw, b, a] : [kh, kw, a, b]);
}

/** Pad (positive) or crop (negative) rows and columns of a 4D tensor. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const cropT = Math.max(0, -top), cropB = Math.max(0, -bottom), cropL = Math.max(0, -left), cropR = Math.max(0, -right);
  let out = x;
  if (cropT || cropB || cropL || cropR) out = out.slice([0, cropT, cropL, 0], [n, h - cropT - cropB, w - cropL - cropR, c]);
  const pT = Math.max(0, top), pB = Math.max(0, bottom), pL = Math.max(0, left), pR = Math.max(0, right);
  if (pT || pB || pL || pR) out = out.pad([[0, 0], [pT, pB], [pL, pR], [0, 0]]);
  return out;
}

interface ConvGeometry { top: number; left: number; outH: number; outW: number; sh: number; sw: number; dh: number; dw: number }

function geometry(xShape: [number, number, number, number], filterShape: [number, number, number, number], strides: number | [number, number],
  dilations: number | [number, number] | undefined, pad: Pad, rounding: DimRounding, depthwise: boolean): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, dilations ?? 1, pad as never, rounding, depthwise);
  return { top: info.padInfo.top, left: info.padInfo.left, outH: info.outHeight, outW: info.outWidth,
    sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth };
}

/** dW for a conv2d: a forward convolution of the input (channels as batch) with dy as the filter. */
export function conv2dBackpropFilterImpl(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number],
  strides: number | [number, number], pad: Pad, rounding?: DimRounding): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, W] = x.shape;
    const [kh, kw] = filterShape;
    const g = geometry(x.shape, filterShape, strides, 1, pad, rounding, false);
    const [, Ho, Wo] = dy.shape;
    const xt = x.transpose([3, 1, 2, 0]) as tf.Tensor4D; // [Ci,H,W,N]
    const dyt = dy.transpose([1, 2, 0, 3]) as tf.Tensor4D; // [Ho,Wo,N,Co]
    const needH = kh - 1 + (Ho - 1) * g.sh + 1;
    const needW = kw - 1 + (Wo - 1) * g.sw + 1;
    const xp = padOrCrop(xt, g.top, needH - H - g.top, g.left, needW - W - g.left);
    // out[ci,i,j,co] = sum_{y,x,n} xp[ci, i + y*s, j + x*s, n] * dyt[y,x,n,co]
    const out = tf.conv2d(xp, dyt, 1, 'valid', 'NHWC', [g.sh, g.sw]); // [Ci,kh,kw,Co]
    return out.transpose([1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** dx for a conv2d: a stride-1 convolution of the zero-dilated dy with the flipped, transposed filter. */
export function conv2dBackpropInputImpl(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: [number, number, number, number],
  strides: number | [number, number], pad: Pad, rounding?: DimRounding): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, W] = inputShape;
    const [kh, kw] = filter.shape;
    const g = geometry(inputShape, filter.shape, strides, 1, pad, rounding, false);
    const dyd = dilate(dy, g.sh, g.sw);
    const wf = flipFilter(filter, true); // [kh,kw,Co,Ci], rotated 180 degrees
    const pt = kh - 1 - g.top, pl = kw - 1 - g.left;
    const xp = padOrCrop(dyd, pt, H + kh - 1 - dyd.shape[1] - pt, pl, W + kw - 1 - dyd.shape[2] - pl);
    return tf.conv2d(xp, wf, 1, 'valid');
  });
}

/** dx for a depthwise conv2d (channel multiplier M): depthwise conv of the dilated dy with the flipped filter. */
export function depthwiseBackpropInputImpl(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: [number, number, number, number],
  strides: number | [number, number], dilations: number | [number, number] | undefined, pad: Pad, rounding?: DimRounding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, H, W, C] = inputShape;
    const [kh, kw, , M] = filter.shape;
    const g = geometry(inputShape, filter.shape, strides, dilations, pad, rounding, true);
    const dyd = dilate(dy, g.sh, g.sw);
    const wf = flipFilter(filter, false).reshape([kh, kw, C * M, 1]) as tf.Tensor4D;
    const ekh = (kh - 1) * g.dh + 1, ekw = (kw - 1) * g.dw + 1;
    const pt = ekh - 1 - g.top, pl = ekw - 1 - g.left;
    const xp = padOrCrop(dyd, pt, H + ekh - 1 - dyd.shape[1] - pt, pl, W + ekw - 1 - dyd.shape[2] - pl);
    const out = tf.depthwiseConv2d(xp, wf, 1, 'valid', 'NHWC', [g.dh, g.dw]); // [N,H,W,C*M]
    if (M === 1) return out;
    return out.reshape([n, H, W, C, M]).sum(4) as tf.Tensor4D;
  });
}

/** dW for a depthwise conv2d: per filter tap, a strided slice of the padded input times dy, summed. */
export function depthwiseBackpropFilterImpl(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number],
  strides: number | [number, number], dilations: number | [number, number] | undefined, pad: Pad, rounding?: DimRounding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, H, W, C] = x.shape;
    const [kh, kw, , M] = filterShape;
    const g = geometry(x.shape, filterShape, strides, dilations, pad, rounding, true);
    const [, Ho, Wo] = dy.shape;
    const needH = (kh - 1) * g.dh + (Ho - 1) * g.sh + 1;
    const needW = (kw - 1) * g.dw + (Wo - 1) * g.sw + 1;
    const xp = padOrCrop(x, g.top, needH - H - g.top, g.left, needW - W - g.left);
    const dyr = M === 1 ? dy : dy.reshape([n, Ho, Wo, C, M]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const slab = tf.stridedSlice(xp, [0, i * g.dh, j * g.dw, 0],
          [n, i * g.dh + (Ho - 1) * g.sh + 1, j * g.dw + (Wo - 1) * g.sw + 1, C], [1, g.sh, g.sw, 1]) as tf.Tensor4D;
        taps.push(M === 1 ? tf.mul(slab, dyr).sum([0, 1, 2]) : tf.mul(slab.expandDims(4), dyr).sum([0, 1, 2]));
      }
    }
    return tf.stack(taps).reshape([kh, kw, C, M]) as tf.Tensor4D;
  });
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; attrs?: Record<string, unknown> };

function kernel(name: string, backendName: string, fn: (a: KernelArgs) => tf.Tensor): tf.KernelConfig {
  return { kernelName: name, backendName, kernelFunc: fn as unknown as tf.KernelFunc };
}

/** Kernel configs for a backend (used for 'wasm'). */
export function gradKernelConfigs(backendName: string): tf.KernelConfig[] {
  return [
    kernel('Conv2DBackpropFilter', backendName, ({ inputs, attrs }) => {
      const a = attrs as { strides: [number, number]; pad: Pad; dimRoundingMode?: DimRounding; filterShape: [number, number, number, number]; dataFormat?: string };
      if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter: only NHWC is supported');
      return conv2dBackpropFilterImpl(asTensor4D(inputs.x), asTensor4D(inputs.dy), a.filterShape, a.strides, a.pad, a.dimRoundingMode);
    }),
    kernel('Conv2DBackpropInput', backendName, ({ inputs, attrs }) => {
      const a = attrs as { strides: [number, number]; pad: Pad; dimRoundingMode?: DimRounding; inputShape: [number, number, number, number]; dataFormat?: string };
      if (a.dataFormat && a.dataFormat !== 'NHWC') throw new Error('Conv2DBackpropInput: only NHWC is supported');
      return conv2dBackpropInputImpl(asTensor4D(inputs.dy), asTensor4D(inputs.filter), a.inputShape, a.strides, a.pad, a.dimRoundingMode);
    }),
    kernel('DepthwiseConv2dNativeBackpropInput', backendName, ({ inputs, attrs }) => {
      const a = attrs as { strides: [number, number]; dilations: [number, number]; pad: Pad; dimRoundingMode?: DimRounding; inputShape: [number, number, number, number] };
      return depthwiseBackpropInputImpl(asTensor4D(inputs.dy), asTensor4D(inputs.filter), a.inputShape, a.strides, a.dilations, a.pad, a.dimRoundingMode);
    }),
    kernel('DepthwiseConv2dNativeBackpropFilter', backendName, ({ inputs, attrs }) => {
      const a = attrs as { strides: [number, number]; dilations: [number, number]; pad: Pad; dimRoundingMode?: DimRounding; filterShape: [number, number, number, number] };
      return depthwiseBackpropFilterImpl(asTensor4D(inputs.x), asTensor4D(inputs.dy), a.filterShape, a.strides, a.dilations, a.pad, a.dimRoundingMode);
    }),
  ];
}

const registeredFor = new Set<string>();
const stock = new Map<string, tf.KernelConfig>();

/** The kernel that was registered before ours replaced it (for benchmarks), if any. */
export function stockKernel(name: string, backendName = 'wasm'): tf.KernelConfig | undefined {
  return stock.get(`${backendName}/${name}`);
}

/** Register the gradient kernels for a backend name. Must run before setBackend(backendName). Idempotent. */
export function registerGradKernels(backendName = 'wasm'): void {
  if (registeredFor.has(backendName)) return;
  for (const cfg of gradKernelConfigs(backendName)) {
    const previous = tf.getKernel(cfg.kernelName, backendName);
    if (previous) {
      stock.set(`${backendName}/${cfg.kernelName}`, previous);
      tf.unregisterKernel(cfg.kernelName, backendName);
    }
    tf.registerKernel(cfg);
  }
  registeredFor.add(backendName);
}

/**
 * A FusedBatchNorm gradient that broadcasts the per-channel factors instead of tiling them to the
 * input's shape (the stock gradient spends most of its time in one tile()). Same math, registered
 * globally (gradients are backend-independent).
 */
export const fastBatchNormGradConfig: tf.GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const g = dy as tf.Tensor;
    const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
    const [x, mean, variance, scale] = saved;
    const scaleValue = scale == null ? tf.scalar(1) : scale;
    const reductionAxes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const invStd = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
    const reduce = (t: tf.Tensor, shape: number[]) => (reductionAxes.length ? t.sum(reductionAxes) : t).reshape(shape);
    return {
      x: () => tf.mul(g, tf.mul(invStd, scaleValue)).reshape(x.shape),
      mean: () => reduce(tf.neg(tf.mul(g, tf.mul(invStd, scaleValue))), mean.shape),
      variance: () => {
        const f = tf.mul(tf.mul(tf.mul(invStd, invStd), invStd), tf.mul(scaleValue, tf.scalar(-0.5)));
        return reduce(tf.mul(tf.mul(g, tf.sub(x, mean)), f), variance.shape);
      },
      scale: () => reduce(tf.mul(tf.mul(g, tf.sub(x, mean)), invStd), (scale ?? mean).shape),
      offset: () => reduce(g, mean.shape),
    };
  },
};

let bnRegistered = false;
let stockBnGrad: tf.GradConfig | undefined;

/** The FusedBatchNorm gradient tfjs shipped with (for benchmarks). */
export function stockBatchNormGrad(): tf.GradConfig | undefined {
  return stockBnGrad;
}

export function registerFastBatchNormGrad(): void {
  if (bnRegistered) return;
  stockBnGrad = tf.getGradient('FusedBatchNorm');
  tf.registerGradient(fastBatchNormGradConfig);
  bnRegistered = true;
}
