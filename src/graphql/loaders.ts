// Per-request DataLoaders, so nested queries (case -> evidence -> predictions -> model version)
// cost one SQL query per level instead of one per item. The queries belong to the modules' stores.
import DataLoader from 'dataloader';
import type { Db } from '../db/prisma.js';
import { notFound } from '../errors.js';
import { keysByIds } from '../modules/auth/api-key.store.js';
import { casesByIds } from '../modules/cases/case.store.js';
import { versionsByIds } from '../modules/datasets/dataset.store.js';
import { evidenceByIds } from '../modules/evidence/evidence.store.js';
import { imagesByIds } from '../modules/images/image.store.js';
import { explanationsOfPredictions, predictionsOfEvidence, reviewsOfPredictions } from '../modules/predictions/prediction.store.js';
import { modelVersionsByIds, stageChangesOf } from '../modules/registry/registry.store.js';
import { epochsOfRuns, runsByIds } from '../modules/training/training.store.js';

function byId<T extends { id: string }>(what: string, fetch: (ids: string[]) => Promise<T[]>) {
  return new DataLoader<string, T>(async (ids) => {
    const rows = await fetch([...ids]);
    const map = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => map.get(id) ?? notFound(what, id));
  });
}

function groupedBy<T>(fetch: (keys: string[]) => Promise<T[]>, keyOf: (row: T) => string) {
  return new DataLoader<string, T[]>(async (keys) => {
    const rows = await fetch([...keys]);
    const groups = new Map<string, T[]>(keys.map((k) => [k, []]));
    for (const row of rows) groups.get(keyOf(row))?.push(row);
    return keys.map((k) => groups.get(k) ?? []);
  });
}

export function createLoaders(db: Db) {
  return {
    apiKey: byId('ApiKey', (ids) => keysByIds(db, ids)),
    case: byId('Case', (ids) => casesByIds(db, ids)),
    image: byId('Image', (ids) => imagesByIds(db, ids)),
    evidence: byId('Evidence', (ids) => evidenceByIds(db, ids)),
    modelVersion: byId('ModelVersion', (ids) => modelVersionsByIds(db, ids)),
    trainingRun: byId('TrainingRun', (ids) => runsByIds(db, ids)),
    datasetVersion: byId('DatasetVersion', (ids) => versionsByIds(db, ids)),
    predictionsByEvidence: groupedBy((ids) => predictionsOfEvidence(db, ids), (p) => p.evidenceId),
    reviewsByPrediction: groupedBy((ids) => reviewsOfPredictions(db, ids), (r) => r.predictionId),
    stageChangesByModelVersion: groupedBy((ids) => stageChangesOf(db, ids), (c) => c.modelVersionId),
    explanationByPrediction: new DataLoader<string, Awaited<ReturnType<typeof explanationsOfPredictions>>[number] | null>(async (ids) => {
      const rows = await explanationsOfPredictions(db, [...ids]);
      const map = new Map(rows.map((r) => [r.predictionId, r]));
      return ids.map((id) => map.get(id) ?? null);
    }),
    epochsByTrainingRun: groupedBy((ids) => epochsOfRuns(db, ids), (e) => e.trainingRunId),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
