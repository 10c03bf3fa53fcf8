// Plain SQL. The hot paths (uploads, classifications, audit appends, case access checks) run on
// node-postgres directly: Prisma's per-query overhead (about 1.4 ms of CPU per query, several ms
// per interactive transaction, measured here) dominated the cost of classifyImage, while a raw
// statement costs about 0.3 ms. Prisma and this helper share one pool (see connections.ts).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Tx } from './prisma.js';
import type { Row } from './rows.js';

/**
 * A plain-SQL executor: the pool (single statements), a node-postgres client inside
 * `SqlDatabase.transaction`, or a Prisma interactive transaction handed over with `sqlOfPrisma`.
 */
export interface Sql {
  /** The rows as the driver returns them: stores convert them with typed mappers (db/rows.ts). */
  query(text: string, values?: unknown[]): Promise<Row[]>;
  /**
   * Statements without parameters, in order; each sees what committed before it began. On
   * node-postgres they travel in one round trip (simple query protocol); Prisma runs them one by
   * one. Returns the rows of the last.
   */
  script(statements: readonly string[]): Promise<Row[]>;
}

const prismaSql = new WeakMap<Tx, Sql>();

/**
 * Plain SQL inside a Prisma interactive transaction (same transaction, same connection): how a
 * Prisma use case calls the functions that join the caller's transaction (audit append, image
 * registration, case visibility). One handle per transaction, so per-transaction state keyed on
 * it (the audit chain head) carries over between calls.
 */
export function sqlOfPrisma(tx: Tx): Sql {
  let sql = prismaSql.get(tx);
  if (!sql) {
    const query = (text: string, values: unknown[] = []) => tx.$queryRawUnsafe<Row[]>(text, ...values);
    sql = {
      query,
      script: async (statements) => {
        let rows: Row[] = [];
        for (const text of statements) rows = await query(text);
        return rows;
      },
    };
    prismaSql.set(tx, sql);
  }
  return sql;
}

/** The rows of the last statement of a (possibly multi-statement) simple query. */
const lastRows = (result: pg.QueryResult<Row> | pg.QueryResult<Row>[]): Row[] => (Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows);

/** Plain SQL on a node-postgres client or pool. */
function sqlOfPg(client: pg.PoolClient | pg.Pool): Sql {
  return {
    query: async (text: string, values: unknown[] = []) => (await client.query<Row>(text, values)).rows,
    // No values: node-postgres sends the text as one simple query, all statements in one round trip.
    script: async (statements) => lastRows((await client.query<Row>(statements.join(';\n'))) as pg.QueryResult<Row> | pg.QueryResult<Row>[]),
  };
}

export const newId = (): string => randomUUID();

/** Transaction-scoped advisory lock on a number, or on a string (hashed to 64 bits). */
export async function advisoryXactLock(sql: Sql, key: number | string): Promise<void> {
  await sql.query(advisoryXactLockStatement(typeof key === 'number' ? '$1::bigint' : 'hashtextextended($1, 0)'), [key]);
}

/**
 * The statement that takes a transaction-scoped advisory lock on `key` (an SQL expression: a
 * placeholder, or a constant for `Sql.script`). `SELECT 1 FROM …`: Prisma's raw queries cannot
 * return pg_advisory_xact_lock's void.
 */
export const advisoryXactLockStatement = (key: string) => `SELECT 1 AS locked FROM pg_advisory_xact_lock(${key})`;

/** How long to wait for a new database connection before the request counts as an outage. */
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Like advisoryXactLock, but never waits: false when another transaction holds the lock. For
 * work that should answer CONFLICT at once rather than hold a pooled connection while it queues.
 */
export async function tryAdvisoryXactLock(sql: Sql, key: number): Promise<boolean> {
  const [row] = await sql.query('SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [key]);
  return row?.locked === true;
}

/**
 * Prisma could not start (or finish) an interactive transaction in time (P2028): every pooled
 * connection was busy. Under contention that is the caller's race to retry, not a fault.
 */
export const isTransactionTimeout = (err: unknown): boolean => (err as { code?: string })?.code === 'P2028';

/**
 * Plain SQL on the process's pool (the one Prisma uses too). As an `Sql` it runs single statements
 * outside any transaction; `transaction` hands its work an `Sql` bound to one client.
 */
export class SqlDatabase implements Sql {
  private readonly pooled: Sql;

  constructor(private readonly pool: pg.Pool) {
    this.pooled = sqlOfPg(pool);
  }

  /** One statement outside a transaction. */
  query(text: string, values: unknown[] = []): Promise<Row[]> {
    return this.pooled.query(text, values);
  }

  script(statements: readonly string[]): Promise<Row[]> {
    return this.pooled.script(statements);
  }

  /**
   * Runs `work` in a transaction on a client of its own; `tx` is that transaction. The server may
   * end the connection at any moment (restart, pg_terminate_backend, network): a checked-out
   * client emits 'error' then, which would crash the process without a listener, so one is
   * attached for as long as the client is out, and a broken client is released with its error so
   * the pool destroys it.
   */
  async transaction<T>(work: (tx: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => (broken ??= err);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(sqlOfPg(client));
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
