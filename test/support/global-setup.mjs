// Starts one real S3-protocol server for the whole test run (each test file uses its own bucket)
// and checks that PostgreSQL is reachable; test files create their own databases.
// Plain JavaScript: jest loads global setup outside its TypeScript transform.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';
import pg from 'pg';

export default async function globalSetup() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'eyecase-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true });
  const address = await server.run();
  process.env.TEST_S3_PORT = String(address.port);
  process.env.TEST_S3_DIR = dir;
  globalThis.__EYECASE_S3__ = server;

  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
  process.env.TEST_DATABASE_URL = adminUrl;
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`Tests need PostgreSQL at ${adminUrl} (set TEST_DATABASE_URL): ${err.message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
