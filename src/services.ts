// The service container: one instance of each domain service per process, wired here.
import type { Config } from './config.js';
import type { Db } from './db/prisma.js';
import type { Logger } from './logger.js';
import { ApiKeyService } from './modules/auth/api-key.service.js';
import { AuditService } from './modules/audit/audit.service.js';
import { CaseService } from './modules/cases/case.service.js';
import { EvidenceService } from './modules/evidence/evidence.service.js';
import { ImageService } from './modules/images/image.service.js';
import type { ObjectStore } from './storage/object-store.js';

export interface Infrastructure {
  config: Config;
  db: Db;
  store: ObjectStore;
  logger: Logger;
  databaseUrl: string;
}

export function createServices(infra: Infrastructure) {
  const { db, store } = infra;
  const audit = new AuditService(db);
  const images = new ImageService(db, store);
  const cases = new CaseService(db, audit);
  const evidence = new EvidenceService(db, audit, cases, images);
  const apiKeys = new ApiKeyService(db, audit);
  return { ...infra, audit, images, cases, evidence, apiKeys };
}

export type Services = ReturnType<typeof createServices>;
