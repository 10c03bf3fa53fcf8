// Stops what global setup started and drops any database of this run that a failed test left.
import fs from 'node:fs/promises';
import pg from 'pg';

export default async function globalTeardown() {
  await globalThis.__EYECASE_S3__?.close();
  if (process.env.TEST_S3_DIR) await fs.rm(process.env.TEST_S3_DIR, { recursive: true, force: true });

  const embedded = globalThis.__EYECASE_PG__;
  if (embedded) {
    await embedded.db.stop();
    await fs.rm(embedded.dir, { recursive: true, force: true });
    return;
  }
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  try {
    await client.connect();
    const { rows } = await client.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`eyecase_test_${process.env.TEST_RUN_ID}_%`]);
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
