// Offline migration runner for Prisma's layout (prisma/migrations/<stamp>_<name>/migration.sql).
// It writes the same `_prisma_migrations` bookkeeping as `prisma migrate deploy` (checksum =
// SHA-256 of the file), so Prisma's own CLI agrees wherever its engine can be downloaded.
// Each migration runs in its own transaction; a session advisory lock makes concurrent starts safe;
// an applied migration whose file changed since is refused rather than silently ignored.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { sha256Hex } from '../shared/hash.js';
import { PROJECT_ROOT } from '../shared/project-root.js';

export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'prisma', 'migrations');
/** Arbitrary but fixed: the key of the advisory lock held while migrating. */
const MIGRATION_LOCK_KEY = 72707369;

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const sql = await fs.readFile(path.join(dir, name, 'migration.sql'), 'utf8');
    files.push({ name, sql, checksum: sha256Hex(sql) });
  }
  return files;
}

const BOOKKEEPING_DDL = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export async function migrate(databaseUrl: string, options: { dir?: string; log?: (msg: string) => void } = {}): Promise<MigrateResult> {
  const migrations = await readMigrations(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl });
  // A connection ended by the server mid-migration must fail this call (its queries reject), not
  // crash the process through an unhandled 'error' event.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(BOOKKEEPING_DDL);
      const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>(
        'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
      );
      const known = new Map(rows.map((r) => [r.migration_name, r]));
      const result: MigrateResult = { applied: [], alreadyApplied: [] };
      for (const m of migrations) {
        const row = known.get(m.name);
        if (row) {
          if (!row.finished_at) throw new MigrationError(`Migration ${m.name} started earlier but never finished; inspect the database before going on`);
          if (row.checksum !== m.checksum) {
            throw new MigrationError(`Migration ${m.name} was already applied, but its file has changed since (checksum ${row.checksum} in the database, ${m.checksum} on disk). Restore the file and add a new migration instead.`);
          }
          result.alreadyApplied.push(m.name);
          continue;
        }
        await client.query('BEGIN');
        try {
          const started = new Date();
          await client.query(m.sql);
          await client.query(
            `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
             VALUES ($1, $2, now(), $3, NULL, NULL, $4, 1)`,
            [randomUUID(), m.checksum, m.name, started],
          );
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new MigrationError(`Migration ${m.name} failed and was rolled back: ${(err as Error).message}`);
        }
        options.log?.(`applied ${m.name}`);
        result.applied.push(m.name);
      }
      const onDisk = new Set(migrations.map((m) => m.name));
      for (const name of known.keys()) {
        if (!onDisk.has(name)) options.log?.(`warning: migration ${name} is applied in the database but missing on disk`);
      }
      return result;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
