// Training on onnxruntime computes what TF.js computes: on fixture eyes, the hand-written backward
// graph's loss and gradients match TF.js' automatic differentiation (same weights, same dropout
// mask), at the standard size and at an odd one where 'same' padding and pooling are asymmetric;
// the evaluation graph matches model.predict; the replica's Adam(W) update and moving statistics
// match the TF.js replica's; networks the graphs cannot express are refused or left to TF.js.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { buildModel, ONNX_TRAINABLE, ARCHITECTURES, type Architecture } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend.js';
import { decodeItems, makeBatch, type LabelledItem } from '../../src/ml/data.js';
import { TrainingInputError } from '../../src/ml/errors.js';
import { chainLayers } from '../../src/ml/fold.js';
import { nchwcBlockSize } from '../../src/ml/onnx-engine.js';
import { NCHWC_DOMAIN, onnx } from '../../src/ml/onnx-graph.js';
import {
  EVAL_FEATURES, TRAIN_IMAGE, TRAIN_LABEL, TRAIN_LOGIT, TRAIN_LOSS, TRAIN_MASK, batchMeanOutput, chainGraph, gradOutput, trainableChain, weightInput, type TrainableChain,
} from '../../src/ml/onnx-training.js';
import { ReplicaCore } from '../../src/ml/replica.js';
import { OnnxReplicaCore } from '../../src/ml/replica-onnx.js';
import { mulberry32 } from '../../src/ml/rng.js';
import { chooseTrainingRuntime, trainingRuntimeChoice } from '../../src/ml/training-runtime.js';
import { loadClassifier } from '../../src/ml/inference.js';
import { shardedFeatures, trainClassifier } from '../../src/ml/trainer.js';
import { LocalReplica } from '../../src/ml/replica-client.js';

const EYES = path.resolve('test/fixtures/eyes');

function fixtureEyes(perClass = 16): LabelledItem[] {
  const items: LabelledItem[] = [];
  for (const label of ['FEMALE', 'MALE'] as const) {
    const dir = path.join(EYES, label.toLowerCase());
    for (const f of fs.readdirSync(dir).sort().slice(0, perClass)) items.push({ id: f, label, bytes: new Uint8Array(fs.readFileSync(path.join(dir, f))) });
  }
  return items;
}

/** ||a - b|| / ||b||. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/**
 * A network with seeded weights (TF.js draws its initial ones unseeded) and non-trivial batch-norm
 * parameters and moving statistics (fresh ones are 1 and 0).
 */
function perturbedModel(architecture: Architecture, size: number, seed = 5): tf.LayersModel {
  const model = buildModel(architecture, size);
  const rand = mulberry32(seed);
  for (const w of model.weights) {
    if (/kernel/.test(w.originalName)) {
      const fanIn = w.shape.slice(0, -1).reduce((p, d) => p! * d!, 1)!;
      const scale = Math.sqrt(6 / fanIn); // He-uniform
      w.write(tf.tensor(Float32Array.from({ length: w.shape.reduce((p, d) => p! * d!, 1)! }, () => (rand() * 2 - 1) * scale), w.shape as number[]));
    }
    if (/gamma|moving_variance/.test(w.originalName)) w.write(tf.tensor(Float32Array.from({ length: w.shape.reduce((p, d) => p! * d!, 1)! }, () => 0.5 + rand()), w.shape as number[]));
    if (/beta|moving_mean/.test(w.originalName)) w.write(tf.tensor(Float32Array.from({ length: w.shape.reduce((p, d) => p! * d!, 1)! }, () => rand() - 0.5), w.shape as number[]));
  }
  return model;
}

const nchwcConvCount = (bytes: Uint8Array): number =>
  onnx.ModelProto.decode(bytes).graph!.node!.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === 'Conv').length;

const feedsFor = (model: tf.LayersModel, extra: Record<string, ort.Tensor>): Record<string, ort.Tensor> => {
  const feeds = { ...extra };
  model.weights.forEach((w, i) => { feeds[weightInput(i)] = new ort.Tensor('float32', w.read().dataSync() as Float32Array, w.shape as number[]); });
  return feeds;
};

beforeAll(async () => { await initBackend(); });

