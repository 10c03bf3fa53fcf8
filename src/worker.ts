// Training worker entry point (`npm run worker`). Takes training jobs from the PostgreSQL queue;
// run several (on several GPU machines) against the same DATABASE_URL and S3_* settings.
import 'reflect-metadata';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startTrainingWorker } from './modules/training/start-worker.js';
import { startRuntime } from './runtime.js';
import { onTerminationSignals, startupFailure } from './shutdown.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { process: 'worker' });
  if (!config.databaseUrl) {
    // An embedded database belongs to the one process that runs it; a second process must not open it.
    process.stderr.write('The worker needs DATABASE_URL (and S3_*) of the database the API uses. `npm start` without DATABASE_URL already runs a worker inside the API process.\n');
    process.exit(2);
  }
  const runtime = await startRuntime(config, logger, { role: 'worker' });
  const runner = await startTrainingWorker(runtime.services);
  onTerminationSignals(logger, () => [
    ['training worker (hands its run back)', () => runner.stop()],
    ['services and connections', () => runtime.stop()],
  ]);
}

main().catch(startupFailure);
