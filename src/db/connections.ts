// Every PostgreSQL connection a process opens is decided here: one application pool shared by
// Prisma and plain SQL, pg-boss's pool, and the event bus's LISTEN connection.
import pg from 'pg';
import { createPrisma, type Db } from './prisma.js';
import { CONNECT_TIMEOUT_MS, SqlDatabase } from './sql.js';

/** api: the server (with its in-process worker and maintenance jobs); worker: `npm run worker`; command: a CLI. */
export type ProcessRole = 'api' | 'worker' | 'command';

export interface ConnectionBudget {
  /** The application pool (Prisma and plain SQL). */
  application: number;
  /** pg-boss's pool (0: the job queue is not started). */
  queue: number;
  /** The event bus's LISTEN connection (0: events stay in the process). */
  listen: number;
  /** The most the process holds at once. */
  total: number;
}

/**
 * The pool sizes of a process. The API's pool serves requests: a classification holds a
 * connection for a few milliseconds, so 10 keep up with far more requests than its event loop
 * can parse. A worker or a command runs one thing at a time. `background` (job queue and event
 * listener) is false for one-shot commands that need neither.
 */
export function connectionBudget(role: ProcessRole, background = true): ConnectionBudget {
  const application = role === 'api' ? 10 : 4;
  const queue = background ? 4 : 0;
  const listen = background ? 1 : 0;
  return { application, queue, listen, total: application + queue + listen };
}

/** The application pool, and both ways of using it. */
export interface Database {
  pool: pg.Pool;
  db: Db;
  sql: SqlDatabase;
  /** Disconnects Prisma, then ends the pool. */
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Sees the text of every statement either driver sends (tests count round trips with it). */
  onQuery?: (text: string) => void;
}

export function openDatabase(databaseUrl: string, size: number, options: DatabaseOptions = {}): Database {
  // Without a connect timeout a request would wait forever for a database that does not answer.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: size, application_name: 'eyecase', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  pool.on('error', () => undefined); // a broken idle client is dropped; queries report errors
  if (options.onQuery) countStatements(pool, options.onQuery);
  const db = createPrisma(pool);
  return {
    pool,
    db,
    sql: new SqlDatabase(pool),
    close: async () => {
      await db.$disconnect();
      await pool.end();
    },
  };
}

/** Reports each statement sent on any client of the pool (pool.query goes through a client too). */
function countStatements(pool: pg.Pool, onQuery: (text: string) => void): void {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0] as string | { text?: string };
      onQuery(typeof first === 'string' ? first : (first?.text ?? ''));
      return query(...args);
    };
  });
}
