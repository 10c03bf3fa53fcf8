/**
 * Export of a folded chain (fold.ts: conv+bias(+relu), max-pool, global average pool, dense) to an
 * ONNX model (opset 13) that onnxruntime can run. No TF.js-to-ONNX converter exists in npm; the
 * project's compact networks only need these five operations.
 *
 * The graph takes the same input as the TF.js model, NHWC float `image` [N,S,S,3] scaled to [-1,1],
 * and returns `logit` [N,1] and, when there is a global average pool, `features` [N,C] (what the
 * out-of-distribution guard reads).
 */
import * as tf from '@tensorflow/tfjs';
import onnxProto, { type onnx as Onnx } from 'onnx-proto';
import type { FoldPlan } from './fold.js';

// onnx-proto is CommonJS: Node's ESM loader gives only its default export.
const onnx = onnxProto.onnx;

export const ONNX_OPSET = 13;
export const ONNX_INPUT = 'image';
export const ONNX_LOGIT = 'logit';
export const ONNX_FEATURES = 'features';

type Pads = [number, number, number, number];

/** TF.js 'same' padding along one axis: the odd pixel goes after (as ONNX's SAME_UPPER). */
function samePad(size: number, kernel: number, stride: number, dilation: number): { out: number; before: number; after: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}

function padsFor(h: number, w: number, k: [number, number], s: [number, number], d: [number, number], mode: 'same' | 'valid'): { pads: Pads; h: number; w: number } {
  if (mode === 'valid') {
    return { pads: [0, 0, 0, 0], h: Math.floor((h - (k[0] - 1) * d[0] - 1) / s[0]) + 1, w: Math.floor((w - (k[1] - 1) * d[1] - 1) / s[1]) + 1 };
  }
  const ph = samePad(h, k[0], s[0], d[0]), pw = samePad(w, k[1], s[1], d[1]);
  return { pads: [ph.before, pw.before, ph.after, pw.after], h: ph.out, w: pw.out };
}

const ints = (name: string, values: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });

function floatTensor(name: string, dims: number[], data: Float32Array): Onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes });
}

function valueInfo(name: string, dims: Array<number | string>): Onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({ dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) }),
      }),
    }),
  });
}

/** HWIO (TF.js) -> OIHW (ONNX). */
function toOihw(filter: tf.Tensor4D): Float32Array {
  const [kh, kw, ci, co] = filter.shape;
  const src = filter.dataSync() as Float32Array;
  const dst = new Float32Array(src.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) {
    dst[((o * ci + i) * kh + y) * kw + x] = src[((y * kw + x) * ci + i) * co + o];
  }
  return dst;
}

/** Serialise a folded plan for input size S as ONNX bytes; throws on a step it cannot express. */
export function exportOnnx(plan: FoldPlan, inputSize: number): Uint8Array {
  const nodes: Onnx.INodeProto[] = [];
  const initializers: Onnx.ITensorProto[] = [];
  let cur = 'x_nchw';
  nodes.push(onnx.NodeProto.create({ name: 'to_nchw', opType: 'Transpose', input: [ONNX_INPUT], output: [cur], attribute: [ints('perm', [0, 3, 1, 2])] }));
  let h = inputSize, w = inputSize, channels = 3, flat = false, features: string | null = null;
  plan.steps.forEach((step, i) => {
    const out = `t${i}`;
    switch (step.kind) {
      case 'conv': {
        const [kh, kw, ci, co] = step.filter.shape;
        if (ci !== channels || flat) throw new Error(`conv step ${i}: unexpected input shape`);
        const p = padsFor(h, w, [kh, kw], step.strides, step.dilations, step.pad);
        initializers.push(floatTensor(`w${i}`, [co, ci, kh, kw], toOihw(step.filter)), floatTensor(`b${i}`, [co], step.bias.dataSync() as Float32Array));
        const convOut = step.activation === 'relu' ? `${out}_pre` : out;
        nodes.push(onnx.NodeProto.create({
          name: `conv${i}`, opType: 'Conv', input: [cur, `w${i}`, `b${i}`], output: [convOut],
          attribute: [ints('kernel_shape', [kh, kw]), ints('strides', step.strides), ints('dilations', step.dilations), ints('pads', p.pads)],
        }));
        if (step.activation === 'relu') nodes.push(onnx.NodeProto.create({ name: `relu${i}`, opType: 'Relu', input: [convOut], output: [out] }));
        h = p.h; w = p.w; channels = co;
        break;
      }
      case 'maxPool': {
        if (flat) throw new Error(`max-pool step ${i} after flattening`);
        const p = padsFor(h, w, step.poolSize, step.strides, [1, 1], step.pad);
        nodes.push(onnx.NodeProto.create({
          name: `pool${i}`, opType: 'MaxPool', input: [cur], output: [out],
          attribute: [ints('kernel_shape', step.poolSize), ints('strides', step.strides), ints('pads', p.pads)],
        }));
        h = p.h; w = p.w;
        break;
      }
      case 'globalAveragePool': {
        nodes.push(onnx.NodeProto.create({ name: `gap${i}`, opType: 'GlobalAveragePool', input: [cur], output: [`${out}_4d`] }));
        nodes.push(onnx.NodeProto.create({ name: `flatten${i}`, opType: 'Flatten', input: [`${out}_4d`], output: [out] }));
        flat = true;
        features = out;
        break;
      }
      case 'relu':
        nodes.push(onnx.NodeProto.create({ name: `relu${i}`, opType: 'Relu', input: [cur], output: [out] }));
        break;
      case 'dense': {
        if (!flat) throw new Error(`dense step ${i} on a 4-d tensor`);
        const [ci, co] = step.kernel.shape;
        initializers.push(floatTensor(`w${i}`, [ci, co], step.kernel.dataSync() as Float32Array));
        const bias = step.bias ? (step.bias.dataSync() as Float32Array) : new Float32Array(co);
        initializers.push(floatTensor(`b${i}`, [co], bias));
        nodes.push(onnx.NodeProto.create({ name: `dense${i}`, opType: 'Gemm', input: [cur, `w${i}`, `b${i}`], output: [out] }));
        channels = co;
        break;
      }
    }
    cur = out;
  });
  if (!flat || channels !== 1) throw new Error('the network does not end in one logit after a global average pool');
  // Name the outputs: Identity nodes keep the step names internal.
  nodes.push(onnx.NodeProto.create({ name: 'logit_out', opType: 'Identity', input: [cur], output: [ONNX_LOGIT] }));
  const outputs = [valueInfo(ONNX_LOGIT, ['N', 1])];
  if (features) {
    const featureStep = plan.steps.findIndex((s) => s.kind === 'globalAveragePool');
    const dim = plan.steps.slice(0, featureStep).reduce((c, s) => (s.kind === 'conv' ? s.filter.shape[3] : c), 3);
    nodes.push(onnx.NodeProto.create({ name: 'features_out', opType: 'Identity', input: [features], output: [ONNX_FEATURES] }));
    outputs.push(valueInfo(ONNX_FEATURES, ['N', dim]));
  }
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'eyecase',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: onnx.GraphProto.create({
      name: 'folded',
      node: nodes,
      initializer: initializers,
      input: [valueInfo(ONNX_INPUT, ['N', inputSize, inputSize, 3])],
      output: outputs,
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}
