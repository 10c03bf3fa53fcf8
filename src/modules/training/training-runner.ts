// The worker side of training runs. A run is held through a lease on its row (leaseOwner +
// heartbeatAt), not through the queue: claiming is a row-locked QUEUED -> RUNNING transition, so
// one run is never trained twice at once; the heartbeat also carries cancellation; and a run whose
// worker died (kill -9) has a stale heartbeat, is put back in the queue by any live worker, and
// resumes from its last stored checkpoint.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Db } from '../../db/prisma.js';
import { sqlOfPrisma } from '../../db/sql.js';
import type { TrainingRun } from '../../generated/prisma/client.js';
import type { JobQueue } from '../../jobs/queue.js';
import type { Logger } from '../../logger.js';
import {
  type Architecture, DEFAULT_HYPERPARAMETERS, type EpochReport, type Hyperparameters, initBackend, type LabelledItem, trainClassifier, trainingBackend, type TrainOptions,
  type TrainResult, TrainingCancelledError,
} from '../../ml/index.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { AuditService } from '../audit/audit.service.js';
import { versionItems } from '../datasets/dataset.store.js';
import type { ImageService } from '../images/image.service.js';
import type { RegistryService } from '../registry/registry.service.js';
import type { TrainingService } from './training.service.js';
import {
  databaseNow,
  finishLeasedRun,
  lastEpoch,
  lockLeaseOwner,
  lockRun,
  markRunning,
  markSucceeded,
  renewLease,
  requeueRun,
  runsLeasedTo,
  saveEpoch,
  staleRuns,
} from './training.store.js';

export const CHECKPOINT_PREFIX = 'checkpoints';

export interface RunnerOptions {
  workerId?: string;
  heartbeatMs?: number;
  /** A RUNNING run whose heartbeat is older than this is taken back. */
  staleAfterMs?: number;
  /** The training function (tests may pass one that runs in-thread). */
  train?: (opts: TrainOptions) => Promise<TrainResult>;
  /** Worker threads for data-parallel training (default: the engine's choice). */
  trainWorkers?: number;
}

class LeaseLostError extends Error {}
class CancelRequestedError extends Error {}

export class TrainingRunner {
  readonly workerId: string;
  private readonly heartbeatMs: number;
  private readonly staleAfterMs: number;
  private readonly train: (opts: TrainOptions) => Promise<TrainResult>;
  private reaper?: NodeJS.Timeout;
  private readonly active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly actor: { system: string };

  constructor(
    private readonly db: Db,
    private readonly store: ObjectStore,
    private readonly queue: JobQueue,
    private readonly audit: AuditService,
    private readonly registry: RegistryService,
    private readonly training: TrainingService,
    private readonly images: ImageService,
    private readonly logger: Logger,
    private readonly options: RunnerOptions = {},
  ) {
    this.workerId = options.workerId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.heartbeatMs = options.heartbeatMs ?? 5_000;
    this.staleAfterMs = options.staleAfterMs ?? 60_000;
    this.train = options.train ?? trainClassifier;
    this.actor = { system: `worker ${this.workerId}` };
  }

  async start(): Promise<void> {
    // TF.js' backend (xception, explanations) and what trains the default network (onnxruntime when it loads).
    const [tfjs, standard] = await Promise.all([initBackend(), trainingBackend(DEFAULT_HYPERPARAMETERS.architecture, this.options.trainWorkers)]);
    this.logger.info('training worker ready', { workerId: this.workerId, backend: standard.backend, device: standard.device, tfjsBackend: tfjs.backend });
    await this.queue.work((data) => this.runJob(data.runId), { pollingIntervalSeconds: 1 });
    const reap = () => void this.requeueStale().catch((err) => this.logger.warn('stale-run check failed', { error: err }));
    this.reaper = setInterval(reap, Math.max(1000, Math.min(this.staleAfterMs / 2, 15_000)));
    this.reaper.unref();
    reap();
  }

  /** Stops taking jobs, stops training between batches, and hands its runs back to the queue at once. */
  async stop(): Promise<void> {
    if (this.reaper) clearInterval(this.reaper);
    await this.queue.stopWorking();
    for (const { controller } of this.active.values()) controller.abort(new LeaseLostError('worker stopping'));
    await Promise.allSettled([...this.active.values()].map((a) => a.done));
    await this.requeue('mine').catch((err) => this.logger.warn('could not hand runs back to the queue', { error: err }));
  }

