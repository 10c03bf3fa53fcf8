/**
 * Training graphs for onnxruntime: the compact networks' forward pass in training mode, the loss,
 * and the backward pass written out by hand as ordinary ONNX operators, so that onnxruntime-node's
 * native CPU kernels (the inference build: it has no gradient operators) compute the gradients.
 *
 * A graph takes the batch (NHWC `image`, `label`, the dropout `mask`) and every weight of the TF.js
 * model as inputs, in the TF.js layouts (conv kernels HWIO), and returns the loss, the logits, the
 * gradient of every trainable weight (same layouts) and each batch norm's batch mean and variance
 * (the caller updates the moving statistics as the TF.js layer does). The optimizer stays in
 * JavaScript (replica-onnx.ts), so the update arithmetic is the TF.js replica's.
 *
 * Backward rules (NCHW; X input, Y output of a layer, dY its gradient):
 * - conv: dX = ConvTranspose(dY, W) with the forward pads; dW = Conv(X^T, dY^T) with X^T, dY^T the
 *   batch and channel axes swapped, the forward strides as dilations: sum over n, h, w of
 *   dY[n,o,h,w] * X[n,i,s*h+kh,s*w+kw].
 * - batch norm: dY = gamma / std * (dZ - mean(dZ) - xhat * mean(dZ * xhat)).
 * - ReLU: dZ * (Z > 0). Max-pool: the gradient goes to the position its Indices output names.
 * - global average pool: dF / (H * W) broadcast. Dense: the usual products.
 */
import * as tf from '@tensorflow/tfjs';
import { chainLayers } from './fold.js';
import { GraphBuilder, NCHWC_DOMAIN, padsFor, type Pads } from './onnx-graph.js';

export const TRAIN_IMAGE = 'image';
export const TRAIN_LABEL = 'label';
export const TRAIN_MASK = 'mask';
export const TRAIN_LOSS = 'loss';
export const TRAIN_LOGIT = 'logit';
export const EVAL_FEATURES = 'features';
export const weightInput = (i: number): string => `w${i}`;
export const gradOutput = (i: number): string => `grad${i}`;
export const batchMeanOutput = (i: number): string => `bn${i}_mean`;
export const batchVarianceOutput = (i: number): string => `bn${i}_var`;

/** One layer of a trainable chain; numbers are indices into model.weights. */
export type ChainLayer =
  | { kind: 'conv'; kernel: number; bias: number | null; shape: [number, number, number, number]; strides: [number, number]; dilations: [number, number]; pad: 'same' | 'valid' }
  | { kind: 'batchNorm'; gamma: number; beta: number; movingMean: number; movingVariance: number; epsilon: number; momentum: number; channels: number }
  | { kind: 'relu' }
  | { kind: 'maxPool'; poolSize: [number, number]; strides: [number, number]; pad: 'same' | 'valid' }
  | { kind: 'globalAveragePool' }
  | { kind: 'dropout'; rate: number }
  | { kind: 'dense'; kernel: number; bias: number | null; units: number };

export interface TrainableChain {
  layers: ChainLayer[];
  inputSize: number;
  /** Channels of the global average pool's output (the features); the dropout mask's width. */
  featureDim: number;
}

/**
 * The model as a chain these graphs can train, or null (a layer or a wiring they do not handle, e.g.
 * xception's residual adds and separable convolutions; those train on TF.js).
 */
