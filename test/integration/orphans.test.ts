// The orphan sweeper: objects of every kind that no row references and that are older than the
// grace period are listed (dry run) or deleted, and counted in the logs; referenced objects,
// young objects and objects outside the known kinds (audit anchors) are left alone.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createLogger } from '../../src/logger.js';
import { imageLockKey } from '../../src/modules/images/image.service.js';
import { OrphanSweeper } from '../../src/modules/orphans/orphan-sweeper.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { adminQuery } from '../support/db.js';
import { ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { syntheticImage } from '../support/images.js';
import { seedDatasetVersion, waitFor } from '../support/training.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await serveBaseline(t);
}, 60_000);
afterAll(() => t.stop());

const GRACE_MS = 60 * 60_000;
/** "Now" two grace periods ahead: everything stored so far counts as old. */
const later = () => new Date(Date.now() + 2 * GRACE_MS);

/** A connection of its own (another request) that opens a transaction and takes the image's lock. */
async function holdImageLock(sha256: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [imageLockKey(sha256)]);
  return client;
}

/** Resolves once some session of the test's database waits for an advisory lock (`client` asks). */
function untilALockIsAwaited(client: pg.Client, who: string): Promise<unknown> {
  return waitFor(`${who} to wait for the image lock`, async () => {
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1`, [t.db.name]);
    return rows[0].n > 0;
  }, 30_000, 20);
}

async function putOrphan(prefix: string, seed: string): Promise<string> {
  const bytes = Buffer.from(`orphan ${seed} ${randomUUID()}`);
  const sha = sha256Hex(bytes);
  const key = `${prefix}/${sha.slice(0, 2)}/${sha}`;
  await t.services.store.put(key, bytes);
  return key;
}

it('lists, then deletes, unreferenced objects of every kind older than the grace period, and only those', async () => {
  // Referenced objects of every kind: an image (evidence), an explanation, a model bundle
  // (the baseline), a manifest (a dataset version) and a checkpoint (an epoch of a run).
  const caseId = ok(await t.gql(`mutation { createCase(input: { title: "sweep" }) { id } }`)).createCase.id;
  const classified = ok(
    await t.upload(`mutation($c: ID!, $f: Upload!) { classifyImage(caseId: $c, file: $f) { prediction { id } } }`, { c: caseId, f: null }, { f: { name: 'e.jpg', bytes: await syntheticImage(901, 'jpeg', 64) } }),
  ).classifyImage;
  ok(await t.gql(`mutation($id: ID!) { explainPrediction(id: $id) { sha256 } }`, { id: classified.prediction.id }));
  const { versionId } = await seedDatasetVersion(t, { female: 20, male: 20 });
  const run = ok(await t.gql(`mutation($v: ID!) { startTrainingRun(datasetVersionId: $v, hyperparameters: { epochs: 2 }) { id } }`, { v: versionId }, t.keys.ADMIN)).startTrainingRun;
  const checkpointKey = await putOrphan(`checkpoints/${run.id}`, 'kept');
  await adminQuery(
    `INSERT INTO "TrainingEpoch" (id, "trainingRunId", epoch, loss, accuracy, "valLoss", "valAccuracy", "durationMs", "checkpointKey", "checkpointSha256")
     VALUES (gen_random_uuid(), '${run.id}', 1, 0.5, 0.5, 0.5, 0.5, 1, '${checkpointKey}', '${checkpointKey.slice(-64)}')`,
    t.db.name,
  );
  const referenced = new Set<string>();
  for (const [table, column] of [['Image', 'objectKey'], ['Explanation', 'objectKey'], ['ModelVersion', 'artifactKey'], ['DatasetVersion', 'manifestKey'], ['TrainingEpoch', 'checkpointKey']]) {
    const { rows } = await adminQuery(`SELECT "${column}" AS key FROM "${table}"`, t.db.name);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) referenced.add(r.key);
  }

  // Orphans of every kind, as failed requests and killed processes leave them; and an anchor.
  const orphans = {
    image: await putOrphan('images', 'image'),
    explanation: await putOrphan('explanations', 'explanation'),
    modelBundle: await putOrphan('models', 'bundle'),
    checkpoint: await putOrphan(`checkpoints/${run.id}`, 'checkpoint'),
    manifest: await putOrphan('manifests', 'manifest'),
  };
  ok(await t.gql(`mutation { anchorAuditChain { seq } }`, {}, t.keys.ADMIN));
  const anchorKeys = await t.services.store.listKeys('audit-anchors/');
  expect(anchorKeys.length).toBeGreaterThan(0);

  const lines: string[] = [];
  const sweeper = new OrphanSweeper(t.services.sql, t.services.store, createLogger('info', {}, (line) => lines.push(line)));

  // Young objects are never touched: within the grace period nothing is an orphan yet.
  expect((await sweeper.sweep({ graceMs: GRACE_MS, dryRun: true })).orphans).toEqual([]);

  const dry = await sweeper.sweep({ graceMs: GRACE_MS, dryRun: true, now: later() });
  expect(Object.fromEntries(dry.orphans.map((o) => [o.kind, o.key]))).toEqual(orphans);
  expect(dry.deleted).toBe(0);
  for (const key of Object.values(orphans)) expect(await t.services.store.exists(key)).toBe(true);
  expect(JSON.parse(lines.at(-1)!)).toMatchObject({ msg: 'orphan sweep (dry run)', orphans: { image: 1, explanation: 1, modelBundle: 1, checkpoint: 1, manifest: 1 }, deleted: 0 });

  const swept = await sweeper.sweep({ graceMs: GRACE_MS, now: later() });
  expect(swept).toMatchObject({ deleted: 5, kept: 0 });
  expect(JSON.parse(lines.at(-1)!)).toMatchObject({ msg: 'orphan sweep', deleted: 5, orphans: { image: 1, explanation: 1, modelBundle: 1, checkpoint: 1, manifest: 1 } });
  for (const key of Object.values(orphans)) expect(await t.services.store.exists(key)).toBe(false);
  for (const key of referenced) expect(await t.services.store.exists(key)).toBe(true);
  for (const key of anchorKeys) expect(await t.services.store.exists(key)).toBe(true);
  expect((await sweeper.sweep({ graceMs: GRACE_MS, now: later() })).orphans).toEqual([]);
}, 90_000);

it('keeps an orphan that an upload comes to reference while the sweep runs', async () => {
  // The object is stored; the upload's transaction holds the image's lock and has written the row
  // but not committed when the sweeper lists the object as an orphan. The sweeper waits for the
  // lock, re-checks, finds the row, and keeps the object.
  const bytes = await syntheticImage(902, 'jpeg', 64);
  const staged = await t.services.images.stage(bytes);
  const upload = await holdImageLock(staged.stored.sha256);
  try {
    await upload.query(
      `INSERT INTO "Image" (id, sha256, "byteSize", "mediaType", width, height, "objectKey") VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6)`,
      [staged.stored.sha256, staged.probe.byteSize, staged.probe.mediaType, staged.probe.width, staged.probe.height, staged.stored.key],
    );
    const sweeper = new OrphanSweeper(t.services.sql, t.services.store, createLogger('error', {}, () => undefined));
    const sweeping = sweeper.sweep({ graceMs: GRACE_MS, now: later() });
    // Commit once the sweeper waits for the lock (it listed the object as an orphan by then).
    await untilALockIsAwaited(upload, 'the sweeper');
    await upload.query('COMMIT');
    const swept = await sweeping;
    expect(swept.orphans.map((o) => o.key)).toContain(staged.stored.key);
    expect(swept.kept).toBe(1);
    expect(await t.services.store.exists(staged.stored.key)).toBe(true);
  } finally {
    await upload.end();
  }
});

describe('an upload whose object is deleted between its PUT and its row', () => {
  // Two uploads of the same new bytes both store the object; one fails and its clean-up deletes the
  // object (or the sweeper does). The other's row write learns of it under the image's lock (from
  // ImageDiscard, not from the object store) and stores the bytes again before it commits.
  /** Counts the store's exists() and put() calls (the real store still answers them). */
  const objectCalls = () => {
    const store = t.services.store;
    const { exists, put } = store;
    const counts = { exists: 0, put: 0 };
    store.exists = (...args) => (counts.exists++, exists.apply(store, args));
    store.put = (...args) => (counts.put++, put.apply(store, args));
    return { counts, restore: () => Object.assign(store, { exists, put }) };
  };

  it('stores the bytes again after a failed twin upload discarded them, and asks the store nothing otherwise', async () => {
    const images = t.services.images;
    const bytes = await syntheticImage(903, 'jpeg', 64);
    const kept = await images.store(await images.validate(bytes));
    const failed = await images.store(await images.validate(bytes));
    await images.discardIfUnreferenced(failed);
    expect(await t.services.store.exists(kept.stored.key)).toBe(false);
    const calls = objectCalls();
    try {
      const image = await t.services.sql.transaction((sql) => images.upsert(sql, kept));
      expect(calls.counts.put).toBe(1);
      expect(await t.services.store.exists(image.objectKey)).toBe(true);
      // An upload with nothing discarded in between: its row, and no object-store request at all.
      const fresh = await images.store(await images.validate(await syntheticImage(904, 'jpeg', 64)));
      Object.assign(calls.counts, { exists: 0, put: 0 });
      await t.services.sql.transaction((sql) => images.upsert(sql, fresh));
      expect(calls.counts).toEqual({ exists: 0, put: 0 });
    } finally {
      calls.restore();
    }
  });

  it('stores the bytes again after the sweeper deleted them, and prunes discard records after the grace period', async () => {
    const images = t.services.images;
    const staged = await images.store(await images.validate(await syntheticImage(905, 'jpeg', 64)));
    const sweeper = new OrphanSweeper(t.services.sql, t.services.store, createLogger('error', {}, () => undefined));
    const swept = await sweeper.sweep({ graceMs: GRACE_MS, now: later() });
    expect(swept.orphans.map((o) => o.key)).toContain(staged.stored.key);
    expect(await t.services.store.exists(staged.stored.key)).toBe(false);
    const image = await t.services.sql.transaction((sql) => images.upsert(sql, staged));
    expect(await t.services.store.exists(image.objectKey)).toBe(true);

    const records = async () => Number((await adminQuery(`SELECT count(*) AS n FROM "ImageDiscard" WHERE sha256 = '${staged.stored.sha256}'`, t.db.name)).rows[0].n);
    expect(await records()).toBe(1);
    expect(await images.pruneDiscards(GRACE_MS)).toBe(0);
    await adminQuery(`UPDATE "ImageDiscard" SET "discardedAt" = now() - interval '2 hours' WHERE sha256 = '${staged.stored.sha256}'`, t.db.name);
    expect(await images.pruneDiscards(GRACE_MS)).toBeGreaterThanOrEqual(1);
    expect(await records()).toBe(0);
  });

  it('sees a discard committed while its row write waited for the image lock', async () => {
    // The discarder holds the lock, has deleted the object and recorded it, but not committed, when
    // the writer's statement starts: that statement's snapshot cannot see the record; the lock
    // function's own read, after the wait, must.
    const images = t.services.images;
    const staged = await images.store(await images.validate(await syntheticImage(906, 'jpeg', 64)));
    const discarder = await holdImageLock(staged.stored.sha256);
    try {
      await t.services.store.delete(staged.stored.key);
      await discarder.query(`INSERT INTO "ImageDiscard" (sha256) VALUES ($1)`, [staged.stored.sha256]);
      const writing = t.services.sql.transaction((sql) => images.upsert(sql, staged));
      await untilALockIsAwaited(discarder, 'the writer');
      await discarder.query('COMMIT');
      const image = await writing;
      expect(await t.services.store.exists(image.objectKey)).toBe(true);
    } finally {
      await discarder.end();
    }
  });
});