// onnxruntime's blocked-layout (NCHWc) convolutions where this CPU has them, and plain Conv.
let block: number | null = null;
beforeAll(async () => {
  block = await nchwcBlockSize();
  // MLAS's NCHWc kernels: blocks of 8 channels with AVX2, 16 with AVX-512 (every x86-64 CPU this runs on).
  if (process.arch === 'x64') expect(block).not.toBeNull();
});

describe.each([
  ['compact', 48, 'nchwc'],
  ['compact', 48, 'conv'],
  ['compact-wide', 33, 'nchwc'],
  ['compact-wide', 33, 'conv'],
] as const)('%s at %i px, convolutions on %s', (architecture, size, layout) => {
  const graph = (chain: TrainableChain, model: tf.LayersModel, mode: 'train' | 'eval') =>
    chainGraph(chain, model.weights.map((w) => w.shape as number[]), model.weights.map((w) => w.trainable), mode, layout === 'nchwc' ? block : null);
  let items: LabelledItem[];
  let pixels: Float32Array;
  let labels: Float32Array;
  const n = 32;
  beforeAll(async () => {
    items = fixtureEyes();
    const { set } = await decodeItems(items, size);
    pixels = makeBatch(set.pixels, size, Array.from({ length: n }, (_, i) => i), mulberry32(9), set.degraded);
    labels = Float32Array.from(set.labels.subarray(0, n));
  });

  test('the training graph gives TF.js\' loss, gradients and batch statistics', async () => {
    const model = perturbedModel(architecture, size);
    const chain = trainableChain(model)!;
    // One thread: the same reduction order every run.
    const bytes = graph(chain, model, 'train');
    // Blocked: every forward convolution and every input gradient but the first layer's (none needed).
    const convs = chain.layers.filter((l) => l.kind === 'conv').length;
    expect(nchwcConvCount(bytes)).toBe(layout === 'nchwc' ? 2 * convs - 1 : 0);
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'extended', intraOpNumThreads: 1 });
    const rand = mulberry32(4);
    const mask = Float32Array.from({ length: n * chain.featureDim }, () => (rand() < 0.3 ? 0 : 1 / 0.7));
    const out = await session.run(feedsFor(model, {
      [TRAIN_IMAGE]: new ort.Tensor('float32', pixels, [n, size, size, 3]),
      [TRAIN_LABEL]: new ort.Tensor('float32', labels, [n, 1]),
      [TRAIN_MASK]: new ort.Tensor('float32', mask, [n, chain.featureDim]),
    }));

    // TF.js: the layers one by one in training mode, the dropout replaced by the same mask.
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const batchMeans: Float32Array[] = [];
    const { value, grads } = tf.variableGrads(() => {
      let t: tf.Tensor = tf.tensor4d(pixels, [n, size, size, 3]);
      for (const layer of chainLayers(model)!) {
        const cls = layer.getClassName();
        if (cls === 'InputLayer') continue;
        if (cls === 'Dropout') { t = t.mul(tf.tensor2d(mask, [n, chain.featureDim])); continue; }
        if (cls === 'BatchNormalization') batchMeans.push(t.mean([0, 1, 2]).dataSync() as Float32Array);
        t = layer.apply(t, { training: true }) as tf.Tensor;
      }
      return tf.losses.sigmoidCrossEntropy(tf.tensor2d(labels, [n, 1]), t) as tf.Scalar;
    }, variables);

    expect(Math.abs((out[TRAIN_LOSS].data as Float32Array)[0] - value.dataSync()[0])).toBeLessThan(1e-5);
    // Typically about 1e-6 (relative). Batch norm's input gradient is a small difference of large
    // terms, summed in float32 here and in float64 by TF.js' fused kernel: with seeded weights (seed
    // 5), the layers below the fourth convolution differ by 2.5e-3 to 6e-3. A wrong rule is off by far more.
    const errors: number[] = [];
    model.weights.forEach((w, i) => {
      if (!w.trainable) return;
      const reference = grads[(w.read() as tf.Variable).name].dataSync() as Float32Array;
      const got = out[gradOutput(i)].data as Float32Array;
      expect(got.length).toBe(reference.length);
      errors.push(relativeError(got, reference));
    });
    expect(errors.length).toBe(model.trainableWeights.length);
    expect(Math.max(...errors)).toBeLessThan(2e-2);
    const bnLayers = chain.layers.flatMap((l, i) => (l.kind === 'batchNorm' ? [i] : []));
    bnLayers.forEach((layer, k) => expect(relativeError(out[batchMeanOutput(layer)].data as Float32Array, batchMeans[k])).toBeLessThan(1e-4));
    await session.release();
  }, 60_000);

  test('the evaluation graph gives model.predict\'s logits and the pooled features', async () => {
    const model = perturbedModel(architecture, size);
    const chain = trainableChain(model)!;
    const session = await ort.InferenceSession.create(graph(chain, model, 'eval'));
    const out = await session.run(feedsFor(model, { [TRAIN_IMAGE]: new ort.Tensor('float32', pixels, [n, size, size, 3]) }));
    const x = tf.tensor4d(pixels, [n, size, size, 3]);
    const reference = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
    const features = (tf.model({ inputs: model.inputs, outputs: model.getLayer('gap').output as tf.SymbolicTensor }).predict(x) as tf.Tensor).dataSync() as Float32Array;
    expect(relativeError(out[TRAIN_LOGIT].data as Float32Array, reference)).toBeLessThan(1e-4);
    expect(relativeError(out[EVAL_FEATURES].data as Float32Array, features)).toBeLessThan(1e-4);
    await session.release();
  }, 60_000);
});

