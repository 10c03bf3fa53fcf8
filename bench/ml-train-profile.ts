/**
 * Where a training step's time goes: npm run bench:ml-train-profile [-- --size 48 --batch 32 --rounds 8]
 *
 * One replica's step (batch = its shard of the global batch: 64 over 2 worker threads = 32) of the
 * compact network on this thread's backend, run on the training layers (src/ml/train-layers.ts)
 * and on the stock tfjs layers (EYECASE_TRAIN_FUSED=0), alternating, in the same process. Times are
 * CPU time of this thread (process.cpuUsage, single-threaded backend), which another agent's load
 * disturbs far less than wall time; the minimum and median over the rounds are printed. Then a
 * per-kernel profile of one step of each (tf.profile, wall time: nested kernels count twice, e.g.
 * Conv2D inside Conv2DBackpropFilter), and the replica's own costs: batch assembly with
 * augmentation, AdamW update, copying the gradients. Last, per layer of the network (CPU time):
 * the forward convolution, the two backward convolutions (src/ml/grad-kernels.ts) and the fused
 * batch-norm kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/ml/index.js';
import { buildModel } from '../src/ml/architectures.js';
import { ReplicaCore } from '../src/ml/replica.js';
import { makeBatch } from '../src/ml/data.js';
import { mulberry32 } from '../src/ml/rng.js';
import { conv2dBackpropFilterImpl, conv2dBackpropInputImpl } from '../src/ml/grad-kernels.js';
import { BN_TRAIN_GRAD, batchNormTraining, registerFusedBatchNorm } from '../src/ml/fused-batch-norm.js';

const args = process.argv.slice(2);
const get = (name: string, dflt: number) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : dflt; };
const size = get('size', 48), batch = get('batch', 32), rounds = get('rounds', 8);

const info = await initBackend();
console.log(`backend ${info.backend} / ${info.device}; compact ${size} px, batch ${batch}`);

const cpuMs = (f: () => void) => { const c = process.cpuUsage(); f(); const d = process.cpuUsage(c); return (d.user + d.system) / 1000; };
const stats = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return { min: s[0], median: s[Math.floor(s.length / 2)] }; };
const fmt = (xs: number[]) => { const s = stats(xs); return `min ${s.min.toFixed(0)} / median ${s.median.toFixed(0)} ms`; };

function withLayers<T>(fused: boolean, f: () => T): T {
  const before = process.env.EYECASE_TRAIN_FUSED;
  process.env.EYECASE_TRAIN_FUSED = fused ? '1' : '0';
  try { return f(); } finally { if (before === undefined) delete process.env.EYECASE_TRAIN_FUSED; else process.env.EYECASE_TRAIN_FUSED = before; }
}

const x = tf.randomUniform([batch, size, size, 3], -1, 1);
const y = tf.randomUniform([batch, 1]).round();
const variants = [false, true].map((fused) => {
  const model = withLayers(fused, () => buildModel('compact', size));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => tf.losses.sigmoidCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
    value.dataSync();
    Object.values(grads).forEach((g) => g.dataSync());
  });
  const forward = () => tf.tidy(() => { (model.apply(x, { training: true }) as tf.Tensor).dataSync(); });
  return { name: fused ? 'training layers' : 'stock layers', step, forward, steps: [] as number[], forwards: [] as number[] };
});
for (const v of variants) { v.step(); v.step(); }
for (let r = 0; r < rounds; r++) for (const v of variants) { v.steps.push(cpuMs(v.step)); v.forwards.push(cpuMs(v.forward)); }
for (const v of variants) console.log(`${v.name.padEnd(16)} step (forward+backward) ${fmt(v.steps)}; forward alone ${fmt(v.forwards)}`);
const [stock, fused] = variants.map((v) => stats(v.steps).min);
console.log(`step ratio stock/training layers (min CPU time): ${(stock / fused).toFixed(2)}x`);

for (const v of variants) {
  const prof = await tf.profile(() => { v.step(); });
  const by = new Map<string, { ms: number; n: number }>();
  for (const k of prof.kernels) {
    const e = by.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += k.kernelTimeMs as number; e.n++;
    by.set(k.name, e);
  }
  console.log(`\n${v.name}: ${prof.kernels.length} kernel calls; per kernel (wall ms, nested counted twice):`);
  for (const [name, e] of [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).filter(([, e]) => e.ms >= 0.5)) console.log(`  ${name.padEnd(36)} ${e.ms.toFixed(1).padStart(7)}  x${e.n}`);
}

// The replica's own costs per step (what a worker thread does besides the network).
{
  const count = 512, per = size * size * 3;
  const pixels = new Uint8Array(count * per).map((_, i) => (i * 2654435761) >>> 24);
  const labels = Uint8Array.from({ length: count }, (_, i) => i & 1);
  const core = new ReplicaCore();
  await core.init({ architecture: 'compact', inputSize: size, pixels, labels, degraded: pixels });
  const idx = Array.from({ length: batch }, (_, i) => (i * 37) % count);
  const rep = (f: () => void) => { f(); return fmt(Array.from({ length: rounds }, () => cpuMs(f))); };
  const aug = rep(() => { makeBatch(pixels, size, idx, mulberry32(1), pixels); });
  const plain = rep(() => { makeBatch(pixels, size, idx, null); });
  // ReplicaCore computes inside the call (its promise is already settled when computeGrads returns).
  const batchInput = { indices: idx, seed: 1, augment: true, pixels: makeBatch(pixels, size, idx, mulberry32(1), pixels) };
  const g = await core.computeGrads(batchInput);
  const grads = rep(() => { void core.computeGrads(batchInput); });
  const apply = rep(() => { core.applyGrads(g.grads, 1e-3, 1e-4); });
  const clone = rep(() => { structuredClone(g.grads); });
  console.log(`\nreplica, batch ${batch}: computeGrads ${grads}; batch assembly (the trainer's thread, or each replica's) with augmentation ${aug} (without ${plain}); ` +
    `applyGrads (AdamW) ${apply}; structuredClone of the gradients ${clone}`);
  core.dispose();
}

// Per layer: convolutions forward and backward, fused batch norm forward and backward (CPU ms, min over the rounds).
{
  registerFusedBatchNorm();
  const minCpu = (f: () => void) => { f(); return Math.min(...Array.from({ length: rounds }, () => cpuMs(f))); };
  const layers: Array<[number, number, number, number]> = [[size, 3, 32, 2], [size / 2, 32, 32, 1], [size / 4, 32, 64, 1], [size / 4, 64, 64, 1], [size / 8, 64, 128, 1], [size / 8, 128, 128, 1]];
  const total = { fwd: 0, dW: 0, dX: 0, bn: 0, bnGrad: 0 };
  console.log('\nper layer, CPU ms: forward conv | Conv2DBackpropFilter | Conv2DBackpropInput | fused BN forward | fused BN backward');
  for (const [h, ci, co, s] of layers) {
    const ho = Math.ceil(h / s);
    const xin = tf.randomUniform([batch, h, h, ci], -1, 1) as tf.Tensor4D;
    const w = tf.randomUniform([3, 3, ci, co], -1, 1) as tf.Tensor4D;
    const dy = tf.randomUniform([batch, ho, ho, co], -1, 1) as tf.Tensor4D;
    const gamma = tf.ones([co]) as tf.Tensor1D, beta = tf.zeros([co]) as tf.Tensor1D;
    const [, mean, variance] = batchNormTraining(dy, gamma, beta, 1e-3);
    const fwd = minCpu(() => tf.tidy(() => { tf.conv2d(xin, w, s, 'same').dataSync(); }));
    const dW = minCpu(() => tf.tidy(() => { conv2dBackpropFilterImpl(xin, dy, [3, 3, ci, co], s, 'same').dataSync(); }));
    const dX = minCpu(() => tf.tidy(() => { conv2dBackpropInputImpl(dy, w, xin.shape, s, 'same').dataSync(); }));
    const bn = minCpu(() => tf.tidy(() => { batchNormTraining(dy, gamma, beta, 1e-3)[0].dataSync(); }));
    const bnGrad = minCpu(() => tf.tidy(() => {
      (tf.engine().runKernel(BN_TRAIN_GRAD, { dy, x: dy, gamma, mean, variance, dMean: beta, dVariance: beta } as never, { epsilon: 1e-3 } as never) as tf.Tensor[])[0].dataSync();
    }));
    Object.assign(total, { fwd: total.fwd + fwd, dW: total.dW + dW, dX: total.dX + dX, bn: total.bn + bn, bnGrad: total.bnGrad + bnGrad });
    console.log(`  [${batch},${h},${h},${ci}] -> ${co}, stride ${s}: ${[fwd, dW, dX, bn, bnGrad].map((v) => v.toFixed(1)).join(' | ')}`);
    tf.dispose([xin, w, dy, gamma, beta, mean, variance]);
  }
  console.log(`  total: ${Object.values(total).map((v) => v.toFixed(1)).join(' | ')} (the first layer's Conv2DBackpropInput is only computed by the stock layers)`);
}
