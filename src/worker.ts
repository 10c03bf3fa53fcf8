// Training worker entry point (`npm run worker`). Takes training jobs from the PostgreSQL queue;
// run several (on several GPU machines) against the same DATABASE_URL and S3_* settings.
import 'reflect-metadata';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startTrainingWorker } from './modules/training/start-worker.js';
import { startRuntime } from './runtime.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { process: 'worker' });
  if (!config.databaseUrl) {
    logger.warn('DATABASE_URL is not set: this worker uses its own embedded database, which no API server shares. `npm start` already runs a worker in-process.');
  }
  const runtime = await startRuntime(config, logger);
  const runner = await startTrainingWorker(runtime.services);
  const shutdown = async (signal: string) => {
    logger.info('worker shutting down', { signal });
    await runner.stop();
    await runtime.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`Worker failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
