// Database access of API keys. Keys are a cold admin path (and authentication is cached in
// ApiKeyService): Prisma throughout.
import type { Db, Tx } from '../../db/prisma.js';
import type { ApiKey } from '../../generated/prisma/client.js';
import type { RoleName } from './roles.js';

export function keyBySecretHash(db: Db, secretHash: string): Promise<ApiKey | null> {
  return db.apiKey.findUnique({ where: { secretHash } });
}

export async function recordKeyUse(db: Db, id: string, at: Date): Promise<void> {
  await db.apiKey.update({ where: { id }, data: { lastUsedAt: at } });
}

export function insertKey(tx: Tx, data: { name: string; role: RoleName; prefix: string; secretHash: string; createdById: string | null }): Promise<ApiKey> {
  return tx.apiKey.create({ data });
}

export function findKey(tx: Tx, id: string): Promise<ApiKey | null> {
  return tx.apiKey.findUnique({ where: { id } });
}

export function markRevoked(tx: Tx, id: string, at: Date): Promise<ApiKey> {
  return tx.apiKey.update({ where: { id }, data: { revokedAt: at } });
}

/** Every key, oldest first. */
export function allKeys(db: Db): Promise<ApiKey[]> {
  return db.apiKey.findMany({ orderBy: { createdAt: 'asc' } });
}

export function countActiveAdmins(db: Db): Promise<number> {
  return db.apiKey.count({ where: { role: 'ADMIN', revokedAt: null } });
}

/** Keys by id, for the per-request loader. */
export function keysByIds(db: Db, ids: string[]): Promise<ApiKey[]> {
  return db.apiKey.findMany({ where: { id: { in: ids } } });
}
