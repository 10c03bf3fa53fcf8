// SQL of idempotent writes (see idempotency.service.ts).
import * as col from '../../db/rows.js';
import type { Sql } from '../../db/sql.js';

export interface StoredIdempotency {
  operation: string;
  requestHash: string;
  result: Record<string, unknown>;
}

export const IDEMPOTENCY_PRIMARY_KEY = 'IdempotencyKey_pkey';

export async function findIdempotency(sql: Sql, apiKeyId: string, key: string): Promise<StoredIdempotency | undefined> {
  const [row] = await sql.query('SELECT operation, "requestHash", result FROM "IdempotencyKey" WHERE "apiKeyId" = $1::uuid AND key = $2', [apiKeyId, key]);
  return row && { operation: col.text(row, 'operation'), requestHash: col.text(row, 'requestHash'), result: col.jsonObject(row, 'result') };
}

/** Takes the key inside the write's transaction; a concurrent request with the same key waits here, then fails on the primary key. */
export async function claimIdempotency(sql: Sql, apiKeyId: string, key: string, operation: string, requestHash: string): Promise<void> {
  await sql.query(`INSERT INTO "IdempotencyKey" ("apiKeyId", key, operation, "requestHash", result) VALUES ($1::uuid, $2, $3, $4, '{}'::jsonb)`, [apiKeyId, key, operation, requestHash]);
}

export async function completeIdempotency(sql: Sql, apiKeyId: string, key: string, result: Record<string, unknown>): Promise<void> {
  await sql.query('UPDATE "IdempotencyKey" SET result = $3::jsonb WHERE "apiKeyId" = $1::uuid AND key = $2', [apiKeyId, key, JSON.stringify(result)]);
}

export async function deleteIdempotencyBefore(sql: Sql, before: Date): Promise<number> {
  const [row] = await sql.query('WITH gone AS (DELETE FROM "IdempotencyKey" WHERE "createdAt" < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone', [before]);
  return col.int(row, 'n');
}
