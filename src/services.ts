// The service container: one instance of each domain service per process, wired here.
import type { Config } from './config.js';
import type { ConnectionBudget } from './db/connections.js';
import type { Db } from './db/prisma.js';
import type { SqlDatabase } from './db/sql.js';
import type { Logger } from './logger.js';
import { ApiKeyService } from './modules/auth/api-key.service.js';
import { AuditAnchorService } from './modules/audit/audit-anchor.service.js';
import { AuditService } from './modules/audit/audit.service.js';
import { CaseService } from './modules/cases/case.service.js';
import { DatasetImportService } from './modules/datasets/dataset-import.service.js';
import { DatasetService } from './modules/datasets/dataset.service.js';
import { DatasetVersionService } from './modules/datasets/dataset-versions.service.js';
import { CaseExportService } from './modules/exports/case-export.service.js';
import { EvidenceService } from './modules/evidence/evidence.service.js';
import { IdempotencyService } from './modules/idempotency/idempotency.service.js';
import { ImageService } from './modules/images/image.service.js';
import { OrphanSweeper } from './modules/orphans/orphan-sweeper.js';
import { EventBus } from './events/event-bus.js';
import { JobQueue } from './jobs/queue.js';
import { PredictionService } from './modules/predictions/prediction.service.js';
import { ModelComparisonService } from './modules/registry/model-comparison.js';
import { ModelServing } from './modules/registry/model-serving.js';
import { PromotionService } from './modules/registry/promotion.service.js';
import { RegistryService } from './modules/registry/registry.service.js';
import { TrainingService } from './modules/training/training.service.js';
import type { ObjectStore } from './storage/object-store.js';

export interface Infrastructure {
  config: Config;
  /** Prisma and plain SQL on the process's one application pool (db/connections.ts). */
  db: Db;
  sql: SqlDatabase;
  /** Sizes the job queue's pool (the application pool is already open). */
  connections: ConnectionBudget;
  store: ObjectStore;
  logger: Logger;
  databaseUrl: string;
}

export function createServices(infra: Infrastructure) {
  const { db, sql, store } = infra;
  const auditAnchors = new AuditAnchorService(db, store, infra.config.audit, infra.logger);
  const audit = new AuditService(db, auditAnchors);
  const events = new EventBus(infra.databaseUrl, infra.logger);
  const apiKeys = new ApiKeyService(db, audit, events);
  const images = new ImageService(sql, store);
  const cases = new CaseService(db, sql, audit);
  const idempotency = new IdempotencyService(sql);
  const evidence = new EvidenceService(db, sql, audit, cases, images, idempotency);
  const datasets = new DatasetService(db, audit);
  const datasetImports = new DatasetImportService(db, audit, images, datasets, infra.config);
  const datasetVersions = new DatasetVersionService(db, audit, store, infra.config);
  const queue = new JobQueue(infra.databaseUrl, infra.logger, { max: infra.connections.queue });
  const registry = new RegistryService(db, audit, store, events, infra.logger);
  const serving = new ModelServing(registry, events, infra.logger, infra.config.modelPollMs, infra.config.inferenceThreads, infra.config.inferenceRuntime);
  const comparison = new ModelComparisonService(db, images, serving);
  const promotions = new PromotionService(db, audit, registry, comparison, infra.config.promotionTolerance);
  const training = new TrainingService(db, audit, queue, events);
  const predictions = new PredictionService(db, sql, audit, cases, evidence, images, store, serving, idempotency);
  const orphans = new OrphanSweeper(sql, store, infra.logger);
  const exports = new CaseExportService(db, sql, audit, auditAnchors, cases, store, infra.config.presignedUrlSeconds);
  return { ...infra, audit, auditAnchors, idempotency, orphans, exports, images, cases, evidence, apiKeys, datasets, datasetImports, datasetVersions, events, queue, registry, serving, comparison, promotions, training, predictions };
}

/** Connections that services hold open: started once per process, stopped at shutdown. */
export async function startBackground(services: Services): Promise<void> {
  if (services.connections.listen > 0) await services.events.start();
  if (services.connections.queue > 0) await services.queue.start();
}

export async function stopBackground(services: Services): Promise<void> {
  await services.serving.stop();
  await services.queue.stop();
  await services.events.stop();
}

export type Services = ReturnType<typeof createServices>;
