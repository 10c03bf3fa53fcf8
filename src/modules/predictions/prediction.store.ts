// Database access of the predictions module. Recording a prediction is part of the classification
// hot path (plain SQL, in the caller's transaction); reviews, explanations, listings and reports
// use Prisma.
import type { Db, Prisma, Tx } from '../../db/prisma.js';
import * as col from '../../db/rows.js';
import type { Row } from '../../db/rows.js';
import { advisoryXactLock, newId, type Sql } from '../../db/sql.js';
import type { Explanation, ModelStage, Prediction, PredictionReview } from '../../generated/prisma/client.js';
import { afterCursorWhere, NEWEST_FIRST } from '../../shared/pagination.js';
import { type EvidenceWithImage, evidenceFromRow } from '../evidence/evidence.store.js';
import { imageFromRow, prefixedImageColumns } from '../images/image.store.js';

const DECISIONS = ['FEMALE', 'MALE', 'INCONCLUSIVE', 'NOT_AN_EYE'] as const;
const MODEL_STAGES = ['CANDIDATE', 'PRODUCTION', 'ARCHIVED'] as const satisfies readonly ModelStage[];

const PREDICTION_COLUMNS = [
  'id', 'caseId', 'evidenceId', 'imageSha256', 'modelVersionId', 'artifactSha256', 'backend', 'preprocessingVersion', 'thresholdFemale', 'thresholdMale',
  'probFemale', 'probMale', 'decision', 'guardScore', 'guardThreshold', 'latencyMs', 'requestedById', 'createdAt',
].map((c) => `"${c}"`).join(', ');

export function predictionFromRow(row: Row): Prediction {
  return {
    id: col.text(row, 'id'),
    caseId: col.text(row, 'caseId'),
    evidenceId: col.text(row, 'evidenceId'),
    imageSha256: col.text(row, 'imageSha256'),
    modelVersionId: col.text(row, 'modelVersionId'),
    artifactSha256: col.text(row, 'artifactSha256'),
    backend: col.text(row, 'backend'),
    preprocessingVersion: col.text(row, 'preprocessingVersion'),
    thresholdFemale: col.float(row, 'thresholdFemale'),
    thresholdMale: col.float(row, 'thresholdMale'),
    probFemale: col.float(row, 'probFemale'),
    probMale: col.float(row, 'probMale'),
    decision: col.oneOf(row, 'decision', DECISIONS),
    guardScore: col.floatOrNull(row, 'guardScore'),
    guardThreshold: col.floatOrNull(row, 'guardThreshold'),
    latencyMs: col.float(row, 'latencyMs'),
    requestedById: col.text(row, 'requestedById'),
    createdAt: col.date(row, 'createdAt'),
  };
}

export type NewPrediction = Omit<Prediction, 'id' | 'createdAt'>;

/**
 * Inserts the prediction and reads its model version's stage now, in one statement (the loaded
 * model's row may be stale; null if the version is gone).
 */
export async function insertPrediction(sql: Sql, p: NewPrediction): Promise<{ prediction: Prediction; modelStage: ModelStage | null }> {
  const [row] = await sql.query(
    `WITH p AS (
       INSERT INTO "Prediction" (id, "caseId", "evidenceId", "imageSha256", "modelVersionId", "artifactSha256", backend, "preprocessingVersion",
         "thresholdFemale", "thresholdMale", "probFemale", "probMale", decision, "guardScore", "guardThreshold", "latencyMs", "requestedById")
       VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid, $6, $7, $8, $9, $10, $11, $12, $13::"Decision", $14, $15, $16, $17::uuid)
       RETURNING ${PREDICTION_COLUMNS})
     SELECT p.*, (SELECT stage::text FROM "ModelVersion" WHERE id = $5::uuid) AS "modelStage" FROM p`,
    [
      newId(), p.caseId, p.evidenceId, p.imageSha256, p.modelVersionId, p.artifactSha256, p.backend, p.preprocessingVersion, p.thresholdFemale, p.thresholdMale,
      p.probFemale, p.probMale, p.decision, p.guardScore, p.guardThreshold, p.latencyMs, p.requestedById,
    ],
  );
  return { prediction: predictionFromRow(row), modelStage: row.modelStage === null ? null : col.oneOf(row, 'modelStage', MODEL_STAGES) };
}

/** The stage and number of a model version (fresh: a loaded model may have been archived since). */
export async function modelVersionState(sql: Sql, id: string): Promise<{ stage: ModelStage; version: number } | undefined> {
  const [row] = await sql.query('SELECT stage::text AS stage, version FROM "ModelVersion" WHERE id = $1::uuid', [id]);
  return row && { stage: col.oneOf(row, 'stage', MODEL_STAGES), version: col.int(row, 'version') };
}

/** Serialises classifications of a whole case (a double click must not record twice). */
export const lockCaseClassification = (sql: Sql, caseId: string): Promise<void> => advisoryXactLock(sql, `classify-case:${caseId}`);

