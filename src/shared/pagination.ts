// Keyset (cursor) pagination over (createdAt, id), newest first. The cursor is opaque to clients.
import { badInput } from '../errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

export interface PageRequest {
  first?: number | null;
  after?: string | null;
}

export interface Page<T> {
  nodes: T[];
  endCursor: string | null;
  hasNextPage: boolean;
}

interface Keyed {
  id: string;
  createdAt: Date;
}

export function encodeCursor(row: Keyed): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString('base64url');
}

export function decodeCursor(cursor: string): Keyed {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    // Only dates PostgreSQL can compare (a hand-made cursor may say year -100000) and UUID ids.
    const year = date.getUTCFullYear();
    if (typeof id !== 'string' || !UUID.test(id) || Number.isNaN(date.getTime()) || year < 1970 || year > 9999) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw badInput('The cursor is not valid; pass the endCursor of a previous page');
  }
}

export function pageSize(first: number | null | undefined): number {
  if (first === undefined || first === null) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`);
  return first;
}

/** Prisma `where` fragment selecting rows after the cursor in (createdAt desc, id desc) order. */
export function afterCursorWhere(after: string | null | undefined) {
  if (!after) return {};
  const c = decodeCursor(after);
  return { OR: [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }] };
}

export const NEWEST_FIRST = [{ createdAt: 'desc' as const }, { id: 'desc' as const }];

/** Fetches one page with `fetch(take)` (which must apply afterCursorWhere and NEWEST_FIRST). */
export async function paginate<T extends Keyed>(req: PageRequest, fetch: (take: number) => Promise<T[]>): Promise<Page<T>> {
  const size = pageSize(req.first);
  const rows = await fetch(size + 1);
  const nodes = rows.slice(0, size);
  return { nodes, hasNextPage: rows.length > size, endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1]) : null };
}
