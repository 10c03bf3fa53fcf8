/**
 * The training layers (src/ml/train-layers.ts) and the fused batch-norm kernels compute what the
 * stock tfjs layers compute: outputs, gradients and moving statistics, on the plain JS (cpu) and
 * the wasm backend, and they save as the stock layers.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { buildModel } from '../../src/ml/architectures.js';
import { batchNormTraining, registerFusedBatchNorm } from '../../src/ml/fused-batch-norm.js';
import { registerGradKernels } from '../../src/ml/grad-kernels.js';

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const av = a.dataSync(), bv = b.dataSync();
  let m = 0, scale = 1e-6;
  for (let i = 0; i < av.length; i++) { m = Math.max(m, Math.abs(av[i] - bv[i])); scale = Math.max(scale, Math.abs(bv[i])); }
  return m / scale;
}

function withFused<T>(on: boolean, f: () => T): T {
  const before = process.env.EYECASE_TRAIN_FUSED;
  process.env.EYECASE_TRAIN_FUSED = on ? '1' : '0';
  try { return f(); } finally { if (before === undefined) delete process.env.EYECASE_TRAIN_FUSED; else process.env.EYECASE_TRAIN_FUSED = before; }
}

const BACKENDS = ['cpu', 'wasm'];

describe('fused batch normalisation in training mode', () => {
  beforeAll(async () => {
    tf.env().set('PROD', true);
    registerGradKernels('wasm');
    registerFusedBatchNorm();
    await tf.setBackend('cpu');
  });
  afterAll(async () => { await tf.setBackend('cpu'); });

  // Odd sizes and ranks; a loss that also uses the mean and variance outputs, so their gradients
  // (zero inside the layers) are exercised too.
  const shapes = [[3, 5, 7, 6], [4, 1, 1, 2], [9, 3], [2, 6, 6, 33]];
  test.each(BACKENDS.flatMap((b) => shapes.map((s) => [b, s] as const)))('on %s, shape %j: outputs and gradients equal the elementary formula', async (backend, shape) => {
    await tf.setBackend(backend);
    const C = shape[shape.length - 1];
    const axes = shape.slice(0, -1).map((_, i) => i);
    const x = tf.randomUniform(shape, -2, 3, 'float32', 1);
    const gamma = tf.randomUniform([C], 0.5, 1.5, 'float32', 2) as tf.Tensor1D;
    const beta = tf.randomUniform([C], -1, 1, 'float32', 3) as tf.Tensor1D;
    const w = tf.randomUniform(shape, -1, 1, 'float32', 4);
    const wm = tf.randomUniform([C], -1, 1, 'float32', 5), wv = tf.randomUniform([C], -1, 1, 'float32', 6);
    const eps = 1e-3;
    const loss = (y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor) => tf.addN([tf.sum(tf.mul(y, w)), tf.sum(tf.mul(mean, wm)), tf.sum(tf.mul(variance, wv))]) as tf.Scalar;
    const fused = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const [y, mean, variance] = batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, eps);
      return loss(y, mean, variance);
    };
    const plain = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, axes);
      return loss(a.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(g).add(b), mean, variance);
    };
    const [y, mean, variance] = batchNormTraining(x, gamma, beta, eps);
    const ref = tf.moments(x, axes);
    expect(maxRelDiff(mean, ref.mean)).toBeLessThan(1e-5);
    expect(maxRelDiff(variance, ref.variance)).toBeLessThan(1e-5);
    expect(maxRelDiff(y, tf.batchNorm(x, ref.mean, ref.variance, beta, gamma, eps))).toBeLessThan(1e-5);
    const g1 = tf.grads(fused)([x, gamma, beta]);
    const g2 = tf.grads(plain)([x, gamma, beta]);
    g1.forEach((g, i) => expect(maxRelDiff(g, g2[i])).toBeLessThan(1e-4));
    tf.dispose([x, gamma, beta, w, wm, wv, y, mean, variance, ref.mean, ref.variance, ...g1, ...g2]);
  });
});

describe('training layers against the stock layers (compact network)', () => {
  beforeAll(async () => {
    tf.env().set('PROD', true);
    registerGradKernels('wasm');
    registerFusedBatchNorm();
  });
  afterAll(async () => { await tf.setBackend('cpu'); });

  // On wasm only: the whole network's backward pass on the plain JS backend takes minutes; the
  // kernels themselves are checked on both backends above.
  test('on wasm: same topology, same gradients, same moving statistics, same inference output', async () => {
    await tf.setBackend('wasm');
    const size = 21; // odd: asymmetric 'same' padding of the stride-2 first layer
    const stock = withFused(false, () => buildModel('compact', size));
    const fast = withFused(true, () => buildModel('compact', size));
    expect(JSON.stringify(fast.toJSON(null, false))).toBe(JSON.stringify(stock.toJSON(null, false)));
    fast.setWeights(stock.getWeights());
    const x = tf.randomUniform([5, size, size, 3], -1, 1, 'float32', 11);
    const r = tf.randomUniform([1, 128], -1, 1, 'float32', 12);
    // Up to the global average pool: the dropout after it is random.
    const gradsOf = (m: tf.LayersModel) => {
      const features = tf.model({ inputs: m.inputs, outputs: m.getLayer('gap').output as tf.SymbolicTensor });
      const vars = m.trainableWeights.filter((w) => !w.name.includes('logit')).map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(features.apply(x, { training: true }) as tf.Tensor, r)) as tf.Scalar, vars);
      return [value, ...vars.map((v) => grads[v.name])];
    };
    const gs = gradsOf(stock), gf = gradsOf(fast);
    expect(gf.length).toBe(gs.length);
    gf.forEach((g, i) => expect(maxRelDiff(g, gs[i])).toBeLessThan(1e-3));
    // Moving mean and variance were updated the same way by the training pass.
    const ws = stock.getWeights(), wf = fast.getWeights();
    wf.forEach((w, i) => expect(maxRelDiff(w, ws[i])).toBeLessThan(1e-5));
    expect(maxRelDiff(fast.predict(x) as tf.Tensor, stock.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
    tf.dispose([x, r, ...gs, ...gf]);
    stock.dispose();
    fast.dispose();
  });

  test('the first convolution no longer computes a gradient for the input image', async () => {
    await tf.setBackend('wasm');
    const count = async (fused: boolean) => {
      const m = withFused(fused, () => buildModel('compact', 16));
      const x = tf.randomUniform([2, 16, 16, 3], -1, 1, 'float32', 13);
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      const prof = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
        tf.dispose([value, ...Object.values(grads)]);
      });
      tf.dispose(x);
      m.dispose();
      return prof.kernels.filter((k) => k.name === 'Conv2DBackpropInput').length;
    };
    expect(await count(false)).toBe(6);
    expect(await count(true)).toBe(5);
  });
});
