// SQL of the cases module: access checks sit on every path to a case's contents (including the
// classification hot path), so they are single plain statements.
import type { Sql } from '../../db/sql.js';
import type { Case } from '../../generated/prisma/client.js';

/**
 * The case if the key may see it: auditors (`everyCase`) see every case, anybody else only the
 * cases they are members of. `lock` share-locks the row (nothing may close it meanwhile) or
 * locks it for update (membership changes serialise on it).
 */
export async function visibleCase(sql: Sql, caseId: string, keyId: string, everyCase: boolean, lock: '' | 'FOR SHARE' | 'FOR UPDATE' = ''): Promise<Case | undefined> {
  const [row] = await sql.query<Case>(
    `SELECT c.* FROM "Case" c
      WHERE c.id = $1::uuid
        AND ($3::boolean OR EXISTS (SELECT 1 FROM "CaseMember" m WHERE m."caseId" = c.id AND m."apiKeyId" = $2::uuid))
      ${lock ? `${lock} OF c` : ''}`,
    [caseId, keyId, everyCase],
  );
  return row;
}

export async function caseExists(sql: Sql, caseId: string, lock: '' | 'FOR UPDATE' = ''): Promise<Case | undefined> {
  const [row] = await sql.query<Case>(`SELECT * FROM "Case" WHERE id = $1::uuid ${lock}`, [caseId]);
  return row;
}

export interface MemberRow {
  caseId: string;
  apiKeyId: string;
  addedById: string | null;
  createdAt: Date;
}

export function members(sql: Sql, caseId: string): Promise<MemberRow[]> {
  return sql.query<MemberRow>('SELECT * FROM "CaseMember" WHERE "caseId" = $1::uuid ORDER BY "createdAt", "apiKeyId"', [caseId]);
}

export async function insertMember(sql: Sql, caseId: string, apiKeyId: string, addedById: string): Promise<boolean> {
  const rows = await sql.query('INSERT INTO "CaseMember" ("caseId", "apiKeyId", "addedById") VALUES ($1::uuid, $2::uuid, $3::uuid) ON CONFLICT DO NOTHING RETURNING "apiKeyId"', [caseId, apiKeyId, addedById]);
  return rows.length === 1;
}

export async function deleteMember(sql: Sql, caseId: string, apiKeyId: string): Promise<boolean> {
  const rows = await sql.query('DELETE FROM "CaseMember" WHERE "caseId" = $1::uuid AND "apiKeyId" = $2::uuid RETURNING "apiKeyId"', [caseId, apiKeyId]);
  return rows.length === 1;
}

/**
 * The case's audit slice: events about the case itself, its evidence and its predictions, oldest
 * first, from `afterSeq` on, up to `untilSeq` when given.
 */
export function caseAuditSlice(sql: Sql, caseId: string, page: { afterSeq?: bigint; untilSeq?: bigint; limit: number }) {
  return sql.query<{ seq: string; createdAt: Date; actorKeyId: string | null; actor: string; action: string; entityType: string; entityId: string; details: unknown; prevHash: string; hash: string }>(
    `SELECT a.seq::text AS seq, a."createdAt", a."actorKeyId", a.actor, a.action, a."entityType", a."entityId", a.details, a."prevHash", a.hash
       FROM "AuditEvent" a
      WHERE a.seq > $2::bigint AND ($3::bigint IS NULL OR a.seq <= $3::bigint)
        AND (
          (a."entityType" = 'Case' AND a."entityId" = $1::text)
          OR (a."entityType" = 'Evidence' AND a."entityId" IN (SELECT id::text FROM "Evidence" WHERE "caseId" = $1::uuid))
          OR (a."entityType" = 'Prediction' AND a."entityId" IN (SELECT id::text FROM "Prediction" WHERE "caseId" = $1::uuid))
        )
      ORDER BY a.seq
      LIMIT $4`,
    [caseId, (page.afterSeq ?? 0n).toString(), page.untilSeq?.toString() ?? null, page.limit],
  );
}
