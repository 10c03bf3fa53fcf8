// Cases: the investigator's unit of work. Every change is audited in the same transaction.
import { randomBytes } from 'node:crypto';
import type { Db, Tx } from '../../db/prisma.js';
import { isUniqueViolation, type Sql, type SqlDatabase, toSql } from '../../db/sql.js';
import type { Prisma } from '../../db/prisma.js';
import type { Case, CaseStatus } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { afterCursorWhere, NEWEST_FIRST, paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, Principal } from '../auth/roles.js';

const REFERENCE_PATTERN = /^[A-Z0-9][A-Z0-9._/-]{2,63}$/;
const REFERENCE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

export function generateReference(now = new Date()): string {
  const bytes = randomBytes(6);
  const suffix = Array.from(bytes, (b) => REFERENCE_ALPHABET[b % REFERENCE_ALPHABET.length]).join('');
  return `CASE-${now.getUTCFullYear()}-${suffix}`;
}

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
        const created = await tx.case.create({ data });
        await this.audit.append(tx, actor, { action: 'case.create', entityType: 'Case', entityId: created.id, details: { reference, title: data.title } });
        return created;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`A case with reference ${reference} already exists`, { reference });
      throw err;
    }
  }

  async update(actor: Principal, id: string, input: { title?: string | null; description?: string | null }): Promise<Case> {
    return this.db.$transaction(async (tx) => {
      const current = await tx.case.findUnique({ where: { id } });
      if (!current) throw notFound('Case', id);
      if (current.status === 'CLOSED') throw conflict(`Case ${current.reference} is closed and can no longer be changed`);
      const data: Prisma.CaseUpdateInput = {};
      if (input.title !== undefined && input.title !== null) data.title = cleanTitle(input.title);
      if (input.description !== undefined) data.description = cleanDescription(input.description);
      if (Object.keys(data).length === 0) throw badInput('Nothing to update: give a title or a description');
      const updated = await tx.case.update({ where: { id }, data });
      await this.audit.append(tx, actor, {
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
      const current = await tx.case.findUnique({ where: { id } });
      if (!current) throw notFound('Case', id);
      if (current.status === 'CLOSED') throw conflict(`Case ${current.reference} is already closed`);
      const updated = await tx.case.update({ where: { id }, data: { status: 'CLOSED', closedAt: new Date() } });
      await this.audit.append(tx, actor, { action: 'case.close', entityType: 'Case', entityId: id, details: { reference: current.reference, reason: reason ?? null } });
      return updated;
    });
  }

  async get(id: string): Promise<Case> {
    const found = await this.db.case.findUnique({ where: { id } });
    if (!found) throw notFound('Case', id);
    return found;
  }

  async getByReference(reference: string): Promise<Case> {
    const found = await this.db.case.findUnique({ where: { reference: reference.trim().toUpperCase() } });
    if (!found) throw notFound('Case with reference', reference);
    return found;
  }

  /**
   * Throws unless the case exists and is open (for anything that adds to a case). Inside a
   * transaction the row is share-locked, so the case cannot be closed before it commits.
   */
  async requireOpen(id: string, tx?: Tx | Sql): Promise<Case> {
    const [found] = tx
      ? await toSql(tx).query<Case>('SELECT * FROM "Case" WHERE id = $1::uuid FOR SHARE', [id])
      : await this.sql.query<Case>('SELECT * FROM "Case" WHERE id = $1::uuid', [id]);
    if (!found) throw notFound('Case', id);
    if (found.status === 'CLOSED') throw conflict(`Case ${found.reference} is closed; reopen is not possible, open a new case`);
    return found;
  }

  list(filter: CaseFilter, page: PageRequest) {
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
    return paginate(page, (take) => this.db.case.findMany({ where: { AND: [where, afterCursorWhere(page.after)] }, orderBy: NEWEST_FIRST, take }));
  }
}

export type { Actor };
