// Training runs as the API sees them: start (validated, QUEUED, job enqueued in the same
// transaction), cancel, and reads. The worker side lives in training-runner.ts.
import type { Db, Prisma } from '../../db/prisma.js';
import { sqlOfPrisma } from '../../db/sql.js';
import type { TrainingRun, TrainingStatus } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { CHANNELS, type EventBus } from '../../events/event-bus.js';
import type { JobQueue } from '../../jobs/queue.js';
import { MIN_IMAGES_PER_CLASS, validateHyperparameters } from '../../ml/index.js';
import { paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, Principal } from '../auth/roles.js';
import { cancelRun, datasetVersionCounts, findRun, insertRun, lockRun, runsPage, setRunJob } from './training.store.js';

/** Statuses a run never leaves. */
export const FINAL_STATUSES: TrainingStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export class TrainingService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly queue: JobQueue,
    private readonly events: EventBus,
  ) {}

  async start(actor: Principal, datasetVersionId: string, hyperparameters: Record<string, unknown> | null | undefined): Promise<TrainingRun> {
    const given = Object.fromEntries(Object.entries(hyperparameters ?? {}).filter(([, v]) => v !== undefined && v !== null));
    const validated = validateHyperparameters(given);
    if (!validated.ok) throw badInput(`Invalid hyperparameters: ${validated.errors.join('; ')}`, { errors: validated.errors });
    const version = await datasetVersionCounts(this.db, datasetVersionId);
    if (!version) throw notFound('DatasetVersion', datasetVersionId);
    if (version.femaleCount < MIN_IMAGES_PER_CLASS || version.maleCount < MIN_IMAGES_PER_CLASS) {
      throw badInput(
        `Dataset version ${version.version} has ${version.femaleCount} female and ${version.maleCount} male images; training needs at least ${MIN_IMAGES_PER_CLASS} of each class`,
        { femaleCount: version.femaleCount, maleCount: version.maleCount, minPerClass: MIN_IMAGES_PER_CLASS },
      );
    }
    const run = await this.db.$transaction(async (tx) => {
      const created = await insertRun(tx, { datasetVersionId, hyperparameters: validated.value as unknown as Prisma.InputJsonValue, createdById: actor.keyId });
      const jobId = await this.queue.sendTraining(sqlOfPrisma(tx), { runId: created.id });
      const queued = await setRunJob(tx, created.id, jobId);
      await this.audit.append(sqlOfPrisma(tx), actor, {
        action: 'trainingRun.start',
        entityType: 'TrainingRun',
        entityId: created.id,
        details: { datasetVersionId, hyperparameters: validated.value, jobId },
      });
      return queued;
    });
    await this.announce(run.id);
    return run;
  }

  /** A queued run is cancelled at once; a running one within one batch (the worker sees the flag). */
  async cancel(actor: Actor, id: string): Promise<TrainingRun> {
    const run = await this.db.$transaction(async (tx) => {
      const current = await lockRun(tx, id);
      if (!current) throw notFound('TrainingRun', id);
      if (FINAL_STATUSES.includes(current.status)) throw conflict(`Training run ${id} is already ${current.status}`);
      if (current.cancelRequested) throw conflict(`Cancellation of training run ${id} was already requested`);
      const updated = await cancelRun(tx, id, current.status === 'QUEUED');
      await this.audit.append(sqlOfPrisma(tx), actor, { action: current.status === 'QUEUED' ? 'trainingRun.cancel' : 'trainingRun.cancelRequested', entityType: 'TrainingRun', entityId: id, details: { from: current.status } });
      return updated;
    });
    if (run.status === 'CANCELLED' && run.jobId) await this.queue.cancel(run.jobId);
    await this.announce(run.id);
    return run;
  }

  async get(id: string): Promise<TrainingRun> {
    const run = await findRun(this.db, id);
    if (!run) throw notFound('TrainingRun', id);
    return run;
  }

  list(filter: { status?: TrainingStatus | null }, page: PageRequest) {
    return paginate(page, (take) => runsPage(this.db, filter, page.after, take));
  }

  /** Tells subscribers (in this and other processes) that a run changed. */
  announce(runId: string): Promise<void> {
    return this.events.publish(CHANNELS.trainingRun, { runId });
  }
}