export function trainableChain(model: tf.LayersModel): TrainableChain | null {
  const layers = chainLayers(model);
  if (!layers) return null;
  const index = new Map(model.weights.map((w, i) => [w, i] as const));
  const at = (layer: tf.layers.Layer, k: number): number => {
    const i = index.get(layer.weights[k]);
    if (i === undefined) throw new Error(`weight ${k} of layer ${layer.name} is not a model weight`);
    return i;
  };
  const out: ChainLayer[] = [];
  const inputShape = model.inputs[0].shape;
  if (inputShape.length !== 4 || inputShape[1] !== inputShape[2] || inputShape[3] !== 3) return null;
  let channels = 3, featureDim = 0;
  for (const layer of layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Record<string, unknown>;
    switch (cls) {
      case 'InputLayer': break;
      case 'Conv2D': {
        if (cfg.activation !== 'linear' || cfg.dataFormat !== 'channelsLast') return null;
        const kernel = at(layer, 0);
        const shape = model.weights[kernel].shape as [number, number, number, number];
        out.push({ kind: 'conv', kernel, bias: cfg.useBias ? at(layer, 1) : null, shape, strides: cfg.strides as [number, number], dilations: cfg.dilationRate as [number, number], pad: cfg.padding as 'same' | 'valid' });
        channels = shape[3];
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (!cfg.center || !cfg.scale || (axis !== -1 && axis !== 3)) return null;
        out.push({ kind: 'batchNorm', gamma: at(layer, 0), beta: at(layer, 1), movingMean: at(layer, 2), movingVariance: at(layer, 3), epsilon: cfg.epsilon as number, momentum: cfg.momentum as number, channels });
        break;
      }
      case 'ReLU':
        if ((cfg as { maxValue?: number | null }).maxValue != null) return null;
        out.push({ kind: 'relu' });
        break;
      case 'MaxPooling2D':
        out.push({ kind: 'maxPool', poolSize: cfg.poolSize as [number, number], strides: cfg.strides as [number, number], pad: cfg.padding as 'same' | 'valid' });
        break;
      case 'GlobalAveragePooling2D':
        out.push({ kind: 'globalAveragePool' });
        featureDim = channels;
        break;
      case 'Dropout':
        out.push({ kind: 'dropout', rate: cfg.rate as number });
        break;
      case 'Dense':
        if (cfg.activation !== 'linear') return null;
        out.push({ kind: 'dense', kernel: at(layer, 0), bias: cfg.useBias ? at(layer, 1) : null, units: cfg.units as number });
        channels = cfg.units as number;
        break;
      default:
        return null;
    }
  }
  // The graphs assume: 4-d layers, one global average pool, then dropout/dense on [N, C], one logit.
  const gap = out.findIndex((l) => l.kind === 'globalAveragePool');
  if (gap < 0 || channels !== 1) return null;
  if (out.slice(0, gap).some((l) => l.kind === 'dense' || l.kind === 'dropout')) return null;
  if (out.slice(gap + 1).some((l) => l.kind !== 'dense' && l.kind !== 'dropout')) return null;
  // The dropout mask is [N, features]: at most one dropout, right after the pool.
  const dropouts = out.flatMap((l, i) => (l.kind === 'dropout' ? [i] : []));
  if (dropouts.length > 1 || (dropouts.length === 1 && dropouts[0] !== gap + 1)) return null;
  return { layers: out, inputSize: inputShape[1] as number, featureDim };
}

type Mode = 'train' | 'eval';

interface Saved {
  layer: ChainLayer;
  index: number;
  x: string;
  y: string;
  h: number;
  w: number;
  /** batchNorm: xhat, 1/std and gamma; maxPool: the indices. */
  extra: Record<string, string>;
  pads?: Pads;
  outH: number;
  outW: number;
}

/**
 * The ONNX graph of `chain` in training mode (loss, logits, gradients, batch statistics) or in
 * evaluation mode (logits and features, batch norm on the moving statistics). With `block`, the
 * NCHWc block size of the onnxruntime that will run it (nchwcBlockSize()), the convolutions whose
 * channels fit it run on onnxruntime's blocked-layout kernels; without, all on its Conv.
 */