test('the onnxruntime replica updates weights, Adam state and moving statistics as the TF.js replica does', async () => {
  const items = fixtureEyes();
  const { set } = await decodeItems(items, 32);
  const init = { architecture: 'compact' as const, inputSize: 32, pixels: set.pixels, labels: set.labels };
  const [tfjs, onnx] = [new ReplicaCore(), new OnnxReplicaCore(1)];
  const info = await tfjs.init(init);
  const onnxInfo = await onnx.init(init);
  expect(onnxInfo.backend).toBe('onnxruntime');
  expect(onnxInfo.device).toMatch(/^cpu \(onnxruntime-node \d+\.\d+\.\d+, 1 thread\)$/);
  expect(onnxInfo.weightNames).toEqual(info.weightNames);
  onnx.setWeights(tfjs.getWeights());

  const indices = Array.from({ length: 24 }, (_, i) => i);
  const batch = { indices, seed: 1, augment: false };
  // Gradients differ by their dropout masks; apply the same ones to both.
  const { grads } = await tfjs.computeGrads(batch);
  await onnx.computeGrads(batch);
  for (let s = 0; s < 3; s++) {
    tfjs.applyGrads(grads, 0.01, 0.02);
    onnx.applyGrads(grads, 0.01, 0.02);
  }
  const [a, b] = [tfjs.getWeights(), onnx.getWeights()];
  a.forEach((w, i) => expect(relativeError(b[i], w)).toBeLessThan(1e-5)); // trainable: Adam; moving stats: the batch's
  const [sa, sb] = [tfjs.getOptState(), onnx.getOptState()];
  expect(sb.t).toBe(sa.t);
  sa.v.forEach((v, i) => expect(relativeError(sb.v[i], v)).toBeLessThan(1e-5));

  // Its logits and features (validation and the serving fit) use the moving statistics, as TF.js
  // inference does; the artifacts carry its weights.
  for (const [augSeed, flip] of [[null, true], [3, false], [3, true]] as const) {
    const [fa, fb] = [await tfjs.logitsAndFeatures({ indices, augSeed }, flip), await onnx.logitsAndFeatures({ indices, augSeed }, flip)];
    expect(fb.dim).toBe(fa.dim);
    expect(relativeError(fb.logits, fa.logits)).toBeLessThan(1e-4);
    expect(relativeError(fb.features, fa.features)).toBeLessThan(1e-4);
  }
  const served = (await onnx.logitsAndFeatures({ indices, augSeed: null }, true)).logits;
  const saved = await onnx.exportArtifacts();
  const reloaded = new ReplicaCore();
  await reloaded.init(init);
  reloaded.setWeightsFromArtifacts(saved.weightData, saved.weightSpecs as never);
  expect(relativeError((await reloaded.logitsAndFeatures({ indices, augSeed: null }, true)).logits, served)).toBeLessThan(1e-4);
  [tfjs, onnx, reloaded].forEach((r) => r.dispose());
}, 60_000);

