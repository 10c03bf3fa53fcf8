import { loadConfig } from '../../src/config.js';
/**
 * The out-of-distribution guard: fitted at training time into the bundle (format 2), refuses
 * synthetic non-eyes and keeps real eye crops; a format-1 bundle still loads and has no guard.
 * Only repository files and generated images are used.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { encodeContainer, decodeContainer } from '../../src/ml/container.js';
import { eyeReport, listImageFiles, listLabelledFolder, notEyeReport, scoreEntries } from '../../src/ml/folder-eval.js';
import {
  decodeBundle, generateNegatives, initBackend, loadClassifier, readBundleMeta, readLabelledFolder, refitServing, trainClassifier, TrainingInputError,
  type Classifier, type TrainResult,
} from '../../src/ml/index.js';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { EYE_FIXTURES_DIR } from '../support/images.js';

const NOT_EYES_DIR = path.join(PROJECT_ROOT, 'test', 'fixtures', 'not-eyes');

/** Images made here, unlike both the guard's training negatives and the committed set. */
async function freshNonEyes(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const solid = (r: number, g: number, b: number, w = 64, h = 64) => sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } });
  out.push(await solid(255, 0, 0).png().toBuffer(), await solid(0, 0, 0).jpeg().toBuffer(), await solid(250, 250, 250, 120, 80).png().toBuffer(), await solid(90, 160, 230, 200, 100).jpeg().toBuffer());
  const noise = Buffer.alloc(80 * 80 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  out.push(await sharp(noise, { raw: { width: 80, height: 80, channels: 3 } }).png().toBuffer());
  const grad = Buffer.alloc(100 * 60 * 3);
  for (let y = 0; y < 60; y++) for (let x = 0; x < 100; x++) { const o = (y * 100 + x) * 3; grad[o] = x * 2.5; grad[o + 1] = 40; grad[o + 2] = 255 - y * 4; }
  out.push(await sharp(grad, { raw: { width: 100, height: 60, channels: 3 } }).jpeg().toBuffer());
  const text = `<svg xmlns="http://www.w3.org/2000/svg" width="180" height="120"><rect width="100%" height="100%" fill="#fff"/>${
    Array.from({ length: 8 }, (_, i) => `<text x="6" y="${14 + i * 14}" font-family="monospace" font-size="11">Invoice 2026-11 total ${i * 17}.00 EUR</text>`).join('')}</svg>`;
  out.push(await sharp(Buffer.from(text)).png().toBuffer());
  return out;
}

function asFormat1(bundle: Uint8Array): Uint8Array {
  const { header, payload } = decodeContainer(bundle, 'eyecase-model-bundle');
  const { guard: _g, payloadBytes: _b, payloadSha256: _s, ...rest } = header;
  void _g; void _b; void _s;
  const { guard: _mg, testTimeAugmentation: _t, ...meta } = rest.meta as Record<string, unknown>;
  void _mg; void _t;
  return encodeContainer({ ...rest, kind: 'eyecase-model-bundle', formatVersion: 1, meta: { ...meta, formatVersion: 1 } }, payload);
}

