// Small real model bundles for registry and classification tests, trained once per test file.
import { trainClassifier } from '../../src/ml/index.js';
import { datasetFiles } from './images.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let cached: Promise<Uint8Array> | undefined;

/** A compact model at 24 px trained for 2 epochs on 60 real images (the repository's fixtures): fast, real, not accurate. */
export function tinyBundle(): Promise<Uint8Array> {
  cached ??= (async () => {
    const items = [
      ...datasetFiles('female', 30, 0).map((f) => ({ bytes: fs.readFileSync(f), label: 'FEMALE' as const })),
      ...datasetFiles('male', 30, 0).map((f) => ({ bytes: fs.readFileSync(f), label: 'MALE' as const })),
    ];
    const result = await trainClassifier({ items, hyperparameters: { inputSize: 24, epochs: 2, batchSize: 16, earlyStoppingPatience: 0, decisionAccuracy: 0.9 }, workers: 0 });
    return result.bundle;
  })();
  return cached;
}

let invertedCached: Promise<Uint8Array> | undefined;

/** The same recipe as tinyBundle with every label swapped: a model that is reliably worse. */
export function invertedBundle(): Promise<Uint8Array> {
  invertedCached ??= (async () => {
    const items = [
      ...datasetFiles('female', 30, 0).map((f) => ({ bytes: fs.readFileSync(f), label: 'MALE' as const })),
      ...datasetFiles('male', 30, 0).map((f) => ({ bytes: fs.readFileSync(f), label: 'FEMALE' as const })),
    ];
    const result = await trainClassifier({ items, hyperparameters: { inputSize: 24, epochs: 2, batchSize: 16, earlyStoppingPatience: 0, decisionAccuracy: 0.9 }, workers: 0 });
    return result.bundle;
  })();
  return invertedCached;
}

let cachedFile: Promise<string> | undefined;

/** tinyBundle() written to a file once per test file, for registry.ensureBaseline(path). */
export function tinyBundleFile(): Promise<string> {
  cachedFile ??= (async () => {
    const file = path.join(await fs.promises.mkdtemp(path.join(os.tmpdir(), 'bundle-')), 'model.eyemodel');
    await fs.promises.writeFile(file, await tinyBundle());
    return file;
  })();
  return cachedFile;
}