/** The case's evidence that the model version has not classified, oldest first, with images. */
export async function unclassifiedEvidence(sql: Sql, caseId: string, modelVersionId: string): Promise<EvidenceWithImage[]> {
  const rows = await sql.query(
    `SELECT e.id, e."caseId", e."imageId", e.note, e."addedById", e."createdAt", ${prefixedImageColumns('image_')}
       FROM "Evidence" e JOIN "Image" i ON i.id = e."imageId"
      WHERE e."caseId" = $1::uuid AND NOT EXISTS (SELECT 1 FROM "Prediction" p WHERE p."evidenceId" = e.id AND p."modelVersionId" = $2::uuid)
      ORDER BY e."createdAt", e.id`,
    [caseId, modelVersionId],
  );
  return rows.map((row) => ({ ...evidenceFromRow(row), image: imageFromRow(row, 'image_') }));
}

/** The prediction (a replayed classification reads it: plain SQL like the write). */
export async function predictionById(sql: Sql, id: string): Promise<Prediction | undefined> {
  const [row] = await sql.query(`SELECT ${PREDICTION_COLUMNS} FROM "Prediction" WHERE id = $1::uuid`, [id]);
  return row && predictionFromRow(row);
}

/** Ids of the case's evidence that the model version has classified. */
export async function classifiedEvidenceIds(sql: Sql, caseId: string, modelVersionId: string): Promise<Set<string>> {
  const rows = await sql.query('SELECT "evidenceId" FROM "Prediction" WHERE "caseId" = $1::uuid AND "modelVersionId" = $2::uuid', [caseId, modelVersionId]);
  return new Set(rows.map((r) => col.text(r, 'evidenceId')));
}

// --- Prisma: the cold paths ---

/** A page of the version's predictions, newest first, within `visible`. */
export const predictionsOfVersion = (db: Db, modelVersionId: string, visible: Prisma.PredictionWhereInput, after: string | null | undefined, take: number): Promise<Prediction[]> =>
  db.prediction.findMany({ where: { AND: [{ modelVersionId }, visible, afterCursorWhere(after)] }, orderBy: NEWEST_FIRST, take });

export const explanationOf = (db: Db, predictionId: string): Promise<Explanation | null> => db.explanation.findUnique({ where: { predictionId } });

export const createExplanation = (tx: Tx, data: { predictionId: string; method: string; objectKey: string; sha256: string }): Promise<Explanation> => tx.explanation.create({ data });

const OLDEST_FIRST = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

export const latestReview = (tx: Tx, predictionId: string): Promise<PredictionReview | null> =>
  tx.predictionReview.findFirst({ where: { predictionId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });

export const createReview = (tx: Tx, data: { predictionId: string; verdict: PredictionReview['verdict']; reason: string; reviewerId: string }): Promise<PredictionReview> =>
  tx.predictionReview.create({ data });

/** What a case report lists: evidence, predictions and reviews, oldest first, and the model versions used. */
export async function caseReportRows(db: Db, caseId: string) {
  const [evidence, predictions, reviews] = await Promise.all([
    db.evidence.findMany({ where: { caseId }, include: { image: true }, orderBy: OLDEST_FIRST }),
    db.prediction.findMany({ where: { caseId }, orderBy: OLDEST_FIRST }),
    db.predictionReview.findMany({ where: { prediction: { caseId } }, orderBy: OLDEST_FIRST }),
  ]);
  const versions = await db.modelVersion.findMany({ where: { id: { in: [...new Set(predictions.map((p) => p.modelVersionId))] } }, orderBy: { version: 'asc' } });
  return { evidence, predictions, reviews, versions };
}

/** The audit events of the case, its evidence and its predictions, in chain order. */
export const reportAuditEvents = (db: Db, caseId: string, evidenceIds: string[], predictionIds: string[]) =>
  db.auditEvent.findMany({
    where: {
      OR: [
        { entityType: 'Case', entityId: caseId },
        { entityType: 'Evidence', entityId: { in: evidenceIds } },
        { entityType: 'Prediction', entityId: { in: predictionIds } },
      ],
    },
    orderBy: { seq: 'asc' },
  });

/** The predictions of several evidence items, oldest first. */
export function predictionsOfEvidence(db: Db, evidenceIds: string[]): Promise<Prediction[]> {
  return db.prediction.findMany({ where: { evidenceId: { in: evidenceIds } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
}

/** The reviews of several predictions, oldest first. */
export function reviewsOfPredictions(db: Db, predictionIds: string[]): Promise<PredictionReview[]> {
  return db.predictionReview.findMany({ where: { predictionId: { in: predictionIds } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
}

/** The explanations (at most one each) of several predictions. */
export function explanationsOfPredictions(db: Db, predictionIds: string[]): Promise<Explanation[]> {
  return db.explanation.findMany({ where: { predictionId: { in: predictionIds } } });
}
