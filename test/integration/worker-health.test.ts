// Visible worker health: a RUNNING run whose worker went silent shows its last heartbeat and the
// state STALLED; taking it back fails the dead worker's queue job (instead of leaving it 'active'
// for 23 h) and records the attempt; the next attempt's progress restarts from the checkpoint and
// never goes backwards within the attempt, and its epochs carry the attempt number.
import { silentLogger } from '../../src/logger.js';
import { TrainingRunner } from '../../src/modules/training/training-runner.js';
import { adminQuery } from '../support/db.js';
import { ok, startTestApp, type TestApp } from '../support/harness.js';
import { seedDatasetVersion, startInProcessRunner, TINY_HYPERPARAMETERS, waitFor } from '../support/training.js';

const RUN = `query($id: ID!) { trainingRun(id: $id) { id status state heartbeatAt progress attempts epochs { epoch attempt } } }`;
const START = `mutation($v: ID!, $hp: HyperparametersInput) { startTrainingRun(datasetVersionId: $v, hyperparameters: $hp) { id } }`;

let t: TestApp;
let versionId: string;
beforeAll(async () => {
  t = await startTestApp({ worker: { heartbeatMs: 200, stalledAfterMs: 1_000, staleAfterMs: 60_000 } });
  versionId = (await seedDatasetVersion(t, { female: 20, male: 20 })).versionId;
}, 120_000);
afterAll(() => t.stop());

const getRun = async (id: string) => ok(await t.gql(RUN, { id }, t.keys.ADMIN)).trainingRun;

it('shows a silent worker as STALLED, fails its job on takeover, and the next attempt progresses monotonically from its checkpoint', async () => {
  const run = ok(await t.gql(START, { v: versionId, hp: TINY_HYPERPARAMETERS }, t.keys.ADMIN)).startTrainingRun;
  const { jobId } = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
  // A worker took the job, claimed the run, got to 60 % of its first epoch and died (kill -9):
  // its job is 'active', its heartbeat stops.
  await adminQuery(`UPDATE pgboss.job SET state = 'active', started_on = now() WHERE id = '${jobId}'`, t.db.name);
  await adminQuery(
    `UPDATE "TrainingRun" SET status = 'RUNNING', "leaseOwner" = 'dead-worker', attempts = 1, progress = 0.3, "startedAt" = now(), "heartbeatAt" = now() WHERE id = '${run.id}'`,
    t.db.name,
  );
  expect(await getRun(run.id)).toMatchObject({ status: 'RUNNING', state: 'RUNNING', attempts: 1 });
  await adminQuery(`UPDATE "TrainingRun" SET "heartbeatAt" = now() - interval '5 seconds' WHERE id = '${run.id}'`, t.db.name);
  const stalled = await getRun(run.id);
  expect(stalled).toMatchObject({ status: 'RUNNING', state: 'STALLED', progress: 0.3 });
  expect(Date.now() - new Date(stalled.heartbeatAt).getTime()).toBeGreaterThan(4_000);

  // A live worker takes it back: the dead worker's job is failed, not left active.
  const reaper = new TrainingRunner(t.services.db, t.services.store, t.services.queue, t.services.audit, t.services.registry, t.services.training, t.services.images, silentLogger, { staleAfterMs: 1_000 });
  expect(await reaper.requeueStale()).toEqual([run.id]);
  const { rows } = await adminQuery(`SELECT state, output FROM pgboss.job WHERE id = '${jobId}'`, t.db.name);
  expect(rows[0].state).toBe('failed');
  expect(JSON.stringify(rows[0].output)).toMatch(/worker stopped sending heartbeats/);
  const requeue = await t.services.db.auditEvent.findFirstOrThrow({ where: { entityId: run.id, action: 'trainingRun.requeue' } });
  expect(requeue.details).toMatchObject({ reason: 'worker stopped sending heartbeats', previousWorker: 'dead-worker', previousJobId: jobId, attempt: 1 });
  expect(await getRun(run.id)).toMatchObject({ status: 'QUEUED', state: 'QUEUED' });

  // The second attempt: progress restarts from the last checkpoint (none: 0), then only grows.
  const progress: number[] = [];
  const runner = await startInProcessRunner(t, { heartbeatMs: 200 });
  try {
    const done = await waitFor('the second attempt to finish', async () => {
      const r = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
      if (r.attempts === 2 && r.status === 'RUNNING') progress.push(r.progress);
      return r.status === 'SUCCEEDED' && r;
    }, 120_000, 50);
    expect(done.attempts).toBe(2);
  } finally {
    await runner.stop();
  }
  expect(progress.length).toBeGreaterThan(0);
  expect(progress[0]).toBeLessThan(0.3);
  for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
  const finished = await getRun(run.id);
  expect(finished).toMatchObject({ state: 'SUCCEEDED', progress: 1, attempts: 2 });
  expect(finished.epochs).toEqual([{ epoch: 1, attempt: 2 }, { epoch: 2, attempt: 2 }]);
}, 180_000);
