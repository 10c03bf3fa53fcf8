/**
 * Network definitions, selectable by name. Every model maps [N,S,S,3] float inputs scaled to [-1,1]
 * to one logit per image: the log-odds of MALE (class order FEMALE=0, MALE=1). The sigmoid is
 * applied outside the model, after temperature scaling, so calibration can act on the logit.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormalization, conv2d } from './train-layers.js';

export const ARCHITECTURES = ['compact', 'compact-wide', 'xception'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** The networks that onnx-training.ts can express, and so train on onnxruntime (chains; not xception's residual adds). */
export const ONNX_TRAINABLE: readonly Architecture[] = ['compact', 'compact-wide'];

export const ARCHITECTURE_DESCRIPTIONS: Record<Architecture, string> = {
  compact: 'Compact CNN for ~56 px eye crops: conv-BN-ReLU x6 (24-32-48-96-128-192 filters), 3 max-pools, GAP, dropout 0.2, 1 logit (~0.4M params).',
  'compact-wide': 'Wider compact CNN (32-48-64-128-192-256 filters), same layout (~0.8M params).',
  xception: "The study's Xception-style network: Conv 32 s2, Conv 64, four residual blocks of two separable convs (128, 256, 512, 728) with max-pooling, separable conv 1024, GAP, dropout 0.5, sigmoid. Meant for GPU training.",
};

function convBnRelu(x: tf.SymbolicTensor, filters: number, name: string, strides = 1): tf.SymbolicTensor {
  let y = conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: 'heNormal', name: `${name}_conv` }).apply(x) as tf.SymbolicTensor;
  y = batchNormalization({ momentum: 0.9, epsilon: 1e-3, name: `${name}_bn` }).apply(y) as tf.SymbolicTensor;
  return tf.layers.reLU({ name: `${name}_relu` }).apply(y) as tf.SymbolicTensor;
}

function maxPool(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  return tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same', name }).apply(x) as tf.SymbolicTensor;
}

function compact(inputSize: number, widths: number[], dropout: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  let x = convBnRelu(input, widths[0], 'b1', 2);
  x = convBnRelu(x, widths[1], 'b2');
  x = maxPool(x, 'pool1');
  x = convBnRelu(x, widths[2], 'b3');
  x = convBnRelu(x, widths[3], 'b4');
  x = maxPool(x, 'pool2');
  x = convBnRelu(x, widths[4], 'b5');
  x = convBnRelu(x, widths[5], 'b6');
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  const logit = tf.layers.dense({ units: 1, name: 'logit' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logit, name: 'compact' });
}

function sepBn(x: tf.SymbolicTensor, filters: number, name: string, relu: boolean): tf.SymbolicTensor {
  let y = x;
  if (relu) y = tf.layers.reLU({ name: `${name}_prerelu` }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.separableConv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, name: `${name}_sep` }).apply(y) as tf.SymbolicTensor;
  return batchNormalization({ name: `${name}_bn` }).apply(y) as tf.SymbolicTensor;
}

/** Keras' "image classification from scratch" Xception-style network, as used by the study. */
function xception(inputSize: number): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  let x = conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'entry_conv1' }).apply(input) as tf.SymbolicTensor;
  x = batchNormalization({ name: 'entry_bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'entry_relu1' }).apply(x) as tf.SymbolicTensor;
  x = conv2d({ filters: 64, kernelSize: 3, padding: 'same', useBias: false, name: 'entry_conv2' }).apply(x) as tf.SymbolicTensor;
  x = batchNormalization({ name: 'entry_bn2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'entry_relu2' }).apply(x) as tf.SymbolicTensor;
  let previous = x;
  for (const size of [128, 256, 512, 728]) {
    x = sepBn(x, size, `block${size}_a`, false);
    x = sepBn(x, size, `block${size}_b`, true);
    x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: `block${size}_pool` }).apply(x) as tf.SymbolicTensor;
    const residual = conv2d({ filters: size, kernelSize: 1, strides: 2, padding: 'same', name: `block${size}_res` }).apply(previous) as tf.SymbolicTensor;
    x = tf.layers.add({ name: `block${size}_add` }).apply([x, residual]) as tf.SymbolicTensor;
    x = tf.layers.reLU({ name: `block${size}_relu` }).apply(x) as tf.SymbolicTensor;
    previous = x;
  }
  x = tf.layers.separableConv2d({ filters: 1024, kernelSize: 3, padding: 'same', useBias: false, name: 'exit_sep' }).apply(x) as tf.SymbolicTensor;
  x = batchNormalization({ name: 'exit_bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'exit_relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.5, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  const logit = tf.layers.dense({ units: 1, name: 'logit' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logit, name: 'xception' });
}

/** Build a freshly initialised network. Call inside the thread that will use it, after initBackend(). */
export function buildModel(architecture: Architecture, inputSize: number): tf.LayersModel {
  switch (architecture) {
    case 'compact': return compact(inputSize, [32, 32, 64, 64, 128, 128], 0.2);
    case 'compact-wide': return compact(inputSize, [32, 48, 96, 96, 192, 192], 0.3);
    case 'xception': return xception(inputSize);
    default: throw new Error(`unknown architecture '${String(architecture)}'; known: ${ARCHITECTURES.join(', ')}`);
  }
}
