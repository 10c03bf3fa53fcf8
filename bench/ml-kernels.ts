/**
 * Kernel benchmark: npm run bench:ml-kernels
 * Time of one training step (batch 32) of the compact network on this thread's backend, and the
 * stock wasm Conv2DBackpropInput against the replacement registered by src/ml.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/ml/index.js';
import { buildModel } from '../src/ml/architectures.js';
import { conv2dBackpropFilterImpl, conv2dBackpropInputImpl, fastBatchNormGradConfig, stockBatchNormGrad, stockKernel } from '../src/ml/grad-kernels.js';

const info = await initBackend();
console.log(`backend ${info.backend} / ${info.device}`);
const time = (f: () => void, reps: number) => {
  f();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / reps;
};

for (const [size, batch] of [[48, 32], [48, 64], [64, 32]] as const) {
  const model = buildModel('compact', size);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.randomUniform([batch, size, size, 3], -1, 1);
  const y = tf.randomUniform([batch, 1]).round();
  const step = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => tf.losses.sigmoidCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
    value.dataSync();
    Object.values(grads).forEach((g) => g.dataSync());
  });
  const ms = time(step, 5);
  const fwd = time(() => tf.tidy(() => { (model.predict(x) as tf.Tensor).dataSync(); }), 5);
  console.log(`compact ${size}px batch ${batch}: train step (forward+backward) ${ms.toFixed(0)} ms = ${(ms / batch).toFixed(1)} ms/image; inference ${(fwd / batch).toFixed(2)} ms/image`);
  tf.dispose([x, y]);
  model.dispose();
}

{
  // Batch-norm gradient: stock (tile-based) vs the broadcasting one registered by src/ml.
  const stockBn = stockBatchNormGrad();
  if (stockBn) {
    const model = buildModel('compact', 48);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const x = tf.randomUniform([32, 48, 48, 3], -1, 1);
    const y = tf.randomUniform([32, 1]).round();
    const step = () => tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.sigmoidCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      value.dataSync();
      Object.values(grads).forEach((g) => g.dataSync());
    });
    tf.registerGradient(stockBn);
    const stockMs = time(step, 5);
    tf.registerGradient(fastBatchNormGradConfig);
    const fastMs = time(step, 5);
    console.log(`compact 48px batch 32 train step: stock FusedBatchNorm gradient ${stockMs.toFixed(0)} ms, broadcasting gradient ${fastMs.toFixed(0)} ms`);
    tf.dispose([x, y]);
    model.dispose();
  }
}

if (info.backend === 'wasm') {
  const dy = tf.randomUniform([32, 24, 24, 64]) as tf.Tensor4D;
  const w = tf.randomUniform([3, 3, 32, 64]) as tf.Tensor4D;
  const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: [32, 24, 24, 32] };
  const ours = time(() => tf.tidy(() => { conv2dBackpropInputImpl(dy, w, [32, 24, 24, 32], 1, 'same').dataSync(); }), 5);
  const stockCfg = stockKernel('Conv2DBackpropInput');
  let stockMs = Number.NaN;
  if (stockCfg) {
    const backend = tf.backend();
    stockCfg.setupFunc?.(backend); // its setup never ran: ours was registered before setBackend('wasm')
    stockMs = time(() => {
      const out = stockCfg.kernelFunc({ inputs: { dy, filter: w }, attrs: attrs as never, backend }) as tf.TensorInfo;
      backend.readSync(out.dataId);
      backend.disposeData(out.dataId);
    }, 3);
  }
  console.log(`Conv2DBackpropInput [32,24,24,64] -> 32 channels, 3x3 stride 1: stock wasm kernel ${stockMs.toFixed(1)} ms, flipped-filter convolution ${ours.toFixed(1)} ms`);
  const x = tf.randomUniform([32, 24, 24, 32]) as tf.Tensor4D;
  const wGrad = time(() => tf.tidy(() => { conv2dBackpropFilterImpl(x, dy, [3, 3, 32, 64], 1, 'same').dataSync(); }), 5);
  const fwd = time(() => tf.tidy(() => { tf.conv2d(x, w, 1, 'same').dataSync(); }), 5);
  console.log(`same layer: forward convolution ${fwd.toFixed(1)} ms, Conv2DBackpropFilter (swapped-axes convolution; missing in stock wasm) ${wGrad.toFixed(1)} ms`);
}
