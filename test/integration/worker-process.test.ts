// Real worker processes (the compiled `dist/src/worker.js`, built by `npm test`'s tsc step):
// a worker killed with SIGKILL mid-run does not leave its run RUNNING forever; another worker
// takes it back and resumes from the last checkpoint; several workers share the queue without
// training any run twice.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { ok, startTestApp, type TestApp } from '../support/harness.js';
import { seedDatasetVersion, TINY_HYPERPARAMETERS, waitFor } from '../support/training.js';

const WORKER = path.join(PROJECT_ROOT, 'dist', 'src', 'worker.js');
const START = `mutation($v: ID!, $hp: HyperparametersInput) { startTrainingRun(datasetVersionId: $v, hyperparameters: $hp) { id } }`;

let t: TestApp;
let versionId: string;
const children: ChildProcess[] = [];

function startWorker(name: string): ChildProcess {
  const s3 = t.services.config.s3!;
  const child = spawn(process.execPath, [WORKER], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: t.db.url,
      S3_ENDPOINT: `http://${s3.endPoint}:${s3.port}`,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: s3.bucket,
      WORKER_HEARTBEAT_MS: '300',
      WORKER_STALE_AFTER_MS: '2500',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  child.on('exit', (code, signal) => {
    if (code && code !== 0) process.stderr.write(`worker ${name} exited with ${code}:\n${output}\n`);
    void signal;
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  if (!fs.existsSync(WORKER)) throw new Error(`${WORKER} is missing: run the tests with \`npm test\` (its tsc step compiles the worker)`);
  t = await startTestApp();
  ({ versionId } = await seedDatasetVersion(t, { female: 24, male: 24 }));
}, 120_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await t.stop();
});

const epochsOf = (runId: string) => t.services.db.trainingEpoch.findMany({ where: { trainingRunId: runId }, orderBy: { epoch: 'asc' } });

it('resumes a run from its last checkpoint after its worker is killed with SIGKILL', async () => {
  const first = startWorker('first');
  const run = ok(await t.gql(START, { v: versionId, hp: { ...TINY_HYPERPARAMETERS, epochs: 8 } }, t.keys.ADMIN)).startTrainingRun;
  await waitFor('two epochs from the first worker', async () => (await epochsOf(run.id)).length >= 2, 120_000);
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const beforeKill = await epochsOf(run.id);
  const stuck = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
  expect(stuck.status).toBe('RUNNING');
  expect(beforeKill.length).toBeLessThan(8);

  startWorker('second');
  const done = await waitFor('the run to finish on the second worker', async () => {
    const r = await t.services.db.trainingRun.findUniqueOrThrow({ where: { id: run.id } });
    return ['SUCCEEDED', 'FAILED'].includes(r.status) && r;
  }, 120_000);
  expect(done.status).toBe('SUCCEEDED');
  expect(done.attempts).toBe(2);
  expect(done.leaseOwner).toBeNull();

  const after = await epochsOf(run.id);
  expect(after.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  // The epochs finished before the kill were not trained again: their rows are untouched.
  for (const e of beforeKill) expect(after.find((a) => a.epoch === e.epoch)).toEqual(e);
  const actions = (await t.services.db.auditEvent.findMany({ where: { entityId: run.id }, orderBy: { seq: 'asc' } })).map((e) => e.action);
  expect(actions).toEqual(['trainingRun.start', 'trainingRun.running', 'trainingRun.requeue', 'trainingRun.running', 'trainingRun.succeeded']);
  expect(await t.services.db.modelVersion.count({ where: { trainingRunId: run.id } })).toBe(1);
}, 240_000);

it('shares the queue between workers without training a run twice', async () => {
  startWorker('third');
  const runs: string[] = [];
  for (let i = 0; i < 3; i++) runs.push(ok(await t.gql(START, { v: versionId, hp: { ...TINY_HYPERPARAMETERS, seed: i + 1 } }, t.keys.ADMIN)).startTrainingRun.id);
  const finished = await waitFor('all runs to finish', async () => {
    const rows = await t.services.db.trainingRun.findMany({ where: { id: { in: runs } } });
    return rows.every((r) => r.status === 'SUCCEEDED') && rows;
  }, 180_000);
  expect(finished.map((r) => r.attempts)).toEqual([1, 1, 1]);
  const owners = await t.services.db.auditEvent.findMany({ where: { entityId: { in: runs }, action: 'trainingRun.running' } });
  expect(owners).toHaveLength(3);
  expect(new Set(owners.map((o) => o.actor)).size).toBeGreaterThanOrEqual(1);
}, 240_000);
