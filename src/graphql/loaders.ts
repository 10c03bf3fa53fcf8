// Per-request DataLoaders, so nested queries (case -> evidence -> predictions -> model version)
// cost one SQL query per level instead of one per item.
import DataLoader from 'dataloader';
import type { Db } from '../db/prisma.js';
import { notFound } from '../errors.js';

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
    apiKey: byId('ApiKey', (ids) => db.apiKey.findMany({ where: { id: { in: ids } } })),
    case: byId('Case', (ids) => db.case.findMany({ where: { id: { in: ids } } })),
    image: byId('Image', (ids) => db.image.findMany({ where: { id: { in: ids } } })),
    evidence: byId('Evidence', (ids) => db.evidence.findMany({ where: { id: { in: ids } }, include: { image: true } })),
    modelVersion: byId('ModelVersion', (ids) => db.modelVersion.findMany({ where: { id: { in: ids } } })),
    trainingRun: byId('TrainingRun', (ids) => db.trainingRun.findMany({ where: { id: { in: ids } } })),
    datasetVersion: byId('DatasetVersion', (ids) => db.datasetVersion.findMany({ where: { id: { in: ids } } })),
    predictionsByEvidence: groupedBy(
      (ids) => db.prediction.findMany({ where: { evidenceId: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
      (p) => p.evidenceId,
    ),
    reviewsByPrediction: groupedBy(
      (ids) => db.predictionReview.findMany({ where: { predictionId: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
      (r) => r.predictionId,
    ),
    stageChangesByModelVersion: groupedBy(
      (ids) => db.modelStageChange.findMany({ where: { modelVersionId: { in: ids } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
      (c) => c.modelVersionId,
    ),
    explanationByPrediction: new DataLoader<string, Awaited<ReturnType<Db['explanation']['findFirst']>>>(async (ids) => {
      const rows = await db.explanation.findMany({ where: { predictionId: { in: [...ids] } } });
      const map = new Map(rows.map((r) => [r.predictionId, r]));
      return ids.map((id) => map.get(id) ?? null);
    }),
    epochsByTrainingRun: groupedBy(
      (ids) => db.trainingEpoch.findMany({ where: { trainingRunId: { in: ids } }, orderBy: { epoch: 'asc' } }),
      (e) => e.trainingRunId,
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
