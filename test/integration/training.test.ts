import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { silentLogger } from '../../src/logger.js';
import { TrainingRunner } from '../../src/modules/training/training-runner.js';
import { adminQuery } from '../support/db.js';
import { errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { seedDatasetVersion, startInProcessRunner, TINY_HYPERPARAMETERS, waitFor } from '../support/training.js';

const START = `mutation($v: ID!, $hp: HyperparametersInput) { startTrainingRun(datasetVersionId: $v, hyperparameters: $hp) { id status hyperparameters } }`;
const RUN = `query($id: ID!) { trainingRun(id: $id) { id status progress etaSeconds attempts backend device error cancelRequested
  epochs { epoch loss accuracy valLoss valAccuracy durationMs checkpointSha256 }
  modelVersion { id version stage architecture inputSize artifactSha256 thresholdFemale thresholdMale metrics { accuracy auc ece n recallFemale recallMale confusionMatrix } stageChanges { fromStage toStage reason } }
  datasetVersion { id version } } }`;

let t: TestApp;
let runner: TrainingRunner;
let versionId: string;
beforeAll(async () => {
  t = await startTestApp();
  ({ versionId } = await seedDatasetVersion(t, { female: 24, male: 24 }));
  runner = await startInProcessRunner(t);
}, 120_000);
afterAll(async () => {
  await runner.stop();
  await t.stop();
});

const getRun = async (id: string) => ok(await t.gql(RUN, { id }, t.keys.ADMIN)).trainingRun;

describe('starting a training run', () => {
  it('refuses bad hyper-parameters with the reasons', async () => {
    const res = await t.gql(START, { v: versionId, hp: { architecture: 'resnet-9000', epochs: 0, validationSplit: 0.9 } }, t.keys.ADMIN);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0].message).toMatch(/architecture/);
    expect(res.errors?.[0].message).toMatch(/epochs/);
    expect(res.errors?.[0].message).toMatch(/validationSplit/);
    expect(await t.services.db.trainingRun.count()).toBe(0);
  });

  it('refuses a one-class or too small dataset version, and unknown versions', async () => {
    const oneClass = await seedDatasetVersion(t, { female: 21, male: 0, offset: 10 });
    const res = await t.gql(START, { v: oneClass.versionId }, t.keys.ADMIN);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0].message).toMatch(/21 female and 0 male/);
    expect(errorCode(await t.gql(START, { v: '00000000-0000-0000-0000-000000000000' }, t.keys.ADMIN))).toBe('NOT_FOUND');
    expect(await t.services.db.trainingRun.count()).toBe(0);
  });
});

