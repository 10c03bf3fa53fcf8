// Append-only, hash-chained audit log. Every mutation calls append() inside its own transaction,
// so the event commits or rolls back with the change. A transaction-scoped advisory lock
// serialises appends, which keeps the chain linear under concurrency.
import { createHash } from 'node:crypto';
import type { Db } from '../../db/prisma.js';
import { type Sql, SqlDatabase } from '../../db/sql.js';
import type { Prisma } from '../../db/prisma.js';
import { type Actor, actorKeyId, actorLabel, actorRequestId } from '../auth/roles.js';
import type { CheckedAnchor } from './audit-anchor.service.js';
import * as store from './audit.store.js';

export const GENESIS_HASH = '0'.repeat(64);

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

export type ChainBreakKind = 'UNLINKED' | 'ALTERED' | 'ANCHOR_MISMATCH' | 'ANCHORED_EVENT_MISSING' | 'ANCHOR_SIGNATURE_INVALID';

export interface ChainBreak {
  seq: bigint;
  kind: ChainBreakKind;
  reason: string;
}

export interface ChainVerification {
  ok: boolean;
  /** Events verified before the first break (all of them when ok). */
  checked: number;
  /** Events read in all. */
  examined: number;
  firstBrokenSeq: bigint | null;
  reason: string | null;
  /** Every break found, in chain order, at most MAX_REPORTED_BREAKS of them. */
  breaks: ChainBreak[];
  breakCount: number;
  /** The newest anchor with a valid signature, if any: the chain is vouched for up to it. */
  anchor: CheckedAnchor | null;
  anchorsChecked: number;
}

export const MAX_REPORTED_BREAKS = 100;

/** Where verification finds the chain's anchors (audit-anchor.service.ts). */
export interface AnchorSource {
  checkedAnchors(): Promise<CheckedAnchor[]>;
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

/** Events about case work: what admins may see of them is which ids and kinds, never the content. */
const CASE_WORK_ENTITIES = new Set(['Case', 'CaseMember', 'Evidence', 'Prediction', 'Explanation', 'Review', 'CaseExport']);
const CASE_WORK_ACTIONS = /^(case|evidence|prediction|review|explanation)\./;
/** Keys whose values are ids, hashes or kinds (e.g. caseId, evidenceIds, sha256, decision), kept for admins. */
const ID_OR_KIND_KEY = /^(id|ids|kind|status|decision|method|role|sha256)$|Ids?$|Sha256$/;

export function isCaseWork(event: Pick<AuditRecord, 'entityType' | 'action'>): boolean {
  return CASE_WORK_ENTITIES.has(event.entityType) || CASE_WORK_ACTIONS.test(event.action);
}

/**
 * An event as an admin may read it: case work keeps only the ids and kinds in its details (no
 * titles, notes, references, reasons or file names). The stored event and its hash are unchanged.
 */
export function redactCaseContent<T extends Pick<AuditRecord, 'entityType' | 'action' | 'details'>>(event: T): T {
  if (!isCaseWork(event) || event.details === null || typeof event.details !== 'object' || Array.isArray(event.details)) return event;
  const kept = Object.fromEntries(Object.entries(event.details as Record<string, unknown>).filter(([key, value]) => ID_OR_KIND_KEY.test(key) && (typeof value !== 'object' || Array.isArray(value))));
  return { ...event, details: { ...kept, redacted: true } };
}

export class AuditService {
  /** Last hash written by each open transaction (entries vanish with the transaction handles). */
  private readonly chainHeads = new WeakMap<Sql, string>();

  constructor(private readonly db: Db, private readonly anchors?: AnchorSource) {}

  /**
   * Appends an event in the caller's transaction (`sqlOfPrisma(tx)` for a Prisma one). The first
   * append of a transaction takes the chain lock and reads the last hash; later appends in the
   * same transaction continue from the event they wrote.
   */
  append(tx: Sql, actor: Actor, input: AuditInput): Promise<void> {
    return this.appendAll(tx, actor, [input]);
  }

  /** Appends events in this order, in one statement (see append). */
  async appendAll(tx: Sql, actor: Actor, inputs: readonly AuditInput[]): Promise<void> {
    // On the pool the lock would end with the statement and the cached head would go stale.
    if (tx instanceof SqlDatabase) throw new Error('audit events are appended inside a transaction');
    if (inputs.length === 0) return;
    let prevHash = this.chainHeads.get(tx) ?? (await store.lockChainAndReadHead(tx)) ?? GENESIS_HASH;
    const events = inputs.map((input) => {
      const event = {
        createdAt: new Date(),
        actorKeyId: actorKeyId(actor),
        actor: actorLabel(actor),
        action: input.action,
        entityType: input.entityType,
        entityId: input.entityId,
        // The request id ties the event to the server's request log (who, what, when, which request).
        details: normalizeDetails({ ...input.details, requestId: actorRequestId(actor) }),
      };
      const hash = eventHash(prevHash, event);
      const chained = { ...event, prevHash, hash };
      prevHash = hash;
      return chained;
    });
    await store.insertEvents(tx, events);
    this.chainHeads.set(tx, prevHash);
  }

