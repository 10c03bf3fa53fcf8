// Database access of the registry module: model versions, their stage changes, promotion requests,
// and what the model comparison reads of a training run. An admin path, so Prisma throughout; `db`
// is the client or an interactive transaction (`Tx`). Transactions are begun by the services.
import type { Db, Prisma, Tx } from '../../db/prisma.js';
import type {
  Dataset, DatasetVersion, ModelStage, ModelStageChange, ModelVersion, PromotionRequest, PromotionStatus, StageChangeKind,
} from '../../generated/prisma/client.js';
import { afterCursorWhere, NEWEST_FIRST } from '../../shared/pagination.js';

// ---- model versions ----------------------------------------------------------------------------

export function modelVersionById(db: Db | Tx, id: string): Promise<ModelVersion | null> {
  return db.modelVersion.findUnique({ where: { id } });
}

export function productionVersion(db: Db | Tx): Promise<ModelVersion | null> {
  return db.modelVersion.findFirst({ where: { stage: 'PRODUCTION' } });
}

/** The version a training run registered, if any. */
export function versionOfTrainingRun(db: Db | Tx, trainingRunId: string): Promise<ModelVersion | null> {
  return db.modelVersion.findUnique({ where: { trainingRunId } });
}

export function countModelVersions(db: Db | Tx): Promise<number> {
  return db.modelVersion.count();
}

/** One page of versions, newest first, optionally of one stage. */
export function listModelVersions(db: Db | Tx, stage: ModelStage | undefined, after: string | null | undefined, take: number): Promise<ModelVersion[]> {
  return db.modelVersion.findMany({ where: { AND: [{ stage }, afterCursorWhere(after)] }, orderBy: NEWEST_FIRST, take });
}

/** The highest version number registered under the name, 0 if none. */
export async function lastModelVersionNumber(tx: Tx, name: string): Promise<number> {
  const last = await tx.modelVersion.findFirst({ where: { name }, orderBy: { version: 'desc' }, select: { version: true } });
  return last?.version ?? 0;
}

export function insertModelVersion(tx: Tx, data: Prisma.ModelVersionUncheckedCreateInput): Promise<ModelVersion> {
  return tx.modelVersion.create({ data });
}

export function setModelStage(tx: Tx, id: string, stage: ModelStage): Promise<ModelVersion> {
  return tx.modelVersion.update({ where: { id }, data: { stage } });
}

// ---- stage changes -----------------------------------------------------------------------------

export function insertStageChange(
  tx: Tx,
  data: { modelVersionId: string; fromStage: ModelStage | null; toStage: ModelStage; kind: StageChangeKind; reason: string; changedById: string | null },
): Promise<ModelStageChange> {
  return tx.modelStageChange.create({ data });
}

/** Every stage change of every version, oldest first. */
export function stageHistory(tx: Tx): Promise<ModelStageChange[]> {
  return tx.modelStageChange.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
}

// ---- promotion requests ------------------------------------------------------------------------

export function promotionRequestById(db: Db | Tx, id: string): Promise<PromotionRequest | null> {
  return db.promotionRequest.findUnique({ where: { id } });
}

/** One page of requests, newest first, optionally of one status. */
export function listPromotionRequests(db: Db | Tx, status: PromotionStatus | undefined, after: string | null | undefined, take: number): Promise<PromotionRequest[]> {
  return db.promotionRequest.findMany({ where: { AND: [{ status }, afterCursorWhere(after)] }, orderBy: NEWEST_FIRST, take });
}

export function insertPromotionRequest(tx: Tx, data: { modelVersionId: string; reason: string; requestedById: string }): Promise<PromotionRequest> {
  return tx.promotionRequest.create({ data });
}

/** Records the decision on a request that is still PENDING; false if it was decided meanwhile. */
export async function decidePromotionRequest(
  tx: Tx,
  id: string,
  decision: { status: 'APPROVED' | 'REJECTED'; decidedById: string; decisionReason: string; overrideReason?: string | null; comparison?: Prisma.InputJsonValue },
): Promise<boolean> {
  const { count } = await tx.promotionRequest.updateMany({ where: { id, status: 'PENDING' }, data: { ...decision, decidedAt: new Date() } });
  return count === 1;
}

// ---- training runs (read by the comparison) ----------------------------------------------------

/** A training run's hyper-parameters and the dataset version (with its dataset's name) it trained on. */
export function runWithDatasetVersion(
  db: Db | Tx,
  trainingRunId: string,
): Promise<{ hyperparameters: Prisma.JsonValue; datasetVersion: DatasetVersion & { dataset: Pick<Dataset, 'name'> } } | null> {
  return db.trainingRun.findUnique({
    where: { id: trainingRunId },
    select: { hyperparameters: true, datasetVersion: { include: { dataset: { select: { name: true } } } } },
  });
}

/** Model versions by id, oldest version first (loaders, case exports). */
export function modelVersionsByIds(db: Db | Tx, ids: string[]): Promise<ModelVersion[]> {
  return db.modelVersion.findMany({ where: { id: { in: ids } }, orderBy: { version: 'asc' } });
}

/** The stage changes of several versions, oldest first. */
export function stageChangesOf(db: Db | Tx, modelVersionIds: string[]): Promise<ModelStageChange[]> {
  return db.modelStageChange.findMany({ where: { modelVersionId: { in: modelVersionIds } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
}
