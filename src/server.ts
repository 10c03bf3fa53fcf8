// API server entry point (`npm start`). Without DATABASE_URL / S3_ENDPOINT it runs embedded
// PostgreSQL and S3 servers under ./.data, so a fresh clone starts with Node.js alone.
import 'reflect-metadata';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import fs from 'node:fs';
import { ensureFirstAdminKey, printKeyBanner } from './modules/auth/bootstrap.js';
import { startTrainingWorker } from './modules/training/start-worker.js';
import { startRuntime } from './runtime.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { process: 'api' });
  const runtime = await startRuntime(config, logger);
  const { services } = runtime;
  const firstKey = await ensureFirstAdminKey(services);
  if (firstKey) printKeyBanner(firstKey, 'No admin key existed, so one was created for you:');
  if (fs.existsSync(config.baselineModelPath)) await services.registry.ensureBaseline(config.baselineModelPath);
  else logger.warn('no bundled baseline model found; classification waits for a promoted model', { path: config.baselineModelPath });
  await services.serving.start();
  const runner = config.inProcessWorker ? await startTrainingWorker(services) : undefined;
  const app = await createApp(services);
  logger.info('GraphQL API ready', { url: `http://localhost:${config.port}/graphql` });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    await app.stop();
    logger.debug('http server stopped');
    await runner?.stop();
    logger.debug('training worker stopped');
    await runtime.stop();
    logger.debug('runtime stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`Failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