export function chainGraph(chain: TrainableChain, shapes: number[][], trainable: boolean[], mode: Mode, block: number | null = null): Uint8Array {
  const g = new GraphBuilder();
  const S = chain.inputSize;
  const image = g.input(TRAIN_IMAGE, ['N', S, S, 3]);
  const label = mode === 'train' ? g.input(TRAIN_LABEL, ['N', 1]) : '';
  const hasDropout = chain.layers.some((l) => l.kind === 'dropout');
  const mask = mode === 'train' && hasDropout ? g.input(TRAIN_MASK, ['N', chain.featureDim]) : '';
  const weights = shapes.map((s, i) => g.input(weightInput(i), s));

  // Forward.
  const saved: Saved[] = [];
  let cur = g.op('Transpose', [image], { perm: [0, 3, 1, 2] });
  let h = S, w = S;
  let features = '';
  chain.layers.forEach((layer, index) => {
    const x = cur;
    const entry: Saved = { layer, index, x, y: x, h, w, extra: {}, outH: h, outW: w };
    switch (layer.kind) {
      case 'conv': {
        const [kh, kw, ci, co] = layer.shape;
        const p = padsFor(h, w, [kh, kw], layer.strides, layer.dilations, layer.pad);
        cur = conv(g, x, weights[layer.kernel], layer.bias === null ? null : weights[layer.bias],
          { kh, kw, ci, co, strides: layer.strides, dilations: layer.dilations, pads: p.pads }, block);
        entry.pads = p.pads;
        h = p.h; w = p.w;
        break;
      }
      case 'batchNorm': {
        const c4 = g.ints([1, layer.channels, 1, 1]);
        const gamma = g.op('Reshape', [weights[layer.gamma], c4]);
        const beta = g.op('Reshape', [weights[layer.beta], c4]);
        let mean: string, variance: string;
        if (mode === 'train') {
          mean = g.op('ReduceMean', [x], { axes: [0, 2, 3], keepdims: 1 });
          const centred = g.op('Sub', [x, mean]);
          variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { axes: [0, 2, 3], keepdims: 1 });
          const invStd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.scalar(layer.epsilon)])])]);
          const xhat = g.op('Mul', [centred, invStd]);
          cur = g.op('Add', [g.op('Mul', [xhat, gamma]), beta]);
          entry.extra = { xhat, invStd, gamma };
          g.output(batchMeanOutput(index), g.op('Reshape', [mean, g.ints([layer.channels])]), [layer.channels]);
          g.output(batchVarianceOutput(index), g.op('Reshape', [variance, g.ints([layer.channels])]), [layer.channels]);
        } else {
          cur = g.op('BatchNormalization', [x, weights[layer.gamma], weights[layer.beta], weights[layer.movingMean], weights[layer.movingVariance]], { epsilon: layer.epsilon });
        }
        break;
      }
      case 'relu':
        cur = g.op('Relu', [x]);
        break;
      case 'maxPool': {
        const p = padsFor(h, w, layer.poolSize, layer.strides, [1, 1], layer.pad);
        const attrs = { kernel_shape: layer.poolSize, strides: layer.strides, pads: p.pads };
        if (mode === 'train') {
          const [y, indices] = g.opMulti('MaxPool', [x], 2, attrs);
          cur = y;
          entry.extra.indices = indices;
        } else cur = g.op('MaxPool', [x], attrs);
        h = p.h; w = p.w;
        break;
      }
      case 'globalAveragePool':
        cur = g.op('ReduceMean', [x], { axes: [2, 3], keepdims: 0 });
        features = cur;
        break;
      case 'dropout':
        if (mode === 'train') cur = g.op('Mul', [x, mask]);
        break;
      case 'dense': {
        const inputs = [x, weights[layer.kernel]];
        if (layer.bias !== null) inputs.push(weights[layer.bias]);
        cur = g.op('Gemm', inputs);
        break;
      }
    }
    entry.y = cur;
    entry.outH = h; entry.outW = w;
    saved.push(entry);
  });
  const logit = cur;
  g.output(TRAIN_LOGIT, logit, ['N', 1]);
  if (mode === 'eval') {
    g.output(EVAL_FEATURES, features, ['N', chain.featureDim]);
    return g.encode('eval');
  }

  // Loss: mean sigmoid cross-entropy, max(z, 0) - z * y + log(1 + exp(-|z|)); dL/dz = (sigmoid(z) - y) / N.
  const perImage = g.op('Add', [g.op('Sub', [g.op('Relu', [logit]), g.op('Mul', [logit, label])]), g.op('Softplus', [g.op('Neg', [g.op('Abs', [logit])])])]);
  g.output(TRAIN_LOSS, g.op('ReduceMean', [perImage], { keepdims: 0 }), []);
  const n = g.op('Cast', [g.op('Gather', [g.op('Shape', [logit]), g.ints([0])], { axis: 0 })], { to: 1 });
  let grad = g.op('Div', [g.op('Sub', [g.op('Sigmoid', [logit]), label]), n]);

  // Backward, last layer first. The first layer's input is the image: no gradient needed there.
  for (let k = saved.length - 1; k >= 0; k--) {
    const { layer, x, y, h: inH, w: inW, extra, pads } = saved[k];
    const needInputGrad = k > 0;
    const emit = (weight: number | null, value: string) => {
      if (weight !== null && trainable[weight]) g.output(gradOutput(weight), value, shapes[weight]);
    };
    switch (layer.kind) {
      case 'dense':
        emit(layer.kernel, g.op('Gemm', [x, grad], { transA: 1 }));
        if (layer.bias !== null) emit(layer.bias, g.op('ReduceSum', [grad, g.ints([0])], { keepdims: 0 }));
        if (needInputGrad) grad = g.op('Gemm', [grad, weights[layer.kernel]], { transB: 1 });
        break;
      case 'dropout':
        grad = g.op('Mul', [grad, mask]);
        break;
      case 'globalAveragePool':
        grad = g.op('Expand', [g.op('Mul', [g.op('Unsqueeze', [grad, g.ints([2, 3])]), g.scalar(1 / (inH * inW))]), g.op('Shape', [x])]);
        break;
      case 'maxPool': {
        // Scatter each output gradient to the input position the pool took (indices are flat over N*C*H*W).
        const flatGrad = g.op('Reshape', [grad, g.ints([-1])]);
        const flatIndices = g.op('Reshape', [extra.indices, g.ints([-1])]);
        const size = g.op('ReduceProd', [g.op('Shape', [x])], { keepdims: 1 });
        const zeros = g.op('ConstantOfShape', [size]);
        grad = g.op('Reshape', [g.op('ScatterElements', [zeros, flatIndices, flatGrad], { axis: 0 }), g.op('Shape', [x])]);
        break;
      }
      case 'relu':
        grad = g.op('Mul', [grad, g.op('Cast', [g.op('Greater', [y, g.scalar(0)])], { to: 1 })]);
        break;
      case 'batchNorm': {
        const { xhat, invStd, gamma } = extra;
        const sumAxes = { axes: [0, 2, 3], keepdims: 1 };
        const meanGrad = g.op('ReduceMean', [grad], sumAxes);
        const meanGradXhat = g.op('ReduceMean', [g.op('Mul', [grad, xhat])], sumAxes);
        // Sums = means * (N * H * W).
        const count = g.op('Cast', [g.op('ReduceProd', [g.op('Gather', [g.op('Shape', [x]), g.ints([0, 2, 3])], { axis: 0 })], { keepdims: 1 })], { to: 1 });
        const c = g.ints([layer.channels]);
        emit(layer.gamma, g.op('Reshape', [g.op('Mul', [meanGradXhat, count]), c]));
        emit(layer.beta, g.op('Reshape', [g.op('Mul', [meanGrad, count]), c]));
        if (needInputGrad) {
          const inner = g.op('Sub', [g.op('Sub', [grad, meanGrad]), g.op('Mul', [xhat, meanGradXhat])]);
          grad = g.op('Mul', [inner, g.op('Mul', [gamma, invStd])]);
        }
        break;
      }
      case 'conv': {
        const { outH, outW } = saved[k];
        emit(layer.kernel, kernelGrad(g, x, grad, layer, pads!, outH, outW));
        if (layer.bias !== null) emit(layer.bias, g.op('ReduceSum', [grad, g.ints([0, 2, 3])], { keepdims: 0 }));
        if (needInputGrad) grad = inputGrad(g, grad, weights[layer.kernel], layer, pads!, [inH, inW], [outH, outW], block);
        break;
      }
    }
  }
  return g.encode('train');
}

