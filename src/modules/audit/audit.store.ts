// Database access of the audit module: the chain's appends (plain SQL, inside the caller's
// transaction), its reads for listing and verification, and its signed anchors (Prisma).
import type { Db, Prisma, Tx } from '../../db/prisma.js';
import { advisoryXactLock, advisoryXactLockStatement, type Sql, sqlOfPrisma } from '../../db/sql.js';
import * as col from '../../db/rows.js';
import type { Row } from '../../db/rows.js';
import type { AuditAnchorRecord } from './audit-anchor.service.js';
import type { AuditRecord } from './audit.service.js';

const AUDIT_LOCK_KEY = 41847101;
const ANCHOR_LOCK_KEY = 41847102;

/**
 * Takes the chain lock (held until the transaction ends) and returns the hash of the last event,
 * if any. Two statements in one round trip: the second starts after the lock is held, so it sees
 * every event committed before (a statement sees what committed before it began).
 */
export async function lockChainAndReadHead(sql: Sql): Promise<string | undefined> {
  const [last] = await sql.script([advisoryXactLockStatement(String(AUDIT_LOCK_KEY)), 'SELECT hash FROM "AuditEvent" ORDER BY seq DESC LIMIT 1']);
  if (last === undefined) return undefined;
  if (typeof last.hash !== 'string') throw new Error('column "hash": expected text');
  return last.hash;
}

const EVENT_COLUMNS = ['"createdAt"', '"actorKeyId"', 'actor', 'action', '"entityType"', '"entityId"', 'details', '"prevHash"', 'hash'];
const EVENT_TYPES = ['', '::uuid', '', '', '', '', '::jsonb', '', ''];

/** Inserts chained events in one statement, in order (their seq follows the order given). */
export async function insertEvents(sql: Sql, events: ReadonlyArray<Omit<AuditRecord, 'seq'>>): Promise<void> {
  const values: unknown[] = [];
  const rows = events.map((e) => {
    const first = values.length;
    values.push(e.createdAt, e.actorKeyId, e.actor, e.action, e.entityType, e.entityId, JSON.stringify(e.details), e.prevHash, e.hash);
    return `(${EVENT_TYPES.map((type, i) => `$${first + i + 1}${type}`).join(', ')})`;
  });
  await sql.query(`INSERT INTO "AuditEvent" (${EVENT_COLUMNS.join(', ')}) VALUES ${rows.join(', ')}`, values);
}

// --- reads (Prisma) ---

export async function chainHead(db: Db | Tx): Promise<{ seq: bigint; hash: string } | null> {
  return db.auditEvent.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
}

/** Events in chain order, after `afterSeq` when given. */
export const eventsInOrder = (db: Db, where: Prisma.AuditEventWhereInput, take: number): Promise<AuditRecord[]> => db.auditEvent.findMany({ where, orderBy: { seq: 'asc' }, take });

// --- anchors ---

/** Serialises anchoring (Prisma transaction). */
export const lockAnchors = (tx: Tx): Promise<void> => advisoryXactLock(sqlOfPrisma(tx), ANCHOR_LOCK_KEY);

const NEWEST_ANCHOR_FIRST = [{ seq: 'desc' as const }, { createdAt: 'desc' as const }];

export const latestAnchor = (db: Db | Tx): Promise<AuditAnchorRecord | null> => db.auditAnchor.findFirst({ orderBy: NEWEST_ANCHOR_FIRST });

export const newestAnchors = (db: Db, first: number): Promise<AuditAnchorRecord[]> => db.auditAnchor.findMany({ orderBy: NEWEST_ANCHOR_FIRST, take: first });

export const anchorsInOrder = (db: Db): Promise<AuditAnchorRecord[]> => db.auditAnchor.findMany({ orderBy: { seq: 'asc' } });

export const createAnchor = (tx: Tx, data: Omit<AuditAnchorRecord, 'id'>): Promise<AuditAnchorRecord> => tx.auditAnchor.create({ data });

/** An audit event read with plain SQL (`seq` may arrive as text or int8). */
export const auditRecordFromRow = (row: Row): AuditRecord => ({
  seq: col.bigint(row, 'seq'),
  createdAt: col.date(row, 'createdAt'),
  actorKeyId: col.textOrNull(row, 'actorKeyId'),
  actor: col.text(row, 'actor'),
  action: col.text(row, 'action'),
  entityType: col.text(row, 'entityType'),
  entityId: col.text(row, 'entityId'),
  details: col.json(row, 'details'),
  prevHash: col.text(row, 'prevHash'),
  hash: col.text(row, 'hash'),
});

