// Plain SQL on either a Prisma interactive transaction or a node-postgres client. The hot write
// paths (uploads, classifications, audit appends) use it: Prisma's per-query overhead (about 1.4 ms
// of CPU per query, several ms per interactive transaction, measured here) dominated the cost of
// classifyImage, while a raw statement costs about 0.3 ms.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Tx } from './prisma.js';

export interface Sql {
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
}

/** Raw SQL inside a Prisma interactive transaction. */
export const sqlOfPrisma = (tx: Tx): Sql => ({
  query: <T>(text: string, values: unknown[] = []) => tx.$queryRawUnsafe<T[]>(text, ...values),
});

/** Raw SQL on a node-postgres client (inside a transaction begun by `SqlDatabase.transaction`). */
export const sqlOfClient = (client: pg.PoolClient): Sql => ({
  query: async <T>(text: string, values: unknown[] = []) => (await client.query(text, values)).rows as T[],
});

/** Accepts either kind of transaction handle. */
export const toSql = (tx: Tx | Sql): Sql => ('query' in tx && typeof tx.query === 'function' ? (tx as Sql) : sqlOfPrisma(tx as Tx));

export const newId = (): string => randomUUID();

/** Transaction-scoped advisory lock on a number, or on a string (hashed to 64 bits). */
export async function advisoryXactLock(sql: Sql, key: number | string): Promise<void> {
  // `SELECT 1 FROM …`: Prisma's raw queries cannot return pg_advisory_xact_lock's void.
  await sql.query(
    typeof key === 'number' ? 'SELECT 1 AS locked FROM pg_advisory_xact_lock($1::bigint)' : 'SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtextextended($1, 0))',
    [key],
  );
}

/** How long to wait for a new database connection before the request counts as an outage. */
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Like advisoryXactLock, but never waits: false when another transaction holds the lock. For
 * work that should answer CONFLICT at once rather than hold a pooled connection while it queues.
 */
export async function tryAdvisoryXactLock(sql: Sql, key: number): Promise<boolean> {
  const [row] = await sql.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [key]);
  return row?.locked === true;
}

/**
 * Prisma could not start (or finish) an interactive transaction in time (P2028): every pooled
 * connection was busy. Under contention that is the caller's race to retry, not a fault.
 */
export const isTransactionTimeout = (err: unknown): boolean => (err as { code?: string })?.code === 'P2028';

/** A node-postgres pool for the hot paths, beside Prisma's own. */
export class SqlDatabase {
  private readonly pool: pg.Pool;

  constructor(databaseUrl: string, max = 10) {
    this.pool = new pg.Pool({ connectionString: databaseUrl, max, application_name: 'eyecase-sql', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    this.pool.on('error', () => undefined); // a broken idle client is dropped; queries report errors
  }

  /** One statement outside a transaction. */
  async query<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(text, values)).rows as T[];
  }

  /**
   * Runs `work` in a transaction on a client of its own. The server may end that connection at any
   * moment (restart, pg_terminate_backend, network): a checked-out client emits 'error' then,
   * which would crash the process without a listener, so one is attached for as long as the
   * client is out, and a broken client is released with its error so the pool destroys it.
   */
  async transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => (broken ??= err);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(sqlOfClient(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (!broken) await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken ??= rollbackErr));
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async end(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * Whether `err` is a unique violation, from Prisma (P2002) or node-postgres (23505); with
 * `constraint`, only that constraint's (node-postgres names it; Prisma's raw errors do not).
 */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  if (e?.code === '23505') return !constraint || e.constraint === constraint;
  return e?.code === 'P2002' && !constraint;
}
