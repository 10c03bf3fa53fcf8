// Database access of the training module (service, worker runner, resolver). Training is a cold
// admin path: Prisma throughout; the row locks and the lease statements Prisma's model API cannot
// say are raw statements on the same Prisma transaction, their rows parsed with src/db/rows.ts.
import { type Db, Prisma, type Tx } from '../../db/prisma.js';
import * as col from '../../db/rows.js';
import type { Row } from '../../db/rows.js';
import type { TrainingEpoch, TrainingRun, TrainingStatus } from '../../generated/prisma/client.js';
import { afterCursorWhere, NEWEST_FIRST } from '../../shared/pagination.js';

/** What requeueing needs to know about a run it takes back. */
export interface LeasedRun {
  id: string;
  leaseOwner: string | null;
  status: TrainingStatus;
  jobId: string | null;
  attempts: number;
}

const TRAINING_STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const satisfies readonly TrainingStatus[];

export function leasedRunFromRow(row: Row): LeasedRun {
  return { id: col.text(row, 'id'), leaseOwner: col.textOrNull(row, 'leaseOwner'), status: col.oneOf(row, 'status', TRAINING_STATUSES), jobId: col.textOrNull(row, 'jobId'), attempts: col.int(row, 'attempts') };
}

// --- the API side (training.service.ts) ---

/** The class counts of a dataset version, which decide whether it can be trained on. */
export function datasetVersionCounts(db: Db, id: string) {
  return db.datasetVersion.findUnique({ where: { id }, select: { version: true, femaleCount: true, maleCount: true } });
}

export function insertRun(tx: Tx, data: { datasetVersionId: string; hyperparameters: Prisma.InputJsonValue; createdById: string }): Promise<TrainingRun> {
  return tx.trainingRun.create({ data });
}

export function setRunJob(tx: Tx, id: string, jobId: string): Promise<TrainingRun> {
  return tx.trainingRun.update({ where: { id }, data: { jobId } });
}

/** The run, its row locked for the rest of the transaction; null if there is none. */
export async function lockRun(tx: Tx, id: string): Promise<TrainingRun | null> {
  const [locked] = await tx.$queryRaw<Row[]>`SELECT id FROM "TrainingRun" WHERE id = ${id}::uuid FOR UPDATE`;
  if (!locked) return null;
  return tx.trainingRun.findUniqueOrThrow({ where: { id } });
}

/** A QUEUED run is cancelled there and then; a RUNNING one is flagged for its worker to stop. */
export function cancelRun(tx: Tx, id: string, atOnce: boolean): Promise<TrainingRun> {
  const data: Prisma.TrainingRunUpdateInput = atOnce ? { status: 'CANCELLED', cancelRequested: true, finishedAt: new Date(), leaseOwner: null } : { cancelRequested: true };
  return tx.trainingRun.update({ where: { id }, data });
}

export function findRun(db: Db, id: string): Promise<TrainingRun | null> {
  return db.trainingRun.findUnique({ where: { id } });
}

/** One page of runs, newest first, after the cursor (see shared/pagination.ts). */
export function runsPage(db: Db, filter: { status?: TrainingStatus | null }, after: string | null | undefined, take: number): Promise<TrainingRun[]> {
  return db.trainingRun.findMany({ where: { AND: [{ status: filter.status ?? undefined }, afterCursorWhere(after)] }, orderBy: NEWEST_FIRST, take });
}

// --- the worker side (training-runner.ts) ---

/** RUNNING runs leased to `workerId`, locked. */
export async function runsLeasedTo(tx: Tx, workerId: string): Promise<LeasedRun[]> {
  const rows = await tx.$queryRaw<Row[]>`
    SELECT r.id, r."leaseOwner", r.status::text AS status, r."jobId", r.attempts FROM "TrainingRun" r
     WHERE r.status = 'RUNNING' AND r."leaseOwner" = ${workerId} FOR UPDATE OF r`;
  return rows.map(leasedRunFromRow);
}

/**
 * Runs nobody will otherwise train, locked (skipping those another worker is taking back): RUNNING
 * runs whose heartbeat is older than `staleAfterMs`, and QUEUED runs older than that whose job is
 * gone, finished or failed, or active since before then. Timestamps are compared in the database,
 * whose clock the heartbeats also use.
 */
export async function staleRuns(tx: Tx, staleAfterMs: number): Promise<LeasedRun[]> {
  const rows = await tx.$queryRaw<Row[]>`
    SELECT r.id, r."leaseOwner", r.status::text AS status, r."jobId", r.attempts FROM "TrainingRun" r
     WHERE (r.status = 'RUNNING' AND (r."heartbeatAt" IS NULL OR r."heartbeatAt" < now() - ${staleAfterMs} * interval '1 millisecond'))
        OR (r.status = 'QUEUED' AND r."createdAt" < now() - ${staleAfterMs} * interval '1 millisecond' AND NOT EXISTS (
             SELECT 1 FROM pgboss.job j WHERE j.id::text = r."jobId"
                AND (j.state IN ('created', 'retry') OR (j.state = 'active' AND j.started_on >= now() - ${staleAfterMs} * interval '1 millisecond'))))
     FOR UPDATE OF r SKIP LOCKED`;
  return rows.map(leasedRunFromRow);
}

