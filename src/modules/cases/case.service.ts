// Cases: the investigator's unit of work. Every change is audited in the same transaction.
// A case is visible to its members (creator and investigators added to it) and to auditors; to
// anybody else it answers NOT_FOUND exactly as a case that does not exist.
import { randomBytes } from 'node:crypto';
import type { Db } from '../../db/prisma.js';
import { isUniqueViolation, type Sql, type SqlDatabase, sqlOfPrisma } from '../../db/sql.js';
import type { Prisma } from '../../db/prisma.js';
import type { Case, CaseStatus } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { afterCursorWhere, NEWEST_FIRST, paginate, pageSize, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import { type Actor, type Principal, readsEveryCase } from '../auth/roles.js';
import * as store from './case.store.js';

const REFERENCE_PATTERN = /^[A-Z0-9][A-Z0-9._/-]{2,63}$/;
const REFERENCE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function generateReference(now = new Date()): string {
  const bytes = randomBytes(6);
  const suffix = Array.from(bytes, (b) => REFERENCE_ALPHABET[b % REFERENCE_ALPHABET.length]).join('');
  return `CASE-${now.getUTCFullYear()}-${suffix}`;
}

/** Adding to a closed case. */
export const closedCaseError = (reference: string) => conflict(`Case ${reference} is closed; reopen is not possible, open a new case`);

export interface CaseInput {
  reference?: string | null;
  title: string;
  description?: string | null;
}

export interface CaseFilter {
  status?: CaseStatus | null;
  text?: string | null;
}

function cleanTitle(title: string | undefined | null): string {
  const t = (title ?? '').trim();
  if (!t) throw badInput('A case needs a title');
  if (t.length > 200) throw badInput('The title must be at most 200 characters');
  return t;
}

function cleanDescription(description: string | undefined | null): string | null {
  const d = description?.trim() ?? '';
  if (d.length > 10_000) throw badInput('The description must be at most 10000 characters');
  return d || null;
}

export class CaseService {
  constructor(private readonly db: Db, private readonly sql: SqlDatabase, private readonly audit: AuditService) {}

  async create(actor: Principal, input: CaseInput): Promise<Case> {
    const reference = input.reference?.trim().toUpperCase() || generateReference();
    if (!REFERENCE_PATTERN.test(reference)) {
      throw badInput('A case reference is 3 to 64 characters: letters, digits and . _ / - (e.g. CASE-2026-0042)');
    }
    const data = { reference, title: cleanTitle(input.title), description: cleanDescription(input.description), createdById: actor.keyId };
    try {
      return await this.db.$transaction(async (tx) => {
        // The creator is the first member: nobody else sees the case until a member or an admin adds them.
        const created = await store.createCase(tx, data);
        await this.audit.append(sqlOfPrisma(tx), actor, { action: 'case.create', entityType: 'Case', entityId: created.id, details: { reference, title: data.title } });
        return created;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`A case with reference ${reference} already exists`, { reference });
      throw err;
    }
  }

  async update(actor: Principal, id: string, input: { title?: string | null; description?: string | null }): Promise<Case> {
    return this.db.$transaction(async (tx) => {
      const current = await this.requireVisible(actor, id, sqlOfPrisma(tx), 'FOR UPDATE');
      if (current.status === 'CLOSED') throw conflict(`Case ${current.reference} is closed and can no longer be changed`);
      const data: Prisma.CaseUpdateInput = {};
      if (input.title !== undefined && input.title !== null) data.title = cleanTitle(input.title);
      if (input.description !== undefined) data.description = cleanDescription(input.description);
      if (Object.keys(data).length === 0) throw badInput('Nothing to update: give a title or a description');
      const updated = await store.updateCase(tx, id, data);
      await this.audit.append(sqlOfPrisma(tx), actor, {
        action: 'case.update',
        entityType: 'Case',
        entityId: id,
        details: { before: { title: current.title, description: current.description }, after: { title: updated.title, description: updated.description } },
      });
      return updated;
    });
  }

  async close(actor: Principal, id: string, reason?: string | null): Promise<Case> {
    return this.db.$transaction(async (tx) => {
      const current = await this.requireVisible(actor, id, sqlOfPrisma(tx), 'FOR UPDATE');
      if (current.status === 'CLOSED') throw conflict(`Case ${current.reference} is already closed`);
      const updated = await store.updateCase(tx, id, { status: 'CLOSED', closedAt: new Date() });
      await this.audit.append(sqlOfPrisma(tx), actor, { action: 'case.close', entityType: 'Case', entityId: id, details: { reference: current.reference, reason: reason ?? null } });
      return updated;
    });
  }

  /** The case, if the caller may see it; NOT_FOUND otherwise (also for a case that does not exist). */
  get(actor: Principal, id: string): Promise<Case> {
    return this.requireVisible(actor, id);
  }

  async getByReference(actor: Principal, reference: string): Promise<Case> {
    const found = await store.caseByReference(this.db, reference.trim().toUpperCase(), store.visibleToKeyWhere(actor.keyId, readsEveryCase(actor)));
    if (!found) throw notFound('Case with reference', reference);
    return found;
  }

  /**
   * Throws NOT_FOUND unless the case exists and the caller may see it. With `tx` (the caller's
   * transaction) the row can be locked.
   */
  async requireVisible(actor: Principal, id: string, tx?: Sql, lock: '' | 'FOR SHARE' | 'FOR UPDATE' = ''): Promise<Case> {
    const found = await store.visibleCase(tx ?? this.sql, id, actor.keyId, readsEveryCase(actor), tx ? lock : '');
    if (!found) throw notFound('Case', id);
    return found;
  }

  async canSee(actor: Principal, id: string): Promise<boolean> {
    return !!(await store.visibleCase(this.sql, id, actor.keyId, readsEveryCase(actor)));
  }

  /**
   * Throws unless the caller may see the case and it is open (for anything that adds to a case).
   * Inside a transaction the row is share-locked, so the case cannot be closed before it commits.
   */
  async requireOpen(actor: Principal, id: string, tx?: Sql): Promise<Case> {
    const found = await this.requireVisible(actor, id, tx, 'FOR SHARE');
    if (found.status === 'CLOSED') throw closedCaseError(found.reference);
    return found;
  }

  list(actor: Principal, filter: CaseFilter, page: PageRequest) {
    // Searched for as typed: LIKE's wildcards (and its escape character) match themselves.
    const text = filter.text?.trim().replace(/[\\%_]/g, (c) => `\\${c}`);
    const where: Prisma.CaseWhereInput = {
      status: filter.status ?? undefined,
      ...(text
        ? {
            OR: [
              { reference: { contains: text, mode: 'insensitive' } },
              { title: { contains: text, mode: 'insensitive' } },
              { description: { contains: text, mode: 'insensitive' } },
            ],
          }
        : {}),
    };
    return paginate(page, (take) => store.listCases(this.db, [where, store.visibleToKeyWhere(actor.keyId, readsEveryCase(actor)), afterCursorWhere(page.after)], NEWEST_FIRST, take));
  }

  // --- membership: managed by the case's members and by admins (who never see its contents) ---

  async members(actor: Principal, caseId: string): Promise<store.MemberRow[]> {
    await this.requireManageable(actor, caseId, this.sql);
    return store.members(this.sql, caseId);
  }

  async addMember(actor: Principal, caseId: string, apiKeyId: string): Promise<store.MemberRow[]> {
    return this.sql.transaction(async (sql) => {
      await this.requireManageable(actor, caseId, sql, 'FOR UPDATE');
      const key = await store.memberCandidate(sql, apiKeyId);
      if (!key) throw notFound('ApiKey', apiKeyId);
      if (key.revokedAt) throw badInput(`Key ${key.name} is revoked and cannot join a case`);
      if (key.role !== 'INVESTIGATOR') {
        throw badInput(`Only INVESTIGATOR keys are case members; ${key.name} is ${key.role === 'AUDITOR' ? 'an AUDITOR (auditors read every case already)' : 'an ADMIN (admins manage membership but never see case contents)'}`);
      }
      if (!(await store.insertMember(sql, caseId, apiKeyId, actor.keyId))) throw conflict(`${key.name} is already a member of this case`);
      await this.audit.append(sql, actor, { action: 'case.member.add', entityType: 'Case', entityId: caseId, details: { apiKeyId, keyName: key.name } });
      return store.members(sql, caseId);
    });
  }

  async removeMember(actor: Principal, caseId: string, apiKeyId: string): Promise<store.MemberRow[]> {
    return this.sql.transaction(async (sql) => {
      await this.requireManageable(actor, caseId, sql, 'FOR UPDATE');
      const before = await store.members(sql, caseId);
      if (!before.some((m) => m.apiKeyId === apiKeyId)) throw notFound('Member of this case', apiKeyId);
      if (before.length === 1) throw conflict('A case keeps at least one member: add another investigator before removing the last one');
      await store.deleteMember(sql, caseId, apiKeyId);
      await this.audit.append(sql, actor, { action: 'case.member.remove', entityType: 'Case', entityId: caseId, details: { apiKeyId } });
      return store.members(sql, caseId);
    });
  }

  /** Admins manage the membership of any case; investigators only of the cases they belong to. */
  private async requireManageable(actor: Principal, caseId: string, sql: Sql, lock: '' | 'FOR UPDATE' = ''): Promise<void> {
    const found = actor.role === 'ADMIN' ? await store.caseExists(sql, caseId, lock) : await store.visibleCase(sql, caseId, actor.keyId, readsEveryCase(actor), lock);
    if (!found) throw notFound('Case', caseId);
  }

  /** Everything that happened to the case and its evidence and predictions, oldest first. */
  async timeline(actor: Principal, caseId: string, page: { first?: number | null; after?: bigint }) {
    await this.requireVisible(actor, caseId);
    const limit = pageSize(page.first);
    const rows = await store.caseAuditSlice(this.sql, caseId, { afterSeq: page.after, limit: limit + 1 });
    return { items: rows.slice(0, limit), hasMore: rows.length > limit };
  }
}
