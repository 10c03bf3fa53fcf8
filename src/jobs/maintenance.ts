// Periodic maintenance, scheduled through pg-boss so that one process handles each tick however
// many API processes run: the audit chain's anchor, and the orphan sweep (with the expiry of old
// idempotency keys and image discard records). Started by the API server (server.ts).
import type { Services } from '../services.js';

export const AUDIT_ANCHOR_QUEUE = 'audit-anchor';
export const ORPHAN_SWEEP_QUEUE = 'orphan-sweep';

/** One tick of the anchor schedule. */
export const anchorOnSchedule = (services: Services) => services.auditAnchors.anchor('interval');

/** One tick of the sweep schedule. */
export async function sweepOnSchedule(services: Services) {
  const { graceMs, idempotencyTtlMs } = services.config.sweeper;
  const sweep = await services.orphans.sweep({ graceMs });
  const expired = await services.idempotency.expire(idempotencyTtlMs);
  if (expired > 0) services.logger.info('expired idempotency keys', { count: expired });
  const prunedDiscards = await services.images.pruneDiscards(graceMs);
  return { sweep, expired, prunedDiscards };
}

export async function startMaintenance(services: Services): Promise<() => Promise<void>> {
  const { audit, sweeper } = services.config;
  const stops = [
    await services.queue.scheduleWork(AUDIT_ANCHOR_QUEUE, audit.anchorCron, () => anchorOnSchedule(services)),
    await services.queue.scheduleWork(ORPHAN_SWEEP_QUEUE, sweeper.cron, () => sweepOnSchedule(services)),
  ];
  services.logger.info('maintenance scheduled', { auditAnchor: audit.anchorCron, orphanSweep: sweeper.cron, orphanGraceMs: sweeper.graceMs });
  return async () => {
    for (const stop of stops) await stop().catch(() => undefined);
  };
}