export async function requeueRun(tx: Tx, id: string, jobId: string): Promise<void> {
  await tx.trainingRun.update({ where: { id }, data: { status: 'QUEUED', leaseOwner: null, jobId } });
}

/** The database's clock, which heartbeats and stale checks use. */
export async function databaseNow(tx: Tx): Promise<Date> {
  const [row] = await tx.$queryRaw<Row[]>`SELECT now() AS now`;
  return col.date(row, 'now');
}

/** The run's last recorded epoch (its checkpoint is where a new attempt resumes). */
export function lastEpoch(db: Db | Tx, trainingRunId: string): Promise<TrainingEpoch | null> {
  return db.trainingEpoch.findFirst({ where: { trainingRunId }, orderBy: { epoch: 'desc' } });
}

/** QUEUED -> RUNNING, leased to `workerId`, one more attempt. */
export function markRunning(
  tx: Tx,
  run: Pick<TrainingRun, 'id' | 'startedAt'>,
  lease: { workerId: string; now: Date; progress: number; backend: string; device: string },
): Promise<TrainingRun> {
  return tx.trainingRun.update({
    where: { id: run.id },
    data: {
      status: 'RUNNING',
      leaseOwner: lease.workerId,
      heartbeatAt: lease.now,
      startedAt: run.startedAt ?? lease.now,
      attempts: { increment: 1 },
      progress: lease.progress,
      backend: lease.backend,
      device: lease.device,
      error: null,
    },
  });
}

/**
 * Renews `workerId`'s lease on a RUNNING run (and raises its progress to `progress` if given).
 * Returns whether cancellation was requested, or null when the lease is no longer this worker's.
 */
export async function renewLease(db: Db, runId: string, workerId: string, progress?: number): Promise<boolean | null> {
  const rows = await db.$queryRaw<Row[]>`
    UPDATE "TrainingRun" SET "heartbeatAt" = now()${progress === undefined ? Prisma.empty : Prisma.sql`, progress = GREATEST(progress, ${progress})`}
     WHERE id = ${runId}::uuid AND "leaseOwner" = ${workerId} AND status = 'RUNNING'
     RETURNING "cancelRequested"`;
  return rows.length === 0 ? null : col.boolean(rows[0], 'cancelRequested');
}

export type EpochMetrics = Pick<TrainingEpoch, 'loss' | 'accuracy' | 'valLoss' | 'valAccuracy' | 'durationMs' | 'checkpointKey' | 'checkpointSha256' | 'attempt'>;

/** Records an epoch; an epoch recorded again (by a later attempt) replaces the earlier one. */
export async function saveEpoch(db: Db, trainingRunId: string, epoch: number, metrics: EpochMetrics): Promise<void> {
  await db.trainingEpoch.upsert({ where: { trainingRunId_epoch: { trainingRunId, epoch } }, create: { trainingRunId, epoch, ...metrics }, update: metrics });
}

/** Who holds the run's lease, the row locked; undefined when there is no such run. */
export async function lockLeaseOwner(tx: Tx, runId: string): Promise<string | null | undefined> {
  const [row] = await tx.$queryRaw<Row[]>`SELECT "leaseOwner" FROM "TrainingRun" WHERE id = ${runId}::uuid FOR UPDATE`;
  return row ? col.textOrNull(row, 'leaseOwner') : undefined;
}

export async function markSucceeded(tx: Tx, runId: string, ranOn: { backend: string; device: string }): Promise<void> {
  await tx.trainingRun.update({ where: { id: runId }, data: { status: 'SUCCEEDED', progress: 1, finishedAt: new Date(), leaseOwner: null, backend: ranOn.backend, device: ranOn.device } });
}

/** Ends a RUNNING run that `workerId` still holds; false when it no longer does. */
export async function finishLeasedRun(tx: Tx, runId: string, workerId: string, status: 'FAILED' | 'CANCELLED', error: string | null): Promise<boolean> {
  const updated = await tx.trainingRun.updateMany({ where: { id: runId, leaseOwner: workerId, status: 'RUNNING' }, data: { status, error, finishedAt: new Date(), leaseOwner: null } });
  return updated.count > 0;
}

/** Runs by id, for the per-request loader. */
export function runsByIds(db: Db, ids: string[]): Promise<TrainingRun[]> {
  return db.trainingRun.findMany({ where: { id: { in: ids } } });
}

/** The epochs of several runs, in epoch order. */
export function epochsOfRuns(db: Db, trainingRunIds: string[]): Promise<TrainingEpoch[]> {
  return db.trainingEpoch.findMany({ where: { trainingRunId: { in: trainingRunIds } }, orderBy: { epoch: 'asc' } });
}