test('replicas sharing the serving fit\'s forward passes give what one replica gives', async () => {
  const items = fixtureEyes();
  const { set } = await decodeItems(items, 32);
  const init = { architecture: 'compact' as const, inputSize: 32, pixels: set.pixels, labels: set.labels };
  const replicas = [1, 2, 2].map((n) => new LocalReplica({ runtime: 'onnxruntime', threads: 1, replicas: n }));
  const infos = await Promise.all(replicas.map((r) => r.init(init)));
  expect(infos[0].device).toMatch(/^cpu \(onnxruntime-node \d+\.\d+\.\d+, 1 thread\)$/);
  expect(infos[1].device).toMatch(/^cpu \(onnxruntime-node \d+\.\d+\.\d+, 2 replicas x 1 thread\)$/);
  const weights = await replicas[0].getWeights();
  await Promise.all(replicas.slice(1).map((r) => r.setWeights(weights)));
  const [one, shared] = [shardedFeatures(replicas.slice(0, 1)), shardedFeatures(replicas.slice(1))];
  const indices = Array.from({ length: 25 }, (_, i) => i); // odd: unequal shards
  const raw = { pixels: set.pixels.slice(0, 7 * 32 * 32 * 3), count: 7 };
  for (const [source, flip] of [[{ indices, augSeed: null }, true], [{ indices, augSeed: null }, false], [raw, false]] as const) {
    const [a, b] = [await one.logitsAndFeatures(source, flip), await shared.logitsAndFeatures(source, flip)];
    expect(b.dim).toBe(a.dim);
    expect(b.logits.length).toBe(a.logits.length);
    expect(relativeError(b.logits, a.logits)).toBeLessThan(1e-5);
    expect(relativeError(b.features, a.features)).toBeLessThan(1e-5);
  }
  // Augmented: the first shard draws what one replica draws; the second, other draws of its own.
  const [a, b] = [await one.logitsAndFeatures({ indices, augSeed: 3 }, false), await shared.logitsAndFeatures({ indices, augSeed: 3 }, false)];
  const first = 13; // ceil(25 / 2)
  expect(relativeError(b.logits.subarray(0, first), a.logits.subarray(0, first))).toBeLessThan(1e-5);
  expect(relativeError(b.logits.subarray(first), a.logits.subarray(first))).toBeGreaterThan(1e-3);
  await Promise.all(replicas.map((r) => r.close()));
}, 60_000);

test('only the chain-shaped networks train on onnxruntime; a forced choice that cannot is refused', async () => {
  for (const architecture of ARCHITECTURES) {
    const model = buildModel(architecture, 64);
    expect(trainableChain(model) !== null).toBe(ONNX_TRAINABLE.includes(architecture));
    model.dispose();
  }
  await expect(chooseTrainingRuntime('xception', 'onnxruntime')).rejects.toThrow(TrainingInputError);
  await expect(chooseTrainingRuntime('xception', 'auto')).resolves.toBe('tfjs');
  await expect(chooseTrainingRuntime('compact', 'auto')).resolves.toBe('onnxruntime');
  await expect(chooseTrainingRuntime('compact', 'tfjs')).resolves.toBe('tfjs');
  expect(trainingRuntimeChoice(' ONNXRUNTIME ')).toBe('onnxruntime');
  expect(trainingRuntimeChoice(undefined)).toBe('auto');
  expect(() => trainingRuntimeChoice('torch')).toThrow(/TRAINING_RUNTIME=torch is not one of auto, onnxruntime, tfjs/);
}, 60_000);

// (train.test.ts trains on the default, onnxruntime, and checks the bundle says so.)
test('TRAINING_RUNTIME=tfjs trains on TF.js and the bundle records it', async () => {
  const items = fixtureEyes(30);
  const before = process.env.TRAINING_RUNTIME;
  process.env.TRAINING_RUNTIME = 'tfjs';
  try {
    const seen: string[] = [];
    const result = await trainClassifier({
      items, workers: 0, hyperparameters: { inputSize: 24, epochs: 2, batchSize: 8, seed: 2, earlyStoppingPatience: 0 },
      onEpoch: (e) => { seen.push(e.backend); },
    });
    expect(seen).toEqual(['wasm', 'wasm']);
    expect(result.meta.backend).toBe('wasm');
    const classifier = await loadClassifier(result.bundle);
    const p = await classifier.predict(items[0].bytes);
    expect(p.pFemale + p.pMale).toBeCloseTo(1, 5);
    classifier.dispose();
  } finally {
    if (before === undefined) delete process.env.TRAINING_RUNTIME; else process.env.TRAINING_RUNTIME = before;
  }
}, 240_000);
