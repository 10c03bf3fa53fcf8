// SQL of idempotent writes (see idempotency.service.ts).
import type { Sql, SqlDatabase } from '../../db/sql.js';

export interface StoredIdempotency {
  operation: string;
  requestHash: string;
  result: Record<string, unknown>;
}

export const IDEMPOTENCY_PRIMARY_KEY = 'IdempotencyKey_pkey';

export async function findIdempotency(db: SqlDatabase, apiKeyId: string, key: string): Promise<StoredIdempotency | undefined> {
  const [row] = await db.query<StoredIdempotency>('SELECT operation, "requestHash", result FROM "IdempotencyKey" WHERE "apiKeyId" = $1::uuid AND key = $2', [apiKeyId, key]);
  return row;
}

/** Takes the key inside the write's transaction; a concurrent request with the same key waits here, then fails on the primary key. */
export async function claimIdempotency(sql: Sql, apiKeyId: string, key: string, operation: string, requestHash: string): Promise<void> {
  await sql.query(`INSERT INTO "IdempotencyKey" ("apiKeyId", key, operation, "requestHash", result) VALUES ($1::uuid, $2, $3, $4, '{}'::jsonb)`, [apiKeyId, key, operation, requestHash]);
}

export async function completeIdempotency(sql: Sql, apiKeyId: string, key: string, result: Record<string, unknown>): Promise<void> {
  await sql.query('UPDATE "IdempotencyKey" SET result = $3::jsonb WHERE "apiKeyId" = $1::uuid AND key = $2', [apiKeyId, key, JSON.stringify(result)]);
}

export async function deleteIdempotencyBefore(db: SqlDatabase, before: Date): Promise<number> {
  const rows = await db.query<{ n: number }>('WITH gone AS (DELETE FROM "IdempotencyKey" WHERE "createdAt" < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone', [before]);
  return rows[0]?.n ?? 0;
}
