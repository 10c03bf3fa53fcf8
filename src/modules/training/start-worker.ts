// Builds and starts a training runner over a process's services (used by the worker process and,
// in the embedded start, by the API process itself).
import type { Services } from '../../services.js';
import { type RunnerOptions, TrainingRunner } from './training-runner.js';

export async function startTrainingWorker(services: Services, options: RunnerOptions = {}): Promise<TrainingRunner> {
  const runner = new TrainingRunner(services.db, services.store, services.queue, services.audit, services.registry, services.training, services.images, services.logger, {
    heartbeatMs: services.config.worker.heartbeatMs,
    staleAfterMs: services.config.worker.staleAfterMs,
    ...options,
  });
  await runner.start();
  return runner;
}
