/**
 * Inference-only rewrite of chain-shaped networks (the compact family): each Conv2D -> BatchNorm ->
 * ReLU triple becomes one fused convolution with the batch norm folded into its weights and bias,
 * dropout disappears. Returns null for graphs it does not handle (e.g. xception's residual adds);
 * the caller then uses model.predict().
 */
import * as tf from '@tensorflow/tfjs';

type Op = (x: tf.Tensor) => tf.Tensor;

/** One step of a folded chain; the tensors are kept (owned by the plan) until dispose(). */
export type FoldStep =
  | { kind: 'conv'; filter: tf.Tensor4D; bias: tf.Tensor1D; strides: [number, number]; pad: 'same' | 'valid'; dilations: [number, number]; activation: 'linear' | 'relu' }
  | { kind: 'maxPool'; poolSize: [number, number]; strides: [number, number]; pad: 'same' | 'valid' }
  | { kind: 'globalAveragePool' }
  | { kind: 'relu' }
  | { kind: 'dense'; kernel: tf.Tensor2D; bias: tf.Tensor1D | null };

/** The folded network as data: what both the tfjs fast path and the ONNX exporter run. */
export interface FoldPlan {
  steps: FoldStep[];
  dispose: () => void;
}

export interface FoldedModel {
  forward: (x: tf.Tensor4D) => tf.Tensor;
  /** Penultimate features (the global average pool) and the logits; null when there is no pool layer. */
  forwardWithFeatures: ((x: tf.Tensor4D) => [tf.Tensor, tf.Tensor]) | null;
  dispose: () => void;
}

/** The model's layers when it is a simple chain (every layer's single input is the previous layer), else null. */
export function chainLayers(model: tf.LayersModel): tf.layers.Layer[] | null {
  const layers = model.layers;
  for (let i = 1; i < layers.length; i++) {
    const nodes = (layers[i] as unknown as { inboundNodes: Array<{ inboundLayers: tf.layers.Layer[] }> }).inboundNodes;
    if (nodes.length !== 1 || nodes[0].inboundLayers.length !== 1 || nodes[0].inboundLayers[0] !== layers[i - 1]) return null;
  }
  return layers;
}

/** Fold a chain-shaped model into steps, or null when the graph has a layer this does not handle. */
export function foldPlan(model: tf.LayersModel): FoldPlan | null {
  const layers = chainLayers(model);
  if (!layers) return null;
  const steps: FoldStep[] = [];
  const kept: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => { kept.push(tf.keep(t)); return t; };
  try {
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i];
      const cls = layer.getClassName();
      const cfg = layer.getConfig() as Record<string, unknown>;
      if (cls === 'InputLayer' || cls === 'Dropout') continue;
      if (cls === 'Conv2D') {
        const [w, b] = layer.getWeights();
        let filter = w as tf.Tensor4D;
        let bias: tf.Tensor1D = (cfg.useBias ? b : tf.zeros([filter.shape[3]])) as tf.Tensor1D;
        let activation = (cfg.activation as string) ?? 'linear';
        const next = layers[i + 1];
        if (next?.getClassName() === 'BatchNormalization' && activation === 'linear') {
          const bnCfg = next.getConfig() as { epsilon: number; center: boolean; scale: boolean };
          const bw = next.getWeights();
          let k = 0;
          const gamma = bnCfg.scale ? bw[k++] : tf.onesLike(bias);
          const beta = bnCfg.center ? bw[k++] : tf.zerosLike(bias);
          const mean = bw[k++], variance = bw[k++];
          const factor = tf.tidy(() => gamma.div(variance.add(bnCfg.epsilon).sqrt()));
          filter = tf.tidy(() => filter.mul(factor)) as tf.Tensor4D;
          bias = tf.tidy(() => bias.sub(mean).mul(factor).add(beta)) as tf.Tensor1D;
          i++;
        }
        if (activation === 'linear') {
          const after = layers[i + 1];
          if (after?.getClassName() === 'ReLU' && (after.getConfig() as { maxValue?: number | null }).maxValue == null) { activation = 'relu'; i++; }
          else if (after?.getClassName() === 'Activation' && (after.getConfig() as { activation: string }).activation === 'relu') { activation = 'relu'; i++; }
        }
        if (activation !== 'linear' && activation !== 'relu') { tf.dispose(kept); return null; }
        steps.push({
          kind: 'conv', filter: keep(filter), bias: keep(bias), strides: cfg.strides as [number, number], pad: cfg.padding as 'same' | 'valid',
          dilations: cfg.dilationRate as [number, number], activation,
        });
        continue;
      }
      if (cls === 'MaxPooling2D') {
        steps.push({ kind: 'maxPool', poolSize: cfg.poolSize as [number, number], strides: cfg.strides as [number, number], pad: cfg.padding as 'same' | 'valid' });
        continue;
      }
      if (cls === 'GlobalAveragePooling2D') { steps.push({ kind: 'globalAveragePool' }); continue; }
      if (cls === 'ReLU') { steps.push({ kind: 'relu' }); continue; }
      if (cls === 'Dense') {
        const [w, b] = layer.getWeights();
        if ((cfg.activation as string) !== 'linear') { tf.dispose(kept); return null; }
        steps.push({ kind: 'dense', kernel: keep(w.clone()) as tf.Tensor2D, bias: cfg.useBias ? keep(b.clone()) as tf.Tensor1D : null });
        continue;
      }
      tf.dispose(kept);
      return null;
    }
  } catch {
    tf.dispose(kept);
    return null;
  }
  return { steps, dispose: () => tf.dispose(kept) };
}

function tfjsOp(step: FoldStep): Op {
  switch (step.kind) {
    case 'conv': {
      const { filter, bias, strides, pad, dilations, activation } = step;
      return (x) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter, strides, pad, dilations, bias, activation });
    }
    case 'maxPool': return (x) => tf.maxPool(x as tf.Tensor4D, step.poolSize, step.strides, step.pad);
    case 'globalAveragePool': return (x) => x.mean([1, 2]);
    case 'relu': return (x) => tf.relu(x);
    case 'dense': return (x) => tf.fused.matMul({ a: x as tf.Tensor2D, b: step.kernel, bias: step.bias ?? undefined });
  }
}

export function foldChain(model: tf.LayersModel): FoldedModel | null {
  const plan = foldPlan(model);
  if (!plan) return null;
  const ops = plan.steps.map(tfjsOp);
  const poolEnd = plan.steps.findIndex((s) => s.kind === 'globalAveragePool') + 1;
  return {
    forward: (x) => tf.tidy(() => ops.reduce((t, op) => op(t), x as tf.Tensor)),
    forwardWithFeatures: poolEnd <= 0 ? null : (x) => tf.tidy(() => {
      const features = ops.slice(0, poolEnd).reduce((t, op) => op(t), x as tf.Tensor);
      return [features, ops.slice(poolEnd).reduce((t, op) => op(t), features)] as [tf.Tensor, tf.Tensor];
    }),
    dispose: plan.dispose,
  };
}