  /**
   * Puts runs back in the queue that nobody will otherwise train: RUNNING runs whose worker stopped
   * renewing the lease, and QUEUED runs whose job is gone, finished or failed (e.g. the claim hit
   * a database error) or was taken by a worker that died before claiming the run.
   */
  async requeueStale(): Promise<string[]> {
    return this.requeue('stale');
  }

  private async requeue(which: 'stale' | 'mine'): Promise<string[]> {
    const ids = await this.db.$transaction(async (tx) => {
      const stale = which === 'mine' ? await runsLeasedTo(tx, this.workerId) : await staleRuns(tx, this.staleAfterMs);
      for (const run of stale) {
        const reason = which === 'mine' ? 'worker stopped' : run.status === 'RUNNING' ? 'worker stopped sending heartbeats' : 'queued run had no live job';
        // The old job would otherwise stay 'active' until it expires (23 h): it ends here, failed.
        if (run.jobId) await this.queue.failTraining(sqlOfPrisma(tx), run.jobId, `run taken back: ${reason}`);
        const jobId = await this.queue.sendTraining(sqlOfPrisma(tx), { runId: run.id });
        await requeueRun(tx, run.id, jobId);
        await this.audit.append(sqlOfPrisma(tx), this.actor, {
          action: 'trainingRun.requeue',
          entityType: 'TrainingRun',
          entityId: run.id,
          details: { reason, previousWorker: run.leaseOwner, previousJobId: run.jobId, attempt: run.attempts, jobId },
        });
      }
      return stale.map((r) => r.id);
    });
    for (const id of ids) {
      this.logger.warn('re-queued a training run', { runId: id, which });
      await this.training.announce(id);
    }
    return ids;
  }

  /** Takes the run if it is QUEUED: RUNNING, leased to this worker. Null if someone else has it. */
  private async claim(runId: string): Promise<TrainingRun | null> {
    return this.db.$transaction(async (tx) => {
      const run = await lockRun(tx, runId);
      if (run?.status !== 'QUEUED') return null;
      const architecture = (run.hyperparameters as { architecture?: Architecture } | null)?.architecture ?? DEFAULT_HYPERPARAMETERS.architecture;
      const backend = await trainingBackend(architecture, this.options.trainWorkers);
      const now = await databaseNow(tx); // the database's clock, as heartbeats use
      // A new attempt starts from the last stored checkpoint: its progress starts there (a dead
      // attempt may have got further than its last checkpoint) and only grows within the attempt.
      const last = await lastEpoch(tx, runId);
      const planned = (run.hyperparameters as { epochs?: number } | null)?.epochs ?? 0;
      const progress = last && planned ? Math.min(0.999, last.epoch / planned) : 0;
      const claimed = await markRunning(tx, run, { workerId: this.workerId, now, progress, backend: backend.backend, device: backend.device });
      await this.audit.append(sqlOfPrisma(tx), this.actor, {
        action: 'trainingRun.running',
        entityType: 'TrainingRun',
        entityId: runId,
        details: { attempt: claimed.attempts, workerId: this.workerId, backend: backend.backend, device: backend.device },
      });
      return claimed;
    });
  }

  /** Renews the lease; returns whether cancellation was requested. Throws if the lease is gone. */
  private async heartbeat(runId: string, progress?: number): Promise<boolean> {
    const cancelRequested = await renewLease(this.db, runId, this.workerId, progress);
    if (cancelRequested === null) throw new LeaseLostError(`lost the lease on run ${runId}`);
    return cancelRequested;
  }

