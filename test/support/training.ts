// Shared steps for training and registry tests: a snapshotted dataset version of real eye images,
// small hyper-parameters that train in seconds, and an in-process training runner.
import { trainClassifier } from '../../src/ml/index.js';
import { startTrainingWorker } from '../../src/modules/training/start-worker.js';
import type { TrainingRunner } from '../../src/modules/training/training-runner.js';
import { ok, type TestApp } from './harness.js';
import { datasetFiles } from './images.js';
import fs from 'node:fs';
import path from 'node:path';

/** Trains in a few seconds on one core: not a good model, a real one. */
export const TINY_HYPERPARAMETERS = { inputSize: 24, epochs: 2, batchSize: 16, learningRate: 0.01, earlyStoppingPatience: 0, decisionAccuracy: 0.9 };

const ADD = `mutation($id: ID!, $label: Sex!, $files: [Upload!]!) { addDatasetImages(datasetId: $id, label: $label, files: $files) { imported } }`;

export async function seedDatasetVersion(t: TestApp, options: { female: number; male: number; offset?: number; name?: string }): Promise<{ datasetId: string; versionId: string }> {
  const name = options.name ?? `ds-${Math.random().toString(36).slice(2, 10)}`;
  const dataset = ok(await t.gql(`mutation($name: String!) { createDataset(input: { name: $name }) { id } }`, { name }, t.keys.ADMIN)).createDataset;
  for (const [label, count] of [['FEMALE', options.female], ['MALE', options.male]] as const) {
    if (count === 0) continue;
    const files = datasetFiles(label === 'FEMALE' ? 'female' : 'male', count, options.offset ?? 0);
    const uploads = Object.fromEntries(files.map((f, i) => [`files.${i}`, { name: path.basename(f), bytes: fs.readFileSync(f), type: 'image/jpeg' }]));
    ok(await t.upload(ADD, { id: dataset.id, label, files: files.map(() => null) }, uploads, t.keys.ADMIN));
  }
  const version = ok(await t.gql(`mutation($id: ID!) { snapshotDataset(datasetId: $id) { id } }`, { id: dataset.id }, t.keys.ADMIN)).snapshotDataset;
  return { datasetId: dataset.id, versionId: version.id };
}

/** A runner in this process that trains in the calling thread (ts-jest has no compiled worker entry). */
export function startInProcessRunner(t: TestApp, options: { staleAfterMs?: number; heartbeatMs?: number } = {}): Promise<TrainingRunner> {
  return startTrainingWorker(t.services, { train: trainClassifier, trainWorkers: 0, heartbeatMs: options.heartbeatMs ?? 500, staleAfterMs: options.staleAfterMs ?? 60_000 });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
