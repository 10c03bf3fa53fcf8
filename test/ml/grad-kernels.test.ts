/**
 * The gradient kernels registered for wasm are checked against the plain JS (cpu) backend's own
 * kernels over several strides, paddings, dilations and kernel sizes.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  conv2dBackpropFilterImpl, conv2dBackpropInputImpl, depthwiseBackpropFilterImpl, depthwiseBackpropInputImpl,
  fastBatchNormGradConfig, registerGradKernels,
} from '../../src/ml/grad-kernels.js';

type Pad = 'same' | 'valid' | number;
interface Case { h: number; w: number; cin: number; k: number; s: number; pad: Pad; cout: number; d?: number }

const convCases: Case[] = [
  { h: 7, w: 7, cin: 3, k: 3, s: 1, pad: 'same', cout: 4 },
  { h: 8, w: 8, cin: 3, k: 3, s: 2, pad: 'same', cout: 5 },
  { h: 9, w: 7, cin: 2, k: 3, s: 2, pad: 'valid', cout: 3 },
  { h: 6, w: 6, cin: 4, k: 1, s: 1, pad: 'valid', cout: 2 },
  { h: 9, w: 9, cin: 2, k: 5, s: 2, pad: 'same', cout: 3 },
  { h: 8, w: 8, cin: 3, k: 2, s: 2, pad: 'valid', cout: 4 },
  { h: 7, w: 8, cin: 2, k: 3, s: 1, pad: 1, cout: 3 },
  { h: 10, w: 10, cin: 2, k: 3, s: 3, pad: 'same', cout: 2 },
];
const dwCases: Array<Case & { m: number }> = [
  { h: 7, w: 7, cin: 3, k: 3, s: 1, pad: 'same', cout: 0, m: 1 },
  { h: 8, w: 8, cin: 4, k: 3, s: 2, pad: 'same', cout: 0, m: 1 },
  { h: 9, w: 7, cin: 2, k: 3, s: 2, pad: 'valid', cout: 0, m: 2 },
  { h: 6, w: 6, cin: 2, k: 1, s: 1, pad: 'valid', cout: 0, m: 3 },
  { h: 8, w: 8, cin: 2, k: 2, s: 2, pad: 'same', cout: 0, m: 2 },
];

function rand(shape: number[], seed: number): tf.Tensor4D {
  return tf.randomUniform(shape as [number, number, number, number], -1, 1, 'float32', seed) as tf.Tensor4D;
}

function maxAbsDiff(a: Float32Array | number[], b: Float32Array | number[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function outSize(h: number, k: number, s: number, pad: Pad, d = 1): number {
  const ek = (k - 1) * d + 1;
  if (pad === 'same') return Math.ceil(h / s);
  if (pad === 'valid') return Math.ceil((h - ek + 1) / s);
  return Math.floor((h + 2 * pad - ek) / s) + 1;
}

describe('wasm gradient kernels match the plain JS backend', () => {
  beforeAll(async () => {
    tf.env().set('PROD', true); // no "install tfjs-node" banner from the cpu backend
    registerGradKernels('wasm');
    await tf.setBackend('cpu');
  });

  const refs: Record<string, Float32Array> = {};

  test.each(convCases.map((c, i) => [i, c] as const))('conv2d case %i on cpu: implementation equals the cpu kernels', async (i, c) => {
    const x = rand([2, c.h, c.w, c.cin], 10 + i);
    const filter = rand([c.k, c.k, c.cin, c.cout], 20 + i);
    const dy = rand([2, outSize(c.h, c.k, c.s, c.pad), outSize(c.w, c.k, c.s, c.pad), c.cout], 30 + i);
    const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const refW = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape } as never) as tf.Tensor;
    const refX = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape } as never) as tf.Tensor;
    const myW = conv2dBackpropFilterImpl(x, dy, filter.shape, c.s, c.pad);
    const myX = conv2dBackpropInputImpl(dy, filter, x.shape, c.s, c.pad);
    expect(myW.shape).toEqual(refW.shape);
    expect(myX.shape).toEqual(refX.shape);
    expect(maxAbsDiff(myW.dataSync() as Float32Array, refW.dataSync() as Float32Array)).toBeLessThan(1e-4);
    expect(maxAbsDiff(myX.dataSync() as Float32Array, refX.dataSync() as Float32Array)).toBeLessThan(1e-4);
    refs[`conv${i}W`] = refW.dataSync() as Float32Array;
    refs[`conv${i}X`] = refX.dataSync() as Float32Array;
    tf.dispose([x, filter, dy, refW, refX, myW, myX]);
  });

  test.each(dwCases.map((c, i) => [i, c] as const))('depthwise case %i on cpu: implementation equals the cpu kernels', async (i, c) => {
    const d = c.d ?? 1;
    const x = rand([2, c.h, c.w, c.cin], 40 + i);
    const filter = rand([c.k, c.k, c.cin, c.m], 50 + i);
    const dy = rand([2, outSize(c.h, c.k, c.s, c.pad, d), outSize(c.w, c.k, c.s, c.pad, d), c.cin * c.m], 60 + i);
    const attrs = { strides: [c.s, c.s], dilations: [d, d], pad: c.pad, dimRoundingMode: undefined };
    const refW = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: filter.shape } as never) as tf.Tensor;
    const refX = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...attrs, inputShape: x.shape } as never) as tf.Tensor;
    const myW = depthwiseBackpropFilterImpl(x, dy, filter.shape, c.s, d, c.pad);
    const myX = depthwiseBackpropInputImpl(dy, filter, x.shape, c.s, d, c.pad);
    expect(myW.shape).toEqual(refW.shape);
    expect(myX.shape).toEqual(refX.shape);
    expect(maxAbsDiff(myW.dataSync() as Float32Array, refW.dataSync() as Float32Array)).toBeLessThan(1e-4);
    expect(maxAbsDiff(myX.dataSync() as Float32Array, refX.dataSync() as Float32Array)).toBeLessThan(1e-4);
    tf.dispose([x, filter, dy, refW, refX, myW, myX]);
  });

  test('dilated depthwise gradients equal a brute-force reference (tfjs has no dilated reference kernel)', () => {
    const [N, H, W, C, M, K, D] = [2, 9, 8, 3, 2, 3, 2];
    const x = rand([N, H, W, C], 5);
    const f = rand([K, K, C, M], 6);
    const info = tf.backend_util.computeConv2DInfo([N, H, W, C], [K, K, C, M], 1, D, 'same', undefined, true);
    const [Ho, Wo, top, left] = [info.outHeight, info.outWidth, info.padInfo.top, info.padInfo.left];
    const dy = rand([N, Ho, Wo, C * M], 7);
    const xv = x.dataSync(), fv = f.dataSync(), dv = dy.dataSync();
    const dW = new Float32Array(K * K * C * M), dX = new Float32Array(N * H * W * C);
    for (let n = 0; n < N; n++) for (let y = 0; y < Ho; y++) for (let xx = 0; xx < Wo; xx++) for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
      const h = y + i * D - top, w = xx + j * D - left;
      if (h < 0 || h >= H || w < 0 || w >= W) continue;
      for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) {
        const g = dv[((n * Ho + y) * Wo + xx) * C * M + c * M + m];
        dW[((i * K + j) * C + c) * M + m] += xv[((n * H + h) * W + w) * C + c] * g;
        dX[((n * H + h) * W + w) * C + c] += fv[((i * K + j) * C + c) * M + m] * g;
      }
    }
    const myW = depthwiseBackpropFilterImpl(x, dy, [K, K, C, M], 1, D, 'same');
    const myX = depthwiseBackpropInputImpl(dy, f, [N, H, W, C], 1, D, 'same');
    expect(maxAbsDiff(myW.dataSync() as Float32Array, dW)).toBeLessThan(1e-4);
    expect(maxAbsDiff(myX.dataSync() as Float32Array, dX)).toBeLessThan(1e-4);
    tf.dispose([x, f, dy, myW, myX]);
  });

  test('on the wasm backend, tf.grads through conv2d and depthwiseConv2d equal the cpu results', async () => {
    const cases = [convCases[1], convCases[2], convCases[4]];
    const run = () => cases.map((c, i) => {
      const x = rand([2, c.h, c.w, c.cin], 70 + i);
      const f = rand([c.k, c.k, c.cin, c.cout], 80 + i);
      const df = rand([c.k, c.k, c.cin, 2], 90 + i);
      const [gx, gf, gdf] = tf.grads((a: tf.Tensor, b: tf.Tensor, e: tf.Tensor) =>
        tf.add(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad).square().sum(),
          tf.depthwiseConv2d(a as tf.Tensor4D, e as tf.Tensor4D, c.s, c.pad).square().sum()))([x, f, df]);
      const out = [gx, gf, gdf].map((g) => Array.from(g.dataSync()));
      tf.dispose([x, f, df, gx, gf, gdf]);
      return out;
    });
    await tf.setBackend('cpu');
    const cpu = run();
    await tf.setBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const wasm = run();
    await tf.setBackend('cpu');
    cpu.forEach((c, i) => c.forEach((arr, j) => {
      const scale = Math.max(1, ...arr.map(Math.abs));
      expect(maxAbsDiff(wasm[i][j], arr) / scale).toBeLessThan(1e-4);
    }));
  });

  test('the batch-norm gradient equals the gradient of the same formula written with elementary ops', () => {
    const x = rand([4, 5, 5, 3], 1);
    const scale = tf.tensor1d([0.5, 1.5, -1]);
    const offset = tf.tensor1d([0.1, 0.2, 0.3]);
    const dyW = rand([4, 5, 5, 3], 2);
    const eps = 1e-3;
    const fused = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.batchNorm(a, mean, variance, o as tf.Tensor1D, s as tf.Tensor1D, eps).mul(dyW).sum();
    };
    const plain = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return a.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(s).add(o).mul(dyW).sum();
    };
    tf.registerGradient(fastBatchNormGradConfig);
    const g1 = tf.grads(fused)([x, scale, offset]);
    const g2 = tf.grads(plain)([x, scale, offset]);
    g1.forEach((g, i) => expect(maxAbsDiff(g.dataSync() as Float32Array, g2[i].dataSync() as Float32Array)).toBeLessThan(1e-4));
    tf.dispose([x, scale, offset, dyW, ...g1, ...g2]);
  });
});
