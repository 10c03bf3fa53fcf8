// The Prisma client over node-postgres (driver adapter: no query engine binary needed), on the
// process's one pool (see connections.ts).
import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export { Prisma, PrismaClient } from '../generated/prisma/client.js';
export type * from '../generated/prisma/client.js';

export type Db = PrismaClient;
/** The client inside an interactive transaction. */
export type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

/**
 * Prisma on `pool`. Its `$disconnect` leaves the pool open: whoever made the pool ends it. The
 * adapter listens for errors on the clients it checks out itself (startTransaction).
 */
export function createPrisma(pool: pg.Pool): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg(pool) });
}