  /** The chain's last event (its head), or null for an empty log. */
  async head(): Promise<{ seq: bigint; hash: string } | null> {
    return store.chainHead(this.db);
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
    const rows = await store.eventsInOrder(this.db, where, page.first + 1);
    return { items: rows.slice(0, page.first), hasMore: rows.length > page.first };
  }

  /**
   * Recomputes every link in order and compares the chain with its signed anchors. Reports every
   * break (up to MAX_REPORTED_BREAKS): an event whose back-link does not match the event before
   * it, an event whose content does not match its hash, an anchored event that differs from its
   * anchor or is gone (a cut tail), and an anchor whose signature is not the server's.
   */
  async verify(batchSize = 1000): Promise<ChainVerification> {
    const anchors = (await this.anchors?.checkedAnchors()) ?? [];
    const breaks: ChainBreak[] = [];
    let breakCount = 0;
    const report = (seq: bigint, kind: ChainBreakKind, reason: string) => {
      breakCount++;
      if (breaks.length < MAX_REPORTED_BREAKS) breaks.push({ seq, kind, reason });
    };
    const valid = anchors.filter((a) => a.signatureValid);
    for (const a of anchors.filter((x) => !x.signatureValid)) {
      report(a.seq, 'ANCHOR_SIGNATURE_INVALID', `the anchor of event ${a.seq} (${a.source === 'table' ? 'AuditAnchor table' : 'object store copy'}) is not signed by this server's key: it was forged, or the key changed`);
    }
    const anchoredAt = new Map<bigint, CheckedAnchor[]>();
    for (const a of valid) anchoredAt.set(a.seq, [...(anchoredAt.get(a.seq) ?? []), a]);

    let prevHash = GENESIS_HASH;
    let examined = 0;
    let checked: number | undefined;
    let lastSeq: bigint | undefined;
    const seen = new Set<bigint>();
    for (;;) {
      const rows = await store.eventsInOrder(this.db, lastSeq !== undefined ? { seq: { gt: lastSeq } } : {}, batchSize);
      for (const row of rows) {
        const before = breakCount;
        if (row.prevHash !== prevHash) report(row.seq, 'UNLINKED', `event ${row.seq} does not link to the event before it (an event was removed or reordered)`);
        if (eventHash(row.prevHash, row) !== row.hash) report(row.seq, 'ALTERED', `event ${row.seq} was altered after it was written (its content does not match its hash)`);
        for (const a of anchoredAt.get(row.seq) ?? []) {
          seen.add(row.seq);
          if (a.hash !== row.hash) report(row.seq, 'ANCHOR_MISMATCH', `event ${row.seq} differs from its anchor of ${a.createdAt.toISOString()} (it, or an event before it, was rewritten and the hashes recomputed)`);
        }
        if (breakCount > before && checked === undefined) checked = examined;
        prevHash = row.hash;
        lastSeq = row.seq;
        examined++;
      }
      if (rows.length < batchSize) break;
    }
    for (const a of valid) {
      if (seen.has(a.seq)) continue;
      const cut = lastSeq === undefined || a.seq > lastSeq;
      report(
        a.seq,
        'ANCHORED_EVENT_MISSING',
        cut
          ? `event ${a.seq}, anchored at ${a.createdAt.toISOString()}, is gone: the chain ends at ${lastSeq ?? 'nothing'} (its tail was cut)`
          : `event ${a.seq}, anchored at ${a.createdAt.toISOString()}, is missing from the chain (it was deleted)`,
      );
    }
    breaks.sort((x, y) => (x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0));
    const first = breaks[0] ?? null;
    const newest = valid.reduce<CheckedAnchor | null>((best, a) => (!best || a.seq > best.seq ? a : best), null);
    return {
      ok: breakCount === 0,
      checked: checked ?? examined,
      examined,
      firstBrokenSeq: first?.seq ?? null,
      reason: first?.reason ?? null,
      breaks,
      breakCount,
      anchor: newest,
      anchorsChecked: anchors.length,
    };
  }
}
