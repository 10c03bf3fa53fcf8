// The model registry: model versions, their stages and every stage change (from, to, who, when,
// why), each also an audit event. Stage changes are serialised by an advisory lock; the partial
// unique index on stage = PRODUCTION is the database's own guarantee behind it.
import fs from 'node:fs/promises';
import type { Db, Tx } from '../../db/prisma.js';
import { advisoryXactLock, isTransactionTimeout, isUniqueViolation, sqlOfPrisma, tryAdvisoryXactLock } from '../../db/sql.js';
import { TEXT_LIMITS } from '../../graphql/text-limits.js';
import type { Prisma } from '../../db/prisma.js';
import type { ModelStage, ModelStageChange as ModelStageChangeRow, ModelVersion, StageChangeKind } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { CHANNELS, type EventBus } from '../../events/event-bus.js';
import type { Logger } from '../../logger.js';
import { type BundleMeta, type EvaluationMetrics, readBundleMeta } from '../../ml/index.js';
import { paginate, type PageRequest } from '../../shared/pagination.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { AuditService } from '../audit/audit.service.js';
import { type Actor, actorKeyId } from '../auth/roles.js';
import * as store from './registry.store.js';

export const MODEL_NAME = 'eyes';
export const MODEL_PREFIX = 'models';
export const BASELINE_REASON = 'bundled baseline';
const REGISTRY_LOCK_KEY = 41847102;

/** JSON as PostgreSQL keeps it: figures that could not be computed (NaN, e.g. no decided images) become null. */
function finiteOrNull(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(finiteOrNull);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, finiteOrNull(v)]));
  return value;
}

/** What the registry keeps of a bundle's evaluation (everything a reviewer compares). */
export function evaluationOf(meta: BundleMeta) {
  return finiteOrNull({
    metrics: meta.metrics,
    metricsSplit: meta.metricsSplit,
    metricIntervals: meta.metricIntervals ?? null,
    metricsInSample: meta.metricsInSample ?? null,
    guard: meta.guard ?? null,
    testTimeAugmentation: meta.testTimeAugmentation ?? 'none',
    calibration: meta.calibration,
    thresholds: meta.thresholds,
    bestEpoch: meta.bestEpoch,
    epochsRun: meta.epochsRun,
    trainingSeconds: meta.trainingSeconds,
    parameters: meta.parameters,
    dataFingerprint: meta.dataFingerprint,
    dataCounts: meta.dataCounts,
    hyperparameters: meta.hyperparameters,
  });
}

/** Metrics as the registry keeps them (evaluationOf): figures that could not be computed are null. */
type StoredMetrics = Omit<EvaluationMetrics, 'notAnEyeRate' | 'decidedAccuracy'> & { notAnEyeRate?: number | null; decidedAccuracy: number | null; guardRefusalRate?: number | null };

/** A version's headline figures as the API shows them; null for a version without an evaluation. */
export function metricsOf(mv: { evaluation: unknown }) {
  const evaluation = mv.evaluation as { metrics?: StoredMetrics; metricsSplit?: string } | null;
  const metrics = evaluation?.metrics;
  return metrics ? {
    ...metrics, split: evaluation?.metricsSplit ?? null, notAnEyeRate: metrics.notAnEyeRate ?? null,
    guardRefusalRate: metrics.guardRefusalRate ?? null, confusionMatrix: metrics.confusionMatrix.matrix,
  } : null;
}

/** A version's out-of-distribution guard as the API shows it; null for models without one (bundle format 1). */
export function guardOf(mv: { evaluation: unknown }) {
  const guard = (mv.evaluation as { guard?: { method: string; threshold: number; validationEyesRefused?: number; syntheticNonEyesRefused?: number } | null } | null)?.guard;
  return guard ? { method: guard.method, threshold: guard.threshold, validationEyesRefused: guard.validationEyesRefused ?? null, syntheticNonEyesRefused: guard.syntheticNonEyesRefused ?? null } : null;
}

/**
 * The version a rollback returns to. Production history is a stack: a promotion pushes a version,
 * a rollback pops the current one; so rolling back twice goes two versions back, and never to a
 * version that was itself rolled back.
 */
export function previousProduction(changes: Array<Pick<ModelStageChangeRow, 'modelVersionId' | 'toStage' | 'kind'>>): string | null {
  const stack: string[] = [];
  for (const c of changes) {
    if (c.kind === 'PROMOTE') stack.push(c.modelVersionId);
    else if (c.kind === 'ROLLBACK') stack.pop();
  }
  return stack.length >= 2 ? stack[stack.length - 2] : null;
}