/**
 * The gradient of a convolution's kernel, HWIO: for each kernel tap (a, b), one matrix product of
 * dY as [Co, N*H*W] with the input pixels that tap reads, as [N*H*W, Ci]. The taps' inputs are
 * strided slices of the padded NHWC input. (As one convolution of X with dY as its kernel, the
 * same sum ran at about a seventh of the forward convolution's speed: onnxruntime's im2col path is
 * built for small kernels and large outputs, this is the reverse.)
 */
function kernelGrad(g: GraphBuilder, x: string, dy: string, layer: Extract<ChainLayer, { kind: 'conv' }>, pads: Pads, outH: number, outW: number): string {
  const [kh, kw, ci, co] = layer.shape;
  const [sh, sw] = layer.strides, [dh, dw] = layer.dilations;
  const padded = g.op('Pad', [g.op('Transpose', [x], { perm: [0, 2, 3, 1] }), g.ints([0, pads[0], pads[1], 0, 0, pads[2], pads[3], 0])]);
  const dyRows = g.op('Reshape', [g.op('Transpose', [dy], { perm: [1, 0, 2, 3] }), g.ints([co, -1])]);
  const taps: string[] = [];
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const tap = g.op('Slice', [padded, g.ints([a * dh, b * dw]), g.ints([a * dh + sh * (outH - 1) + 1, b * dw + sw * (outW - 1) + 1]), g.ints([1, 2]), g.ints([sh, sw])]);
      taps.push(g.op('Unsqueeze', [g.op('MatMul', [dyRows, g.op('Reshape', [tap, g.ints([-1, ci])])]), g.ints([0])]));
    }
  }
  // [kh*kw, Co, Ci] -> [kh, kw, Ci, Co]
  return g.op('Transpose', [g.op('Reshape', [g.op('Concat', taps, { axis: 0 }), g.ints([kh, kw, co, ci])])], { perm: [0, 1, 3, 2] });
}

