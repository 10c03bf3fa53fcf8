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
  const upload = new pg.Client({ connectionString: t.db.url });
  await upload.connect();
  try {
    await upload.query('BEGIN');
    await upload.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [imageLockKey(staged.stored.sha256)]);
    await upload.query(
      `INSERT INTO "Image" (id, sha256, "byteSize", "mediaType", width, height, "objectKey") VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6)`,
      [staged.stored.sha256, staged.probe.byteSize, staged.probe.mediaType, staged.probe.width, staged.probe.height, staged.stored.key],
    );
    const sweeper = new OrphanSweeper(t.services.sql, t.services.store, createLogger('error', {}, () => undefined));
    const sweeping = sweeper.sweep({ graceMs: GRACE_MS, now: later() });
    // Commit once the sweeper waits for the lock (it listed the object as an orphan by then).
    await waitFor('the sweeper to wait for the image lock', async () => {
      const { rows } = await upload.query(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1`, [t.db.name]);
      return rows[0].n > 0;
    }, 30_000, 20);
    await upload.query('COMMIT');
    const swept = await sweeping;
    expect(swept.orphans.map((o) => o.key)).toContain(staged.stored.key);
    expect(swept.kept).toBe(1);
    expect(await t.services.store.exists(staged.stored.key)).toBe(true);
  } finally {
    await upload.end();
  }
});
