// Database access of the cases module. Access checks sit on every path to a case's contents
// (including the classification hot path), so they are single plain statements; the cold admin
// paths (create, update, close, list) use Prisma.
import type { Db, Prisma, Tx } from '../../db/prisma.js';
import * as col from '../../db/rows.js';
import type { Row } from '../../db/rows.js';
import type { Sql } from '../../db/sql.js';
import type { Case } from '../../generated/prisma/client.js';
import { auditRecordFromRow } from '../audit/audit.store.js';
import type { AuditRecord } from '../audit/audit.service.js';

const CASE_STATUSES = ['OPEN', 'CLOSED'] as const;

/** The columns caseFromRow reads, of the case aliased `c`. */
export const CASE_COLUMNS = 'c.id, c.reference, c.title, c.description, c.status, c."createdAt", c."updatedAt", c."closedAt", c."createdById"';

export function caseFromRow(row: Row): Case {
  return {
    id: col.text(row, 'id'),
    reference: col.text(row, 'reference'),
    title: col.text(row, 'title'),
    description: col.textOrNull(row, 'description'),
    status: col.oneOf(row, 'status', CASE_STATUSES),
    createdAt: col.date(row, 'createdAt'),
    updatedAt: col.date(row, 'updatedAt'),
    closedAt: col.dateOrNull(row, 'closedAt'),
    createdById: col.text(row, 'createdById'),
  };
}

/**
 * SQL condition: the key may see the case aliased `alias` (the one visibility rule, for every
 * statement that reads case contents). `everyCase` and `keyId` are placeholders (e.g. '$3', '$2').
 */
export const visibleToKeySql = (alias: string, keyId: string, everyCase: string) =>
  `(${everyCase}::boolean OR EXISTS (SELECT 1 FROM "CaseMember" m WHERE m."caseId" = ${alias}.id AND m."apiKeyId" = ${keyId}::uuid))`;

/** The same rule as a Prisma filter on cases. */
export const visibleToKeyWhere = (keyId: string, everyCase: boolean): Prisma.CaseWhereInput => (everyCase ? {} : { members: { some: { apiKeyId: keyId } } });

/**
 * The case if the key may see it: auditors (`everyCase`) see every case, anybody else only the
 * cases they are members of. `lock` share-locks the row (nothing may close it meanwhile) or
 * locks it for update (membership changes serialise on it).
 */
export async function visibleCase(sql: Sql, caseId: string, keyId: string, everyCase: boolean, lock: '' | 'FOR SHARE' | 'FOR UPDATE' = ''): Promise<Case | undefined> {
  const [row] = await sql.query(`SELECT ${CASE_COLUMNS} FROM "Case" c WHERE c.id = $1::uuid AND ${visibleToKeySql('c', '$2', '$3')} ${lock ? `${lock} OF c` : ''}`, [caseId, keyId, everyCase]);
  return row && caseFromRow(row);
}

export async function caseExists(sql: Sql, caseId: string, lock: '' | 'FOR UPDATE' = ''): Promise<Case | undefined> {
  const [row] = await sql.query(`SELECT ${CASE_COLUMNS} FROM "Case" c WHERE c.id = $1::uuid ${lock}`, [caseId]);
  return row && caseFromRow(row);
}

// --- Prisma: the cold paths ---

/** Creates the case with its creator as the first member. */
export async function createCase(tx: Tx, data: { reference: string; title: string; description: string | null; createdById: string }): Promise<Case> {
  const created = await tx.case.create({ data });
  await tx.caseMember.create({ data: { caseId: created.id, apiKeyId: data.createdById, addedById: data.createdById } });
  return created;
}

export const updateCase = (tx: Tx, id: string, data: Prisma.CaseUpdateInput): Promise<Case> => tx.case.update({ where: { id }, data });

export const caseByReference = (db: Db, reference: string, visible: Prisma.CaseWhereInput): Promise<Case | null> => db.case.findFirst({ where: { reference, ...visible } });

/** A page of cases, newest first; `where` holds the filter, the visibility rule and the cursor. */
export const listCases = (db: Db, where: Prisma.CaseWhereInput[], orderBy: Prisma.CaseOrderByWithRelationInput[], take: number): Promise<Case[]> =>
  db.case.findMany({ where: { AND: where }, orderBy, take });

// --- membership ---

export interface MemberRow {
  caseId: string;
  apiKeyId: string;
  addedById: string | null;
  createdAt: Date;
}

const memberFromRow = (row: Row): MemberRow => ({
  caseId: col.text(row, 'caseId'),
  apiKeyId: col.text(row, 'apiKeyId'),
  addedById: col.textOrNull(row, 'addedById'),
  createdAt: col.date(row, 'createdAt'),
});

export async function members(sql: Sql, caseId: string): Promise<MemberRow[]> {
  const rows = await sql.query('SELECT "caseId", "apiKeyId", "addedById", "createdAt" FROM "CaseMember" WHERE "caseId" = $1::uuid ORDER BY "createdAt", "apiKeyId"', [caseId]);
  return rows.map(memberFromRow);
}

/** The key that would join a case: what the membership rules look at. */
export interface MemberCandidate {
  id: string;
  name: string;
  role: string;
  revokedAt: Date | null;
}

export async function memberCandidate(sql: Sql, apiKeyId: string): Promise<MemberCandidate | undefined> {
  const [row] = await sql.query('SELECT id, name, role, "revokedAt" FROM "ApiKey" WHERE id = $1::uuid', [apiKeyId]);
  return row && { id: col.text(row, 'id'), name: col.text(row, 'name'), role: col.text(row, 'role'), revokedAt: col.dateOrNull(row, 'revokedAt') };
}

export async function insertMember(sql: Sql, caseId: string, apiKeyId: string, addedById: string): Promise<boolean> {
  const rows = await sql.query('INSERT INTO "CaseMember" ("caseId", "apiKeyId", "addedById") VALUES ($1::uuid, $2::uuid, $3::uuid) ON CONFLICT DO NOTHING RETURNING "apiKeyId"', [caseId, apiKeyId, addedById]);
  return rows.length === 1;
}

export async function deleteMember(sql: Sql, caseId: string, apiKeyId: string): Promise<boolean> {
  const rows = await sql.query('DELETE FROM "CaseMember" WHERE "caseId" = $1::uuid AND "apiKeyId" = $2::uuid RETURNING "apiKeyId"', [caseId, apiKeyId]);
  return rows.length === 1;
}

// --- the case's audit trail ---

/**
 * The case's audit slice: events about the case itself, its evidence and its predictions, oldest
 * first, from `afterSeq` on, up to `untilSeq` when given.
 */
export async function caseAuditSlice(sql: Sql, caseId: string, page: { afterSeq?: bigint; untilSeq?: bigint; limit: number }): Promise<AuditRecord[]> {
  const rows = await sql.query(
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
  return rows.map(auditRecordFromRow);
}

/** Cases by id, for the per-request loader (visibility was checked on the way to them). */
export function casesByIds(db: Db, ids: string[]): Promise<Case[]> {
  return db.case.findMany({ where: { id: { in: ids } } });
}
