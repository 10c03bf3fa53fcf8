/**
 * Robustness check of a bundle on its own validation split: npm run bench:ml-robustness [-- <bundle>]
 * Accuracy, per-class recall and INCONCLUSIVE rate under changes the model card warns about:
 * darker / brighter / low-contrast images, low source resolution, grey-scale, horizontal flip.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { datasetDir, dataFingerprint, decodeItems, evaluate, loadClassifier, readLabelledFolder, groupSplit } from '../src/ml/index.js';
import { projectRoot } from '../src/ml/paths.js';

const bundlePath = process.argv[2] ?? path.join(projectRoot(), 'models', 'eyes-compact-v1', 'model.eyemodel');
const classifier = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)));
const meta = classifier.meta;
const S = meta.inputSize, per = S * S * 3;
const items = await readLabelledFolder(datasetDir());
const { set } = await decodeItems(items, S);
if (dataFingerprint(set) !== meta.dataFingerprint) console.log('warning: data differs from the training data; the split is not the model\'s validation split');
const { val } = groupSplit(set.labels, set.groups, meta.hyperparameters.validationSplit, meta.hyperparameters.seed);
const labels = Uint8Array.from(val.map((i) => set.labels[i]));
const base = new Uint8Array(val.length * per);
val.forEach((idx, i) => base.set(set.pixels.subarray(idx * per, (idx + 1) * per), i * per));

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));
const pixelwise = (f: (v: number, k: number, img: Uint8Array) => number) => (img: Uint8Array) => img.map((v, k) => clamp(f(v, k, img)));
const conditions: Array<[string, (img: Uint8Array) => Uint8Array | Promise<Uint8Array>]> = [
  ['as validated', (img) => img],
  ['darker (x0.6)', pixelwise((v) => v * 0.6)],
  ['brighter (x1.4)', pixelwise((v) => v * 1.4)],
  ['low contrast (x0.5 around mean)', (img) => { const m = img.reduce((a, b) => a + b, 0) / img.length; return img.map((v) => clamp(m + (v - m) * 0.5)); }],
  ['grey-scale', (img) => { const o = new Uint8Array(img.length); for (let p = 0; p < img.length; p += 3) { const g = clamp(0.299 * img[p] + 0.587 * img[p + 1] + 0.114 * img[p + 2]); o[p] = o[p + 1] = o[p + 2] = g; } return o; }],
  ['low resolution (16 px source)', async (img) => { const small = await sharp(img, { raw: { width: S, height: S, channels: 3 } }).resize(16, 16).raw().toBuffer(); return new Uint8Array(await sharp(small, { raw: { width: 16, height: 16, channels: 3 } }).resize(S, S).raw().toBuffer()); }],
  ['horizontally flipped', (img) => { const o = new Uint8Array(img.length); for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let k = 0; k < 3; k++) o[(y * S + x) * 3 + k] = img[(y * S + (S - 1 - x)) * 3 + k]; return o; }],
];
const rows: Array<Record<string, string | number>> = [];
for (const [name, f] of conditions) {
  const px = new Uint8Array(base.length);
  for (let i = 0; i < val.length; i++) px.set(await f(base.subarray(i * per, (i + 1) * per)), i * per);
  const m = evaluate(classifier.predictPixels(px, val.length), labels, meta.thresholds);
  const row = { condition: name, accuracy: +m.accuracy.toFixed(4), recallFemale: +m.recallFemale.toFixed(4), recallMale: +m.recallMale.toFixed(4), inconclusiveRate: +m.inconclusiveRate.toFixed(4), decidedAccuracy: +m.decidedAccuracy.toFixed(4) };
  rows.push(row);
  console.log(`${name.padEnd(32)} accuracy ${(m.accuracy * 100).toFixed(1)}%  recall F ${(m.recallFemale * 100).toFixed(1)}% M ${(m.recallMale * 100).toFixed(1)}%  inconclusive ${(m.inconclusiveRate * 100).toFixed(1)}%  decided accuracy ${(m.decidedAccuracy * 100).toFixed(1)}%`);
}
classifier.dispose();
console.log(JSON.stringify({ model: bundlePath, n: val.length, rows }));
