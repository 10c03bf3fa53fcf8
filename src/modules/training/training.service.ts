// Training runs as the API sees them: start (validated, QUEUED, job enqueued in the same
// transaction), cancel, and reads. The worker side lives in training-runner.ts.
import type { Db } from '../../db/prisma.js';
import { Prisma } from '../../db/prisma.js';
import type { TrainingRun, TrainingStatus } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { CHANNELS, type EventBus } from '../../events/event-bus.js';
import type { JobQueue } from '../../jobs/queue.js';
import { MIN_IMAGES_PER_CLASS, validateHyperparameters } from '../../ml/index.js';
import { afterCursorWhere, NEWEST_FIRST, paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, Principal } from '../auth/roles.js';

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
    const version = await this.db.datasetVersion.findUnique({ where: { id: datasetVersionId } });
    if (!version) throw notFound('DatasetVersion', datasetVersionId);
    if (version.femaleCount < MIN_IMAGES_PER_CLASS || version.maleCount < MIN_IMAGES_PER_CLASS) {
      throw badInput(
        `Dataset version ${version.version} has ${version.femaleCount} female and ${version.maleCount} male images; training needs at least ${MIN_IMAGES_PER_CLASS} of each class`,
        { femaleCount: version.femaleCount, maleCount: version.maleCount, minPerClass: MIN_IMAGES_PER_CLASS },
      );
    }
    const run = await this.db.$transaction(async (tx) => {
      const created = await tx.trainingRun.create({
        data: { datasetVersionId, hyperparameters: validated.value as unknown as Prisma.InputJsonValue, createdById: actor.keyId },
      });
      const jobId = await this.queue.sendTraining(tx, { runId: created.id });
      const queued = await tx.trainingRun.update({ where: { id: created.id }, data: { jobId } });
      await this.audit.append(tx, actor, {
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
      const [locked] = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM "TrainingRun" WHERE id = ${id}::uuid FOR UPDATE`;
      if (!locked) throw notFound('TrainingRun', id);
      const current = await tx.trainingRun.findUniqueOrThrow({ where: { id } });
      if (FINAL_STATUSES.includes(current.status)) throw conflict(`Training run ${id} is already ${current.status}`);
      if (current.cancelRequested) throw conflict(`Cancellation of training run ${id} was already requested`);
      const data: Prisma.TrainingRunUpdateInput =
        current.status === 'QUEUED' ? { status: 'CANCELLED', cancelRequested: true, finishedAt: new Date(), leaseOwner: null } : { cancelRequested: true };
      const updated = await tx.trainingRun.update({ where: { id }, data });
      await this.audit.append(tx, actor, { action: current.status === 'QUEUED' ? 'trainingRun.cancel' : 'trainingRun.cancelRequested', entityType: 'TrainingRun', entityId: id, details: { from: current.status } });
      return updated;
    });
    if (run.status === 'CANCELLED' && run.jobId) await this.queue.cancel(run.jobId);
    await this.announce(run.id);
    return run;
  }

  async get(id: string): Promise<TrainingRun> {
    const run = await this.db.trainingRun.findUnique({ where: { id } });
    if (!run) throw notFound('TrainingRun', id);
    return run;
  }

  list(filter: { status?: TrainingStatus | null }, page: PageRequest) {
    return paginate(page, (take) =>
      this.db.trainingRun.findMany({ where: { AND: [{ status: filter.status ?? undefined }, afterCursorWhere(page.after)] }, orderBy: NEWEST_FIRST, take }),
    );
  }

  /** Tells subscribers (in this and other processes) that a run changed. */
  announce(runId: string): Promise<void> {
    return this.events.publish(CHANNELS.trainingRun, { runId });
  }
}
