// Serving through onnxruntime gives the training framework's answers: on the fixture eyes and
// non-eyes the committed baseline's probabilities agree with TF.js within 1e-4, the decisions
// (including NOT_AN_EYE) are the same, and each result says which runtime computed it. The
// exporter is also checked on odd input sizes, where TF.js' 'same' padding is asymmetric.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend.js';
import { foldChain, foldPlan } from '../../src/ml/fold.js';
import { loadClassifier, RUNTIME_AGREEMENT, type Classifier } from '../../src/ml/inference.js';
import { createOnnxEngine, runtimeChoice } from '../../src/ml/onnx-engine.js';
import { exportOnnx } from '../../src/ml/onnx-export.js';

const ROOT = path.resolve('test/fixtures');
const BUNDLE = path.resolve('models/eyes-compact-v2/model.eyemodel');

function imagesUnder(dir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...imagesUnder(p));
    else if (/\.(jpe?g|png|webp)$/i.test(entry.name)) out.push(new Uint8Array(fs.readFileSync(p)));
  }
  return out;
}

let onnx: Classifier;
let tfjs: Classifier;
beforeAll(async () => {
  const bytes = new Uint8Array(fs.readFileSync(BUNDLE));
  [onnx, tfjs] = await Promise.all([loadClassifier(bytes, { runtime: 'onnxruntime' }), loadClassifier(bytes, { runtime: 'tfjs' })]);
}, 120_000);
afterAll(() => { onnx?.dispose(); tfjs?.dispose(); });

test('onnxruntime and TF.js give the same probabilities, guard scores and decisions on the fixture images', async () => {
  const eyes = imagesUnder(path.join(ROOT, 'eyes'));
  const notEyes = imagesUnder(path.join(ROOT, 'not-eyes'));
  expect(eyes.length).toBeGreaterThan(50);
  expect(notEyes.length).toBeGreaterThan(50);
  const images = [...eyes, ...notEyes];
  const [a, b] = await Promise.all([onnx.predictBatch(images), tfjs.predictBatch(images)]);
  expect(a).toHaveLength(images.length);
  for (let i = 0; i < images.length; i++) {
    expect(Math.abs(a[i].pMale - b[i].pMale)).toBeLessThanOrEqual(RUNTIME_AGREEMENT);
    expect(a[i].decision).toBe(b[i].decision);
    expect(a[i].guard!.threshold).toBe(b[i].guard!.threshold);
    expect(Math.abs(a[i].guard!.score - b[i].guard!.score)).toBeLessThanOrEqual(1e-3 * (1 + Math.abs(b[i].guard!.score)));
  }
  // Both kinds of decision occur, so the comparison covers the guard as well as the band.
  const decisions = new Set(a.map((r) => r.decision));
  expect(decisions.has('NOT_AN_EYE')).toBe(true);
  expect(decisions.has('FEMALE') || decisions.has('MALE')).toBe(true);
});

test('each result names the runtime that computed it', async () => {
  const [image] = imagesUnder(path.join(ROOT, 'eyes', 'female'));
  const [one, alone] = await Promise.all([onnx.predict(image), tfjs.predict(image)]);
  expect(onnx.runtime).toMatch(/^onnxruntime-node \d+\.\d+\.\d+$/);
  expect(one.backend).toBe('onnxruntime');
  expect(one.device).toContain(onnx.runtime);
  expect(tfjs.runtime).toBe(`tfjs ${tfjs.backend.backend}`);
  expect(alone.backend).toBe(tfjs.backend.backend);
  expect(Math.abs(one.pMale - alone.pMale)).toBeLessThanOrEqual(RUNTIME_AGREEMENT);
  // Explanations run the occlusion through TF.js and say so.
  const explained = await onnx.explain(image);
  expect(explained.prediction.backend).toBe(tfjs.backend.backend);
});

test.each([45, 48, 33])('the exported graph matches the folded TF.js network at input size %i (features and logits)', async (size) => {
  await initBackend();
  const model = buildModel('compact', size);
  const plan = foldPlan(model)!;
  const folded = foldChain(model)!;
  try {
    const engine = (await createOnnxEngine(exportOnnx(plan, size)))!;
    const n = 3;
    const x = tf.randomUniform([n, size, size, 3], -1, 1, 'float32', size) as tf.Tensor4D;
    const [f, l] = folded.forwardWithFeatures!(x);
    const got = await engine.run(x.dataSync() as Float32Array, n);
    const want = { logits: l.dataSync(), features: f.dataSync() };
    expect(got.logits).toHaveLength(n);
    expect(got.features).toHaveLength(want.features.length);
    for (let i = 0; i < n; i++) expect(Math.abs(got.logits[i] - want.logits[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want.logits[i])));
    for (let i = 0; i < want.features.length; i++) expect(Math.abs(got.features![i] - want.features[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want.features[i])));
    tf.dispose([x, f, l]);
    await engine.release();
  } finally {
    plan.dispose();
    folded.dispose();
    model.dispose();
  }
}, 60_000);

test('a network with residual adds does not fold, so it cannot be exported', async () => {
  await initBackend();
  const model = buildModel('xception', 32);
  try {
    expect(foldPlan(model)).toBeNull();
  } finally {
    model.dispose();
  }
}, 60_000);

test('INFERENCE_RUNTIME accepts auto, onnxruntime and tfjs only', () => {
  expect(runtimeChoice(undefined)).toBe('auto');
  expect(runtimeChoice(' ONNXRUNTIME ')).toBe('onnxruntime');
  expect(runtimeChoice('tfjs')).toBe('tfjs');
  expect(() => runtimeChoice('torch')).toThrow(/INFERENCE_RUNTIME=torch is not one of auto, onnxruntime, tfjs/);
});
