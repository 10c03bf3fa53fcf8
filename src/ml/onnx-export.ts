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
import type { onnx as Onnx } from 'onnx-proto';
import type { FoldPlan } from './fold.js';
import { floatTensor, onnx, ONNX_OPSET, padsFor, valueInfo } from './onnx-graph.js';

export const ONNX_INPUT = 'image';
export const ONNX_LOGIT = 'logit';
export const ONNX_FEATURES = 'features';

const ints = (name: string, values: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });

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
