import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

async function copyMigrations(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'migrations-'));
  await fs.cp(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

describe('offline migration runner', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase({ migrate: false });
  });
  afterEach(() => db.drop());

  it('applies every migration once, with Prisma-compatible bookkeeping, and is idempotent', async () => {
    const files = await readMigrations();
    const first = await migrate(db.url);
    expect(first.applied).toEqual(files.map((f) => f.name));
    const second = await migrate(db.url);
    expect(second).toEqual({ applied: [], alreadyApplied: files.map((f) => f.name) });

    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      db.url,
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows.map((r) => [r.migration_name, r.checksum])).toEqual(files.map((f) => [f.name, f.checksum]));
    expect(rows.every((r) => r.finished_at !== null && r.applied_steps_count === 1)).toBe(true);
  });

  it('is safe when several processes start at once', async () => {
    const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)]);
    const appliedCounts = results.map((r) => r.applied.length).sort();
    const total = (await readMigrations()).length;
    expect(appliedCounts).toEqual([0, 0, total]);
    const [{ count }] = await query<{ count: string }>(db.url, 'SELECT count(*) FROM "_prisma_migrations"');
    expect(Number(count)).toBe(total);
  });

  it('refuses to run when an applied migration file has changed', async () => {
    const dir = await copyMigrations();
    await migrate(db.url, { dir });
    const [first] = await readMigrations(dir);
    await fs.appendFile(path.join(dir, first.name, 'migration.sql'), '\n-- edited afterwards\n');
    await expect(migrate(db.url, { dir })).rejects.toThrow(/already applied, but its file has changed/);
    await fs.rm(dir, { recursive: true });
  });

  it('rolls back a failing migration completely and records nothing for it', async () => {
    const dir = await copyMigrations();
    await fs.mkdir(path.join(dir, '99990101000000_broken'));
    await fs.writeFile(path.join(dir, '99990101000000_broken', 'migration.sql'), 'CREATE TABLE "Half" (id int);\nSELECT * FROM "does_not_exist";\n');
    await expect(migrate(db.url, { dir })).rejects.toThrow(/99990101000000_broken failed and was rolled back/);
    const tables = await query<{ table_name: string }>(db.url, `SELECT table_name FROM information_schema.tables WHERE table_name = 'Half'`);
    expect(tables).toEqual([]);
    const names = await query<{ migration_name: string }>(db.url, 'SELECT migration_name FROM "_prisma_migrations"');
    expect(names.map((n) => n.migration_name)).not.toContain('99990101000000_broken');
    await fs.rm(dir, { recursive: true });
  });
});