describe('out-of-distribution guard', () => {
  let result: TrainResult;
  let classifier: Classifier;

  beforeAll(async () => {
    await initBackend();
    const items = await readLabelledFolder(EYE_FIXTURES_DIR);
    result = await trainClassifier({ items, hyperparameters: { inputSize: 32, epochs: 3, batchSize: 16, seed: 5, earlyStoppingPatience: 0, decisionAccuracy: 0.9 }, workers: 0 });
    classifier = await loadClassifier(result.bundle);
  }, 300_000);
  afterAll(() => classifier?.dispose());

  test('the bundle (format 2) carries the fitted guard and its measured rates', () => {
    const meta = readBundleMeta(result.bundle);
    expect(meta.formatVersion).toBe(2);
    expect(meta.testTimeAugmentation).toBe('flip');
    expect(meta.guard).toMatchObject({ threshold: expect.any(Number), eyeRefusalTarget: 0.005, negativesUsed: expect.any(Number) });
    expect(meta.guard!.validationEyesRefused).toBeGreaterThanOrEqual(0);
    // A few epochs on 78 images fit a rough guard (training draws its initial weights and dropout
    // unseeded); the committed baseline's guard is held to the real targets below.
    expect(meta.guard!.syntheticNonEyesRefused).toBeGreaterThan(0.5);
    const { guard } = decodeBundle(result.bundle);
    expect(guard!.threshold).toBe(meta.guard!.threshold);
    expect(guard!.weights.length).toBe(guard!.dim + 1);
    expect(classifier.guard).toEqual({ method: guard!.method, threshold: guard!.threshold });
    expect(meta.metricIntervals).toMatchObject({ accuracy: [expect.any(Number), expect.any(Number)], ece: [expect.any(Number), expect.any(Number)] });
    expect(meta.metricsSplit).toMatch(/person-aware/);
  });

  test('refuses synthetic non-eyes (made here, and the committed set) and keeps real eye crops', async () => {
    // The freshly trained guard decides by its score and threshold...
    for (const r of await classifier.predictBatch(await freshNonEyes())) expect(r.decision === 'NOT_AN_EYE').toBe(r.guard!.score < r.guard!.threshold);
    // ...and the committed baseline (fixed weights, so the same answer every run) meets the bar.
    const baseline = await loadClassifier(new Uint8Array(readFileSync(loadConfig({}).baselineModelPath)));
    try {
      await expectRefusesNonEyesKeepsEyes(baseline);
    } finally {
      baseline.dispose();
    }
  });

  async function expectRefusesNonEyesKeepsEyes(classifier: Classifier): Promise<void> {
    const fresh = await classifier.predictBatch(await freshNonEyes());
    for (const r of fresh) {
      expect(r.guard).not.toBeNull();
      expect(r.decision === 'NOT_AN_EYE').toBe(r.guard!.score < r.guard!.threshold);
    }
    expect(fresh.filter((r) => r.decision === 'NOT_AN_EYE').length).toBeGreaterThanOrEqual(fresh.length - 1);

    const notEyes = notEyeReport((await scoreEntries(classifier, await listImageFiles(NOT_EYES_DIR))).scored);
    expect(notEyes.refused.n).toBeGreaterThanOrEqual(70);
    expect(notEyes.refused.rate).toBeGreaterThanOrEqual(0.9);

    const eyes = await scoreEntries(classifier, await listLabelledFolder(EYE_FIXTURES_DIR));
    const report = eyeReport(eyes.scored, classifier);
    expect(report.metrics.n).toBe(78);
    expect(report.metrics.notAnEyeRate).toBeLessThanOrEqual(0.1);
    // Refused eyes are never given a sex; the rates add up per class.
    for (const s of eyes.scored) if (s.guard! < classifier.guard!.threshold) expect(s.decision).toBe('NOT_AN_EYE');
    for (const c of ['female', 'male'] as const) expect(report.perClass[c].not_an_eye.count + report.perClass[c].inconclusive.count).toBeLessThanOrEqual(report.perClass[c].n);
    expect(eyes.seconds).toBeGreaterThan(0);
  }

  test("generated negatives are deterministic for a seed and differ between seeds", async () => {
    const a = await generateNegatives(13, 24, 7), b = await generateNegatives(13, 24, 7), c = await generateNegatives(13, 24, 8);
    expect(Buffer.from(a.pixels).equals(Buffer.from(b.pixels))).toBe(true);
    expect(Buffer.from(a.pixels).equals(Buffer.from(c.pixels))).toBe(false);
    expect(new Set(a.kinds).size).toBe(13);
  });

  test('refit keeps the weights and reproduces the fit; another decision target moves only the band; other data is refused', async () => {
    const items = await readLabelledFolder(EYE_FIXTURES_DIR);
    const same = await refitServing(result.bundle, items);
    const before = decodeBundle(result.bundle), after = decodeBundle(same.bundle);
    expect(Buffer.from(after.artifacts.weightData as ArrayBuffer).equals(Buffer.from(before.artifacts.weightData as ArrayBuffer))).toBe(true);
    expect(same.meta.calibration.temperature).toBeCloseTo(result.meta.calibration.temperature, 10);
    expect(same.meta.thresholds).toEqual(result.meta.thresholds);
    const looser = await refitServing(result.bundle, items, { decisionAccuracy: 0.6 });
    expect(looser.meta.hyperparameters.decisionAccuracy).toBe(0.6);
    expect(looser.meta.thresholds.male - looser.meta.thresholds.female).toBeLessThanOrEqual(result.meta.thresholds.male - result.meta.thresholds.female);
    await expect(refitServing(result.bundle, items.slice(1))).rejects.toBeInstanceOf(TrainingInputError);
  }, 300_000);

  test('a format-1 bundle (no guard) still loads, says it has none and never answers NOT_AN_EYE', async () => {
    const old = asFormat1(result.bundle);
    expect(readBundleMeta(old).formatVersion).toBe(1);
    expect(decodeBundle(old).guard).toBeNull();
    const legacy = await loadClassifier(old);
    try {
      expect(legacy.guard).toBeNull();
      const rs = await legacy.predictBatch(await freshNonEyes());
      for (const r of rs) {
        expect(r.guard).toBeNull();
        expect(['FEMALE', 'MALE', 'INCONCLUSIVE']).toContain(r.decision);
      }
      const eye = await legacy.predict(readFileSync(path.join(EYE_FIXTURES_DIR, 'female', '1.jpg')));
      expect(eye.guard).toBeNull();
    } finally {
      legacy.dispose();
    }
  });
});
