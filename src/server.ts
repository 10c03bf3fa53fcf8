// API server entry point (`npm start`). Without DATABASE_URL / S3_ENDPOINT it runs embedded
// PostgreSQL and S3 servers under DATA_DIR (./.data), so a fresh clone starts with Node.js alone.
import 'reflect-metadata';
import fs from 'node:fs';
import { createApp, type RunningApp } from './app.js';
import { loadConfig } from './config.js';
import { startMaintenance } from './jobs/maintenance.js';
import { createLogger } from './logger.js';
import { ensureFirstAdminKey, printKeyBanner } from './modules/auth/bootstrap.js';
import { startTrainingWorker } from './modules/training/start-worker.js';
import type { TrainingRunner } from './modules/training/training-runner.js';
import { type Runtime, startRuntime } from './runtime.js';
import { onTerminationSignals, startupFailure } from './shutdown.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { process: 'api' });
  let runtime: Runtime | undefined;
  let runner: TrainingRunner | undefined;
  let app: RunningApp | undefined;
  let stopMaintenance: (() => Promise<void>) | undefined;
  // Registered first, so that a signal during start-up also stops what has started so far.
  onTerminationSignals(logger, () => [
    ['http server (drains requests)', async () => app?.stop()],
    ['maintenance schedules (audit anchor, orphan sweep)', async () => stopMaintenance?.()],
    ['training worker (hands its run back)', async () => runner?.stop()],
    ['services, database and object store', async () => runtime?.stop()],
  ]);
  try {
    runtime = await startRuntime(config, logger);
    const { services } = runtime;
    const firstKey = await ensureFirstAdminKey(services);
    if (firstKey) printKeyBanner(firstKey, 'No admin key existed, so one was created for you:');
    else logger.info('admin keys exist (each is shown only when made); make another with `npm run create-admin-key`, also while the server runs');
    if (fs.existsSync(config.baselineModelPath)) await services.registry.ensureBaseline(config.baselineModelPath);
    else logger.warn('no bundled baseline model found; classification waits for a promoted model', { path: config.baselineModelPath });
    await services.serving.start();
    runner = config.inProcessWorker ? await startTrainingWorker(services) : undefined;
    stopMaintenance = await startMaintenance(services);
    app = await createApp(services);
    logger.info('GraphQL API ready', { url: app.url.replace('127.0.0.1', 'localhost') });
  } catch (err) {
    await runner?.stop().catch(() => undefined);
    await runtime?.stop().catch(() => undefined);
    throw err;
  }
}

main().catch(startupFailure);
