// The Prisma client over node-postgres (driver adapter: no query engine binary needed).
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { CONNECT_TIMEOUT_MS } from './sql.js';

export { Prisma, PrismaClient } from '../generated/prisma/client.js';
export type * from '../generated/prisma/client.js';

export type Db = PrismaClient;
/** The client inside an interactive transaction. */
export type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

/** `onQuery` sees every SQL statement (tests count them to prove batching). */
export function createPrisma(databaseUrl: string, options: { max?: number; onQuery?: (sql: string) => void } = {}): PrismaClient {
  // Without a connect timeout a request would wait forever for a database that does not answer.
  // The adapter listens for errors on checked-out clients itself (startTransaction).
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: options.max ?? 10, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  if (!options.onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
  const onQuery = options.onQuery;
  client.$on('query' as never, (e: { query: string }) => onQuery(e.query));
  return client;
}
