/**
 * Drop-in replacements for tfjs-layers' Conv2D and BatchNormalization whose training-mode forward
 * pass takes a cheaper route to the same numbers. They keep the stock class names, configs and
 * weights, so saved topologies, bundles, folding and the ONNX export see ordinary layers, and
 * inference runs the stock code.
 *
 * - Conv2D without bias or activation runs tf.conv2d instead of tf.fused.conv2d while training.
 *   The fused op's gradient always computes the input gradient too, even for the first layer whose
 *   input is the image (a strided transposed convolution thrown away every step); the plain op's
 *   gradient is pruned by the tape.
 * - BatchNormalization on the last axis runs the fused kernel of fused-batch-norm.ts.
 *
 * EYECASE_TRAIN_FUSED=0 builds the stock layers instead (for before/after benchmarks).
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, fusedBatchNormAvailable, registerFusedBatchNorm } from './fused-batch-norm.js';

type Kwargs = { training?: boolean; [k: string]: unknown };
type Layer = tf.layers.Layer;
type LayerClass<A> = new (args: A) => Layer;
type ConvArgs = Parameters<typeof tf.layers.conv2d>[0];
type BnArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;

// The stock classes are not exported by name; their instances carry them.
const StockConv2D = tf.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as LayerClass<ConvArgs>;
const StockBatchNorm = tf.layers.batchNormalization({}).constructor as LayerClass<BnArgs>;

interface ConvInternals {
  bias: tf.LayerVariable | null; kernel: tf.LayerVariable; activation: { getClassName(): string };
  rank: number; dataFormat: string; strides: [number, number]; padding: string; dilationRate: [number, number];
}

class TrainingConv2D extends StockConv2D {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const me = this as unknown as ConvInternals;
    const plain = kwargs.training === true && me.bias == null && me.rank === 2 && me.dataFormat === 'channelsLast' &&
      me.activation.getClassName() === 'linear' && (me.padding === 'same' || me.padding === 'valid');
    if (!plain) return super.call(inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.conv2d(x, me.kernel.read() as tf.Tensor4D, me.strides, me.padding as 'same' | 'valid', 'NHWC', me.dilationRate);
  }
}

interface BnInternals {
  axis: number; momentum: number; epsilon: number; center: boolean; scale: boolean;
  gamma: tf.LayerVariable; beta: tf.LayerVariable; movingMean: tf.LayerVariable; movingVariance: tf.LayerVariable;
}

class TrainingBatchNorm extends StockBatchNorm {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const me = this as unknown as BnInternals;
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = me.axis === -1 || me.axis === x.rank - 1;
    if (kwargs.training !== true || !lastAxis || !me.center || !me.scale || x.dtype !== 'float32' || !fusedBatchNormAvailable()) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const [y, mean, variance] = batchNormTraining(x, me.gamma.read() as tf.Tensor1D, me.beta.read() as tf.Tensor1D, me.epsilon);
      // The stock layer's moving-average update, verbatim: moving -= (moving - batch) * (1 - momentum).
      for (const [v, batch] of [[me.movingMean, mean], [me.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const orig = v.read();
          v.write(tf.sub(orig, tf.mul(tf.sub(orig, batch), 1 - me.momentum)));
        });
      }
      return y;
    });
  }
}

/** Whether the training layers are in use (EYECASE_TRAIN_FUSED=0 turns them off). */
export function trainingLayersEnabled(): boolean {
  return (process.env.EYECASE_TRAIN_FUSED ?? '').trim() !== '0';
}

export function conv2d(args: ConvArgs): Layer {
  return trainingLayersEnabled() ? new TrainingConv2D(args) : tf.layers.conv2d(args);
}

export function batchNormalization(args: BnArgs): Layer {
  if (!trainingLayersEnabled()) return tf.layers.batchNormalization(args);
  registerFusedBatchNorm();
  return new TrainingBatchNorm(args);
}
