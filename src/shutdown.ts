// Graceful shutdown for the entry points: named steps run in order, each logged, under one deadline.
// A step that hangs is named in the log and the process exits anyway, so a supervisor's SIGTERM
// always ends the process in bounded time.
import { ConfigError } from './config.js';
import { MigrationError } from './db/migrate.js';
import { InstanceLockError } from './embedded/instance-lock.js';
import { EmbeddedPostgresError } from './embedded/postgres.js';
import { EmbeddedS3PortError } from './embedded/s3-server.js';
import type { Logger } from './logger.js';

export type ShutdownStep = [name: string, run: () => Promise<unknown>];

export function onTerminationSignals(logger: Logger, steps: () => ShutdownStep[], options: { timeoutMs?: number } = {}): void {
  const timeoutMs = options.timeoutMs ?? 20_000;
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn('second signal while shutting down; stopping now', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal, timeoutMs });
    let current = 'start';
    const watchdog = setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting', { waitingOn: current, timeoutMs });
      process.exit(1);
    }, timeoutMs);
    for (const [name, run] of steps()) {
      current = name;
      logger.info('shutdown step', { step: name });
      await run().catch((err) => logger.warn('shutdown step failed', { step: name, error: err }));
    }
    clearTimeout(watchdog);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // Started by a wrapper (npm, a shell) that died without passing the signal on: stop rather than
  // live on as an orphan holding the port and the data folder.
  const parent = process.ppid;
  if (parent !== 1) {
    setInterval(() => {
      if (process.ppid !== parent) void shutdown('SIGHUP');
    }, 1000).unref();
  }
}

/** Start-up problems a person can fix (settings, a busy folder or port): one line, no stack. */
const ACTIONABLE = [ConfigError, InstanceLockError, EmbeddedPostgresError, EmbeddedS3PortError, MigrationError];

/** Ends a process whose start failed: a person-readable line for known causes, the stack otherwise. */
export function startupFailure(err: unknown): never {
  let text: string;
  if ((err as NodeJS.ErrnoException)?.code === 'EADDRINUSE') {
    text = `A port is already in use (${(err as Error).message}). Stop the other program or choose another port (PORT, EMBEDDED_S3_PORT).`;
  } else if (ACTIONABLE.some((kind) => err instanceof kind)) {
    text = (err as Error).message;
  } else {
    text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  process.stderr.write(`Failed to start: ${text}\n`);
  process.exit(1);
}
