// Starts what the whole test run shares: one real S3-protocol server (each test file uses its own
// bucket) and, unless TEST_DATABASE_URL names a server to use, a throwaway embedded PostgreSQL
// (the project's own, from dist/: `npm test` compiles before jest starts). Test files create and
// drop their own databases, named after this run so that teardown can drop any a failure left.
// Plain JavaScript: jest loads global setup outside its TypeScript transform.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';
import pg from 'pg';

export default async function globalSetup() {
  process.env.TEST_RUN_ID = randomBytes(4).toString('hex');

  const s3Dir = await fs.mkdtemp(path.join(os.tmpdir(), 'eyecase-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: s3Dir, silent: true });
  const address = await server.run();
  process.env.TEST_S3_PORT = String(address.port);
  process.env.TEST_S3_DIR = s3Dir;
  globalThis.__EYECASE_S3__ = server;

  if (!process.env.TEST_DATABASE_URL) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'eyecase-test-pg-'));
    await fs.chmod(dir, 0o755); // as root, the database runs as "postgres", which must enter it
    let embedded;
    try {
      embedded = await import('../../dist/src/embedded/postgres.js');
    } catch (err) {
      throw new Error(`The test run starts the project's embedded PostgreSQL from dist/; run the tests with \`npm test\` (it compiles first): ${err.message}`);
    }
    const db = await embedded.startEmbeddedPostgres({ directory: path.join(dir, 'pgdata'), detached: false });
    globalThis.__EYECASE_PG__ = { db, dir };
    process.env.TEST_DATABASE_URL = db.url;
    return;
  }
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`TEST_DATABASE_URL is set but PostgreSQL at it cannot be reached (unset it to use a throwaway embedded one): ${err.message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