describe('a training run end to end', () => {
  it('is queued with its job, trained by the worker, observed by polling and by subscription, and registers a candidate', async () => {
    const started = ok(await t.gql(START, { v: versionId, hp: TINY_HYPERPARAMETERS }, t.keys.ADMIN)).startTrainingRun;
    expect(started.hyperparameters).toMatchObject({ ...TINY_HYPERPARAMETERS, architecture: 'compact', seed: 42 });
    const row = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: started.id } });
    expect(row.jobId).toBeTruthy();

    const updates: Array<{ status: string; progress: number; epochs: unknown[] }> = [];
    const client = createClient({ url: t.app.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${t.keys.AUDITOR}` } });
    const done = new Promise<void>((resolve, reject) => {
      client.subscribe<{ trainingRunUpdated: { status: string; progress: number; epochs: unknown[] } }>(
        { query: `subscription($id: ID!) { trainingRunUpdated(id: $id) { status progress epochs { epoch } } }`, variables: { id: started.id } },
        { next: (msg) => (msg.errors ? reject(new Error(JSON.stringify(msg.errors))) : updates.push(msg.data!.trainingRunUpdated)), error: reject, complete: resolve },
      );
    });

    const finished = await waitFor('the run to finish', async () => {
      const run = await getRun(started.id);
      return ['SUCCEEDED', 'FAILED'].includes(run.status) && run;
    });
    await done;
    await client.dispose();

    expect(finished).toMatchObject({ status: 'SUCCEEDED', progress: 1, attempts: 1, error: null, datasetVersion: { id: versionId } });
    expect(finished.backend).toBe('onnxruntime'); // TRAINING_RUNTIME=auto trains the compact networks on onnxruntime
    expect(finished.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2]);
    for (const e of finished.epochs) {
      expect(e.checkpointSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(await t.services.store.exists(`checkpoints/${started.id}/${e.checkpointSha256.slice(0, 2)}/${e.checkpointSha256}`)).toBe(true);
    }
    const mv = finished.modelVersion;
    expect(mv).toMatchObject({ stage: 'CANDIDATE', architecture: 'compact', inputSize: 24 });
    expect(mv.metrics.n).toBeGreaterThan(0);
    expect(mv.stageChanges).toEqual([{ fromStage: null, toStage: 'CANDIDATE', reason: `trained by run ${started.id}` }]);
    expect(mv.thresholdFemale).toBeLessThanOrEqual(mv.thresholdMale);

    // Over WebSocket, errors keep their codes as over HTTP.
    const missing = createClient({ url: t.app.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${t.keys.ADMIN}` } });
    const wsError = await new Promise<unknown>((resolve) =>
      missing.subscribe({ query: `subscription { trainingRunUpdated(id: "00000000-0000-0000-0000-000000000000") { id } }` }, { next: (m) => resolve(m.errors), error: resolve, complete: () => resolve(null) }),
    );
    await missing.dispose();
    expect(JSON.stringify(wsError)).toContain('NOT_FOUND');

    expect(updates[0].status).toMatch(/QUEUED|RUNNING/);
    expect(updates[updates.length - 1].status).toBe('SUCCEEDED');
    expect(updates.some((u) => u.epochs.length === 1)).toBe(true);

    const actions = (await t.services.db.auditEvent.findMany({ where: { entityId: started.id }, orderBy: { seq: 'asc' } })).map((e) => e.action);
    expect(actions).toEqual(['trainingRun.start', 'trainingRun.running', 'trainingRun.succeeded']);
  }, 120_000);

  it('cancels a queued run at once and a running run within a batch', async () => {
    await runner.stop();
    const queued = ok(await t.gql(START, { v: versionId, hp: TINY_HYPERPARAMETERS }, t.keys.ADMIN)).startTrainingRun;
    // Stopped runner: nothing takes the job, so the run stays QUEUED until cancelled.
    const cancelled = ok(await t.gql(`mutation($id: ID!) { cancelTrainingRun(id: $id) { status cancelRequested } }`, { id: queued.id }, t.keys.ADMIN)).cancelTrainingRun;
    expect(cancelled).toEqual({ status: 'CANCELLED', cancelRequested: true });
    expect(errorCode(await t.gql(`mutation($id: ID!) { cancelTrainingRun(id: $id) { status } }`, { id: queued.id }, t.keys.ADMIN))).toBe('CONFLICT');

    runner = await startInProcessRunner(t);
    const long = ok(await t.gql(START, { v: versionId, hp: { ...TINY_HYPERPARAMETERS, epochs: 200 } }, t.keys.ADMIN)).startTrainingRun;
    await waitFor('the run to be running', async () => (await getRun(long.id)).status === 'RUNNING');
    ok(await t.gql(`mutation($id: ID!) { cancelTrainingRun(id: $id) { cancelRequested } }`, { id: long.id }, t.keys.ADMIN));
    const stopped = await waitFor('the run to stop', async () => {
      const run = await getRun(long.id);
      return run.status !== 'RUNNING' && run;
    });
    expect(stopped.status).toBe('CANCELLED');
    expect(stopped.epochs.length).toBeLessThan(200);
    expect(stopped.modelVersion).toBeNull();
    expect(errorCode(await t.gql(`mutation($id: ID!) { cancelTrainingRun(id: $id) { status } }`, { id: long.id }, t.keys.ADMIN))).toBe('CONFLICT');
  }, 120_000);

  it('hands its runs back to the queue at once when a worker stops', async () => {
    const run = ok(await t.gql(START, { v: versionId, hp: { ...TINY_HYPERPARAMETERS, epochs: 200 } }, t.keys.ADMIN)).startTrainingRun;
    await waitFor('the run to be running', async () => (await getRun(run.id)).status === 'RUNNING');
    await runner.stop();
    const row = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
    expect(row).toMatchObject({ status: 'QUEUED', leaseOwner: null });
    const event = await t.services.db.auditEvent.findFirstOrThrow({ where: { entityId: run.id, action: 'trainingRun.requeue' } });
    expect(event.details).toMatchObject({ reason: 'worker stopped' });
    ok(await t.gql(`mutation($id: ID!) { cancelTrainingRun(id: $id) { status } }`, { id: run.id }, t.keys.ADMIN));
    runner = await startInProcessRunner(t);
  }, 60_000);

  it('puts a queued run whose job failed before any worker claimed it back in the queue', async () => {
    await runner.stop();
    const run = ok(await t.gql(START, { v: versionId, hp: TINY_HYPERPARAMETERS }, t.keys.ADMIN)).startTrainingRun;
    const { jobId } = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
    await adminQuery(`UPDATE pgboss.job SET state = 'failed' WHERE id = '${jobId}'`, t.db.name);
    const reaper = new TrainingRunner(t.services.db, t.services.store, t.services.queue, t.services.audit, t.services.registry, t.services.training, t.services.images, silentLogger, { staleAfterMs: 200 });
    await new Promise((r) => setTimeout(r, 400));
    expect(await reaper.requeueStale()).toEqual([run.id]);
    const requeued = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
    expect(requeued.status).toBe('QUEUED');
    expect(requeued.jobId).not.toBe(jobId);
    const event = await t.services.db.auditEvent.findFirstOrThrow({ where: { entityId: run.id, action: 'trainingRun.requeue' } });
    expect(event.details).toMatchObject({ reason: 'queued run had no live job' });
    expect(await reaper.requeueStale()).toEqual([]); // its new job is live
    ok(await t.gql(`mutation($id: ID!) { cancelTrainingRun(id: $id) { status } }`, { id: run.id }, t.keys.ADMIN));
    runner = await startInProcessRunner(t);
  }, 60_000);

  it('fails with a readable error when the training data cannot be read, and never trains a run twice', async () => {
    const bad = await seedDatasetVersion(t, { female: 20, male: 20, offset: 14 });
    const item = await t.services.db.datasetVersionItem.findFirstOrThrow({ where: { datasetVersionId: bad.versionId }, include: { image: true } });
    await t.services.store.delete(item.image.objectKey);
    const run = ok(await t.gql(START, { v: bad.versionId, hp: TINY_HYPERPARAMETERS }, t.keys.ADMIN)).startTrainingRun;
    const failed = await waitFor('the run to fail', async () => {
      const r = await getRun(run.id);
      return r.status === 'FAILED' && r;
    });
    expect(failed.error).toMatch(/not exist|NoSuchKey|not found/i);
    // Delivering the same job again (as a queue may) changes nothing.
    await runner.runJob(run.id);
    expect((await getRun(run.id)).attempts).toBe(1);
  }, 120_000);
});
