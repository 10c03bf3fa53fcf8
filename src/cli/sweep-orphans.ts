// `npm run sweep-orphans -- [--dry-run] [--grace-minutes N]`: lists (dry run) or deletes objects
// in the object store that no row references and that are older than the grace period (default
// ORPHAN_GRACE_MINUTES, 60). The API server runs the same sweep on a schedule (ORPHAN_SWEEP_CRON).
// Uses the server's settings (DATABASE_URL and S3_*, or the embedded ones under DATA_DIR).
import 'reflect-metadata';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { startRuntime } from '../runtime.js';
import { parseArgs, runCli, usage } from './args.js';

const SPEC = [
  { name: 'dry-run', type: 'boolean' as const, help: 'list the orphans, delete nothing' },
  { name: 'grace-minutes', type: 'number' as const, help: 'only objects older than this (default ORPHAN_GRACE_MINUTES, 60)' },
];

await runCli(async () => {
  const { opts, positionals } = parseArgs(process.argv.slice(2), SPEC);
  if (positionals.length) throw new Error(`unexpected argument ${positionals[0]}`);
  const config = loadConfig();
  const graceMs = opts['grace-minutes'] !== undefined ? Number(opts['grace-minutes']) * 60_000 : config.sweeper.graceMs;
  // Beside a running server on the embedded services, attach to them (as create-admin-key does).
  const runtime = await startRuntime(config, createLogger('warn'), { embedded: 'attach', role: 'command', background: false });
  try {
    const result = await runtime.services.orphans.sweep({ graceMs, dryRun: opts['dry-run'] === true });
    for (const o of result.orphans) process.stdout.write(`${o.kind}\t${o.key}\t${o.size}\t${o.lastModified.toISOString()}\n`);
    const total = result.orphans.reduce((n, o) => n + o.size, 0);
    process.stdout.write(
      `${result.dryRun ? 'dry run: ' : ''}${result.orphans.length} orphan(s), ${total} bytes, among ${Object.values(result.scanned).reduce((a, b) => a + b, 0)} objects` +
        (result.dryRun ? '' : `; deleted ${result.deleted}, kept ${result.kept} (referenced or rewritten meanwhile)`) + '\n',
    );
  } finally {
    await runtime.stop();
  }
}, usage('npm run sweep-orphans --', '[--dry-run] [--grace-minutes N]', SPEC));