  async runJob(runId: string): Promise<void> {
    const run = await this.claim(runId);
    if (!run) return;
    await this.training.announce(runId);
    const log = this.logger.child({ runId, workerId: this.workerId });
    const controller = new AbortController();
    let finished!: () => void;
    this.active.set(runId, { controller, done: new Promise<void>((resolve) => (finished = resolve)) });
    const beat = async (progress?: number) => {
      try {
        if (await this.heartbeat(runId, progress)) controller.abort(new CancelRequestedError('cancelled by an admin'));
      } catch (err) {
        controller.abort(err instanceof LeaseLostError ? err : new LeaseLostError(String(err)));
      }
    };
    const timer = setInterval(() => void beat(), this.heartbeatMs);
    try {
      const hyperparameters = run.hyperparameters as unknown as Hyperparameters;
      const items = await this.loadItems(run.datasetVersionId);
      const last = await lastEpoch(this.db, runId);
      const resumeFrom = last ? await this.store.get(last.checkpointKey) : undefined;
      log.info('training', { items: items.length, resumeAfterEpoch: last?.epoch ?? 0, attempt: run.attempts, backend: run.backend, device: run.device });
      let lastProgressWrite = 0;
      const result = await this.train({
        items,
        hyperparameters,
        resumeFrom,
        signal: controller.signal,
        workers: this.options.trainWorkers,
        log: (line) => log.debug(line),
        onEpoch: (e) => this.recordEpoch(runId, e, hyperparameters.epochs, run.attempts),
        onProgress: (p) => {
          if (Date.now() - lastProgressWrite < 2000) return;
          lastProgressWrite = Date.now();
          void beat(Math.min(0.999, (p.epoch - 1 + p.batch / p.batchesPerEpoch) / hyperparameters.epochs));
        },
      });
      await this.succeed(runId, result);
      log.info('training run succeeded', { accuracy: result.meta.metrics.accuracy });
    } catch (err) {
      const reason = controller.signal.reason;
      if (reason instanceof LeaseLostError || err instanceof LeaseLostError) {
        log.warn('stopped training: lease lost', { error: (reason ?? err).message });
      } else if (reason instanceof CancelRequestedError && err instanceof TrainingCancelledError) {
        await this.finish(runId, 'CANCELLED', null);
        log.info('training run cancelled');
      } else {
        const message = err instanceof Error ? err.message : String(err);
        log.error('training run failed', { error: err });
        await this.finish(runId, 'FAILED', message);
      }
    } finally {
      clearInterval(timer);
      this.active.delete(runId);
      finished();
      await this.training.announce(runId);
    }
  }

  private async loadItems(datasetVersionId: string): Promise<LabelledItem[]> {
    const rows = await versionItems(this.db, datasetVersionId);
    const bytes = await this.images.getMany(rows.map((r) => r.objectKey));
    return rows.map((r, i) => ({ id: r.sha256, label: r.label, bytes: bytes[i], group: r.groupKey }));
  }

  private async recordEpoch(runId: string, e: EpochReport, plannedEpochs: number, attempt: number): Promise<void> {
    const checkpoint = await this.store.putContent(`${CHECKPOINT_PREFIX}/${runId}`, Buffer.from(e.checkpoint), 'application/octet-stream');
    const metrics = { loss: e.loss, accuracy: e.accuracy, valLoss: e.valLoss, valAccuracy: e.valAccuracy, durationMs: Math.round(e.durationMs), checkpointKey: checkpoint.key, checkpointSha256: checkpoint.sha256, attempt };
    await this.heartbeat(runId, Math.min(0.999, e.epoch / plannedEpochs));
    await saveEpoch(this.db, runId, e.epoch, metrics);
    await this.training.announce(runId);
  }

  private async succeed(runId: string, result: TrainResult): Promise<void> {
    await this.db.$transaction(
      async (tx) => {
        if ((await lockLeaseOwner(tx, runId)) !== this.workerId) throw new LeaseLostError('lease lost before the model was registered');
        const mv = await this.registry.register(tx, this.actor, { bundle: result.bundle, trainingRunId: runId });
        await markSucceeded(tx, runId, { backend: result.meta.backend, device: result.meta.device });
        await this.audit.append(sqlOfPrisma(tx), this.actor, {
          action: 'trainingRun.succeeded',
          entityType: 'TrainingRun',
          entityId: runId,
          details: { modelVersionId: mv.id, version: mv.version, accuracy: result.meta.metrics.accuracy, bestEpoch: result.meta.bestEpoch, skipped: result.skipped.length },
        });
      },
      { timeout: 60_000 },
    );
  }

  private async finish(runId: string, status: 'FAILED' | 'CANCELLED', error: string | null): Promise<void> {
    await this.db.$transaction(async (tx) => {
      if (!(await finishLeasedRun(tx, runId, this.workerId, status, error))) return;
      await this.audit.append(sqlOfPrisma(tx), this.actor, { action: status === 'FAILED' ? 'trainingRun.failed' : 'trainingRun.cancelled', entityType: 'TrainingRun', entityId: runId, details: { error } });
    });
  }
}
