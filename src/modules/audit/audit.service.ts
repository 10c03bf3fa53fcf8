// Append-only, hash-chained audit log. Every mutation calls append() inside its own transaction,
// so the event commits or rolls back with the change. A transaction-scoped advisory lock
// serialises appends, which keeps the chain linear under concurrency.
import { createHash } from 'node:crypto';
import type { Db, Tx } from '../../db/prisma.js';
import { advisoryXactLock, type Sql, toSql } from '../../db/sql.js';
import type { Prisma } from '../../db/prisma.js';
import { type Actor, actorKeyId, actorLabel } from '../auth/roles.js';

export const GENESIS_HASH = '0'.repeat(64);
const AUDIT_LOCK_KEY = 41847101;

export interface AuditInput {
  action: string;
  entityType: string;
  entityId: string;
  details?: Record<string, unknown>;
}

export interface AuditRecord {
  seq: bigint;
  createdAt: Date;
  actorKeyId: string | null;
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  details: unknown;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  actorKeyId?: string;
  entityType?: string;
  entityId?: string;
  action?: string;
  from?: Date;
  to?: Date;
}

export interface ChainVerification {
  ok: boolean;
  checked: number;
  firstBrokenSeq: bigint | null;
  reason: string | null;
}

/** JSON with object keys sorted at every level: jsonb does not keep key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function eventHash(prevHash: string, e: Omit<AuditRecord, 'seq' | 'prevHash' | 'hash'>): string {
  const body = canonicalJson({
    createdAt: e.createdAt.toISOString(),
    actorKeyId: e.actorKeyId,
    actor: e.actor,
    action: e.action,
    entityType: e.entityType,
    entityId: e.entityId,
    details: e.details ?? {},
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** Round-trips details through JSON so that what is hashed is exactly what jsonb will return. */
const normalizeDetails = (details: Record<string, unknown> | undefined): Record<string, unknown> =>
  JSON.parse(JSON.stringify(details ?? {}, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));

export class AuditService {
  /** Last hash written by each open transaction (entries vanish with the transaction objects). */
  private readonly chainHeads = new WeakMap<object, string>();

  constructor(private readonly db: Db) {}

  /**
   * Appends an event in the caller's transaction (a Prisma transaction or a raw one). The first
   * append of a transaction takes the chain lock and reads the last hash; later appends in the
   * same transaction continue from the event they wrote.
   */
  async append(tx: Tx | Sql, actor: Actor, input: AuditInput): Promise<void> {
    const sql = toSql(tx);
    let prevHash = this.chainHeads.get(tx);
    if (prevHash === undefined) {
      await advisoryXactLock(sql, AUDIT_LOCK_KEY);
      const [last] = await sql.query<{ hash: string }>('SELECT hash FROM "AuditEvent" ORDER BY seq DESC LIMIT 1');
      prevHash = last?.hash ?? GENESIS_HASH;
    }
    const event = {
      createdAt: new Date(),
      actorKeyId: actorKeyId(actor),
      actor: actorLabel(actor),
      action: input.action,
      entityType: input.entityType,
      entityId: input.entityId,
      details: normalizeDetails(input.details),
    };
    const hash = eventHash(prevHash, event);
    await sql.query(
      `INSERT INTO "AuditEvent" ("createdAt", "actorKeyId", actor, action, "entityType", "entityId", details, "prevHash", hash)
       VALUES ($1, $2::uuid, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
      [event.createdAt, event.actorKeyId, event.actor, event.action, event.entityType, event.entityId, JSON.stringify(event.details), prevHash, hash],
    );
    this.chainHeads.set(tx, hash);
  }

  async list(filter: AuditFilter, page: { after?: bigint; first: number }): Promise<{ items: AuditRecord[]; hasMore: boolean }> {
    const where: Prisma.AuditEventWhereInput = {
      actorKeyId: filter.actorKeyId,
      entityType: filter.entityType,
      entityId: filter.entityId,
      action: filter.action,
      createdAt: filter.from || filter.to ? { gte: filter.from, lt: filter.to } : undefined,
      seq: page.after !== undefined ? { gt: page.after } : undefined,
    };
    const rows = await this.db.auditEvent.findMany({ where, orderBy: { seq: 'asc' }, take: page.first + 1 });
    return { items: rows.slice(0, page.first), hasMore: rows.length > page.first };
  }

  /** Recomputes every link in order; reports the first event whose hash or back-link is wrong. */
  async verify(batchSize = 1000): Promise<ChainVerification> {
    let prevHash = GENESIS_HASH;
    let checked = 0;
    let after: bigint | undefined;
    for (;;) {
      const rows = await this.db.auditEvent.findMany({
        where: after !== undefined ? { seq: { gt: after } } : undefined,
        orderBy: { seq: 'asc' },
        take: batchSize,
      });
      for (const row of rows) {
        if (row.prevHash !== prevHash) {
          return { ok: false, checked, firstBrokenSeq: row.seq, reason: `event ${row.seq} does not link to the event before it (an event was removed or reordered)` };
        }
        if (eventHash(prevHash, row) !== row.hash) {
          return { ok: false, checked, firstBrokenSeq: row.seq, reason: `event ${row.seq} was altered after it was written (its content does not match its hash)` };
        }
        prevHash = row.hash;
        checked++;
      }
      if (rows.length < batchSize) return { ok: true, checked, firstBrokenSeq: null, reason: null };
      after = rows[rows.length - 1].seq;
    }
  }
}
