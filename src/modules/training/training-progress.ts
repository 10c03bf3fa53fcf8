// How a training run is doing, as the API reports it: the time left, whether it stalled, and a
// stream of the run that follows its changes (the trainingRunUpdated subscription).
import type { TrainingRun } from '../../generated/prisma/client.js';
import { AppError } from '../../errors.js';
import { CHANNELS, type EventBus } from '../../events/event-bus.js';
import type { Logger } from '../../logger.js';
import { FINAL_STATUSES, type TrainingService } from './training.service.js';

/**
 * Estimated seconds left: the mean duration of the epochs recorded so far times the planned
 * epochs still to do (from `progress`, which also counts the current epoch's batches). 0 once the
 * run has ended, whatever its outcome; null while it is queued or before its first epoch.
 */
export function etaSeconds(run: Pick<TrainingRun, 'status' | 'progress'> & { hyperparameters: unknown }, epochs: ReadonlyArray<{ durationMs: number }>): number | null {
  if (run.status !== 'RUNNING') return run.status === 'QUEUED' ? null : 0;
  const planned = (run.hyperparameters as { epochs?: number } | null)?.epochs ?? 0;
  if (!epochs.length || !planned) return null;
  const meanSeconds = epochs.reduce((s, e) => s + e.durationMs, 0) / epochs.length / 1000;
  return Math.max(0, Math.round(meanSeconds * planned * (1 - run.progress)));
}

/** A RUNNING run whose worker's heartbeat is older than `stalledAfterMs` (or never came) has stalled. */
export function isStalled(run: Pick<TrainingRun, 'status' | 'heartbeatAt'>, stalledAfterMs: number, now = Date.now()): boolean {
  return run.status === 'RUNNING' && (!run.heartbeatAt || now - run.heartbeatAt.getTime() > stalledAfterMs);
}

/** How often a watched run is re-read even without an event (events are best effort). */
const WATCH_POLL_MS = 5000;

/**
 * Yields `first` and then the run again after every change announced for it (or at least every
 * few seconds, when it changed), until it reaches a final status; `onChange` runs before each
 * later yield. Errors after the start are logged and reported as internal.
 */
export async function* watchRun(
  deps: { training: TrainingService; events: EventBus; logger: Logger },
  first: TrainingRun,
  onChange: (run: TrainingRun) => void = () => undefined,
): AsyncGenerator<TrainingRun> {
  const controller = new AbortController();
  const changes = deps.events.iterate(CHANNELS.trainingRun, controller.signal);
  const nextChange = async (): Promise<void> => {
    for (;;) {
      const { value, done } = await changes.next();
      if (done || value[0].runId === first.id) return;
    }
  };
  try {
    let run = first;
    yield run;
    let pending: Promise<'event'> | undefined;
    while (!FINAL_STATUSES.includes(run.status)) {
      // One outstanding read of the event stream at a time; it may outlive a round won by the timer.
      pending ??= nextChange().then(() => 'event' as const);
      pending.catch(() => undefined); // aborted at the end: not an error
      let timer: NodeJS.Timeout | undefined;
      const winner = await Promise.race([pending, new Promise<'timer'>((resolve) => (timer = setTimeout(() => resolve('timer'), WATCH_POLL_MS)))]);
      clearTimeout(timer);
      if (winner === 'event') pending = undefined;
      const latest = await deps.training.get(first.id);
      if (latest.status === run.status && latest.progress === run.progress && latest.heartbeatAt?.getTime() === run.heartbeatAt?.getTime()) continue;
      run = latest;
      onChange(run);
      yield run;
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    deps.logger.error('training run subscription failed', { error: err, runId: first.id });
    throw new AppError('INTERNAL_SERVER_ERROR', 'Internal server error');
  } finally {
    controller.abort();
  }
}