export const cleanReason = (reason: string | null | undefined): string => {
  const r = reason?.trim() ?? '';
  if (!r) throw badInput('A reason is required for every stage change (it is kept in the model history)');
  if (r.length > TEXT_LIMITS.reason) throw badInput(`The reason must be at most ${TEXT_LIMITS.reason} characters`);
  return r;
};

export class RegistryService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
    private readonly events: EventBus,
    private readonly logger: Logger,
  ) {}

  /** Registers a bundle as a new CANDIDATE version, inside the caller's transaction. */
  async register(tx: Tx, actor: Actor, input: { bundle: Uint8Array; trainingRunId?: string | null }): Promise<ModelVersion> {
    const meta = readBundleMeta(input.bundle);
    const stored = await this.objects.putContent(MODEL_PREFIX, Buffer.from(input.bundle), 'application/octet-stream');
    await advisoryXactLock(sqlOfPrisma(tx), REGISTRY_LOCK_KEY);
    const mv = await store.insertModelVersion(tx, {
      name: MODEL_NAME,
      version: (await store.lastModelVersionNumber(tx, MODEL_NAME)) + 1,
      trainingRunId: input.trainingRunId ?? null,
      artifactKey: stored.key,
      artifactSha256: stored.sha256,
      architecture: meta.architecture,
      inputSize: meta.inputSize,
      preprocessingVersion: String(meta.preprocessingVersion),
      backend: meta.backend,
      device: meta.device,
      evaluation: evaluationOf(meta) as unknown as Prisma.InputJsonValue,
      thresholdFemale: meta.thresholds.female,
      thresholdMale: meta.thresholds.male,
      stage: 'CANDIDATE',
    });
    await store.insertStageChange(tx, { modelVersionId: mv.id, fromStage: null, toStage: 'CANDIDATE', kind: 'REGISTER', reason: input.trainingRunId ? `trained by run ${input.trainingRunId}` : 'registered', changedById: actorKeyId(actor) });
    await this.audit.append(sqlOfPrisma(tx), actor, {
      action: 'modelVersion.register',
      entityType: 'ModelVersion',
      entityId: mv.id,
      details: { name: mv.name, version: mv.version, artifactSha256: mv.artifactSha256, trainingRunId: mv.trainingRunId, accuracy: meta.metrics.accuracy },
    });
    return mv;
  }

  /** On first start: registers the bundled baseline as version 1 and promotes it. */
  async ensureBaseline(bundlePath: string): Promise<ModelVersion | null> {
    if ((await store.countModelVersions(this.db)) > 0) return null;
    const bytes = await fs.readFile(bundlePath);
    const actor = { system: 'bootstrap' };
    const mv = await this.db.$transaction(async (tx) => {
      await advisoryXactLock(sqlOfPrisma(tx), REGISTRY_LOCK_KEY);
      if ((await store.countModelVersions(tx)) > 0) return null; // another process won the race
      const registered = await this.register(tx, actor, { bundle: bytes });
      return this.changeStage(tx, actor, registered, 'PRODUCTION', 'PROMOTE', BASELINE_REASON);
    }, { timeout: 30_000 });
    if (mv) {
      this.logger.info('registered the bundled baseline model as production', { version: mv.version, sha256: mv.artifactSha256 });
      await this.announceProduction(mv.id);
    }
    return mv;
  }

  /**
   * The one place a version becomes production. An approved promotion request calls it with
   * `within`, which runs in the same transaction after the stage checks (and records the
   * approval), so concurrent approvals serialise here and all but one end in CONFLICT.
   */
  async promote(actor: Actor, id: string, reason: string, within?: (tx: Tx, target: ModelVersion) => Promise<void>): Promise<ModelVersion> {
    const why = cleanReason(reason);
    const mv = await this.stageTransaction(async (tx) => {
      const target = await this.require(tx, id);
      if (target.stage === 'ARCHIVED') throw conflict(`Version ${target.version} was archived and can no longer be promoted; reject the request and ask for another candidate`, { reason: 'CANDIDATE_ARCHIVED' });
      if (target.stage !== 'CANDIDATE') throw conflict(`Only CANDIDATE versions can be promoted; version ${target.version} is ${target.stage}`);
      if (!target.evaluation) throw conflict(`Version ${target.version} has no evaluation and cannot be promoted`);
      if (within) await within(tx, target);
      const current = await store.productionVersion(tx);
      if (current) await this.changeStage(tx, actor, current, 'ARCHIVED', 'REPLACE', `replaced by version ${target.version}: ${why}`);
      return this.changeStage(tx, actor, target, 'PRODUCTION', 'PROMOTE', why);
    });
    await this.announceProduction(mv.id);
    return mv;
  }

  /** Returns production to the version that held it before the current one. */
  async rollback(actor: Actor, reason: string): Promise<ModelVersion> {
    const why = cleanReason(reason);
    const mv = await this.stageTransaction(async (tx) => {
      const current = await store.productionVersion(tx);
      if (!current) throw conflict('No version is in production, so there is nothing to roll back');
      const previousId = previousProduction(await store.stageHistory(tx));
      if (!previousId) throw conflict(`No version held production before version ${current.version}, so there is nothing to roll back to`);
      const previous = await this.require(tx, previousId);
      await this.changeStage(tx, actor, current, 'ARCHIVED', 'ROLLBACK', `rolled back: ${why}`);
      return this.changeStage(tx, actor, previous, 'PRODUCTION', 'RESTORE', `rollback from version ${current.version}: ${why}`);
    });
    await this.announceProduction(mv.id);
    return mv;
  }

  async archive(actor: Actor, id: string, reason: string): Promise<ModelVersion> {
    const why = cleanReason(reason);
    return this.stageTransaction(async (tx) => {
      const mv = await this.require(tx, id);
      if (mv.stage === 'PRODUCTION') throw conflict(`Version ${mv.version} is in production: promote another version or roll back first`);
      if (mv.stage === 'ARCHIVED') throw conflict(`Version ${mv.version} is already archived`);
      return this.changeStage(tx, actor, mv, 'ARCHIVED', 'ARCHIVE', why);
    });
  }

  production(): Promise<ModelVersion | null> {
    return store.productionVersion(this.db);
  }

  /** The version a training run registered, if it succeeded. */
  forTrainingRun(trainingRunId: string): Promise<ModelVersion | null> {
    return store.versionOfTrainingRun(this.db, trainingRunId);
  }

  async get(id: string): Promise<ModelVersion> {
    return this.require(this.db, id);
  }

  list(filter: { stage?: ModelStage | null }, page: PageRequest) {
    return paginate(page, (take) => store.listModelVersions(this.db, filter.stage ?? undefined, page.after, take));
  }

  artifact(mv: Pick<ModelVersion, 'artifactKey'>): Promise<Buffer> {
    return this.objects.get(mv.artifactKey);
  }

  private async require(db: Db | Tx, id: string): Promise<ModelVersion> {
    const mv = await store.modelVersionById(db, id);
    if (!mv) throw notFound('ModelVersion', id);
    return mv;
  }

  /**
   * One stage change at a time. Concurrent ones answer CONFLICT at once instead of queueing on the
   * lock: a queue of waiters each holding a pooled connection is what made the pool run dry and
   * Prisma answer "Unable to start a transaction in the given time" (P2028), which is also mapped.
   */
  private async stageTransaction(work: (tx: Tx) => Promise<ModelVersion>): Promise<ModelVersion> {
    const busy = () => conflict('Another stage change is in progress; try again', { retryable: true });
    try {
      return await this.db.$transaction(async (tx) => {
        if (!(await tryAdvisoryXactLock(sqlOfPrisma(tx), REGISTRY_LOCK_KEY))) throw busy();
        return work(tx);
      });
    } catch (err) {
      // The partial unique index refused a second PRODUCTION version.
      if (isUniqueViolation(err) || isTransactionTimeout(err)) throw busy();
      throw err;
    }
  }

  private async changeStage(tx: Tx, actor: Actor, mv: ModelVersion, to: ModelStage, kind: StageChangeKind, reason: string): Promise<ModelVersion> {
    const updated = await store.setModelStage(tx, mv.id, to);
    const change = await store.insertStageChange(tx, { modelVersionId: mv.id, fromStage: mv.stage, toStage: to, kind, reason, changedById: actorKeyId(actor) });
    await this.audit.append(sqlOfPrisma(tx), actor, {
      action: 'modelVersion.stage',
      entityType: 'ModelVersion',
      entityId: mv.id,
      details: { version: mv.version, from: mv.stage, to, kind, reason, stageChangeId: change.id },
    });
    return updated;
  }

  private async announceProduction(modelVersionId: string): Promise<void> {
    await this.events.publish(CHANNELS.production, { modelVersionId });
  }
}