/**
 * The gradient of a convolution's input. With stride 1 it is a plain convolution of dY with the
 * kernel flipped and its channel axes swapped (onnxruntime runs Conv about 1.4x faster than the
 * equivalent ConvTranspose, and its blocked kernels apply); strided layers use ConvTranspose.
 */
function inputGrad(g: GraphBuilder, dy: string, hwio: string, layer: Extract<ChainLayer, { kind: 'conv' }>, pads: Pads, inSize: [number, number], outSize: [number, number], block: number | null): string {
  const [kh, kw, ci, co] = layer.shape;
  const [dh, dw] = layer.dilations;
  if (layer.strides[0] === 1 && layer.strides[1] === 1) {
    const flipped = g.op('Slice', [hwio, g.ints([-1, -1]), g.ints([-(kh + 1), -(kw + 1)]), g.ints([0, 1]), g.ints([-1, -1])]);
    const swapped = g.op('Transpose', [flipped], { perm: [0, 1, 3, 2] });
    const spanH = (kh - 1) * dh, spanW = (kw - 1) * dw;
    return conv(g, dy, swapped, null, { kh, kw, ci: co, co: ci, strides: [1, 1], dilations: layer.dilations, pads: [spanH - pads[0], spanW - pads[1], spanH - pads[2], spanW - pads[3]] }, block);
  }
  const natural = (outSize[0] - 1) * layer.strides[0] + (kh - 1) * dh + 1 - pads[0] - pads[2];
  const naturalW = (outSize[1] - 1) * layer.strides[1] + (kw - 1) * dw + 1 - pads[1] - pads[3];
  return g.op('ConvTranspose', [dy, g.op('Transpose', [hwio], { perm: [3, 2, 0, 1] })], {
    kernel_shape: [kh, kw], strides: layer.strides, dilations: layer.dilations, pads,
    output_padding: [inSize[0] - natural, inSize[1] - naturalW],
  });
}

interface ConvSpec { kh: number; kw: number; ci: number; co: number; strides: [number, number]; dilations: [number, number]; pads: Pads }

/**
 * A convolution of NCHW `x` with a kernel given as an HWIO graph value, NCHW out. When the channels
 * fit the NCHWc `block` (input channels fewer than it or a multiple of it, output channels a
 * multiple), it runs on onnxruntime's blocked kernel: the kernel reordered in the graph (OIHWBiBo:
 * [O/B][I/B][kh][kw][i%B][o%B]; with few input channels OIHWBo: [O/B][I][kh][kw][o%B], the input
 * left NCHW), the activations reordered to and from NCHWc around it. On 64-image batches here it
 * ran 1.2-1.7x faster than Conv on 12-24 px maps and 5-6x faster on 6 px ones, where Conv's
 * im2col and small matrix products cost the most (npm run bench:ml-train-graph shows the step).
 */
function conv(g: GraphBuilder, x: string, hwio: string, bias: string | null, spec: ConvSpec, block: number | null): string {
  const { kh, kw, ci, co } = spec;
  const attrs = { kernel_shape: [kh, kw], strides: spec.strides, dilations: spec.dilations, pads: spec.pads };
  const withBias = (inputs: string[]) => (bias === null ? inputs : [...inputs, bias]);
  if (block === null || co % block !== 0 || (ci >= block && ci % block !== 0)) return g.op('Conv', withBias([x, g.op('Transpose', [hwio], { perm: [3, 2, 0, 1] })]), attrs);
  const B = block;
  const few = ci < B;
  const order = few
    ? g.op('Transpose', [g.op('Reshape', [hwio, g.ints([kh, kw, ci, co / B, B])])], { perm: [3, 2, 0, 1, 4] })
    : g.op('Transpose', [g.op('Reshape', [hwio, g.ints([kh, kw, ci / B, B, co / B, B])])], { perm: [4, 2, 0, 1, 3, 5] });
  const kernel = g.op('Reshape', [order, g.ints([co, ci, kh, kw])]);
  const input = few ? x : g.opIn(NCHWC_DOMAIN, 'ReorderInput', [x]);
  const y = g.opIn(NCHWC_DOMAIN, 'Conv', withBias([input, kernel]), attrs);
  return g.opIn(NCHWC_DOMAIN, 'ReorderOutput', [y], { channels: co });
}
