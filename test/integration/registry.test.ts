import { silentLogger } from '../../src/logger.js';
import { BASELINE_REASON } from '../../src/modules/registry/registry.service.js';
import { createServices, startBackground, stopBackground } from '../../src/services.js';
import { adminQuery } from '../support/db.js';
import { apiDatabase, errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { tinyBundle, tinyBundleFile } from '../support/models.js';
import { promote, PROMOTION } from '../support/promotion.js';
import { waitFor } from '../support/training.js';

const MV = `query($id: ID!) { modelVersion(id: $id) { id version stage stageChanges { fromStage toStage reason changedBy { name } } } }`;
const REQUEST = PROMOTION.REQUEST;

let t: TestApp;
let baselineId: string;
beforeAll(async () => {
  t = await startTestApp();
  const file = await tinyBundleFile();
  const baseline = await t.services.registry.ensureBaseline(file);
  baselineId = baseline!.id;
  expect(await t.services.registry.ensureBaseline(file)).toBeNull(); // only on an empty registry
}, 120_000);
afterAll(() => t.stop());

async function candidate(): Promise<string> {
  const bundle = await tinyBundle();
  const mv = await t.services.db.$transaction((tx) => t.services.registry.register(tx, { system: 'test' }, { bundle }));
  return mv.id;
}

describe('model registry', () => {
  it('registers the bundled baseline as version 1 in production, with its history', async () => {
    const mv = ok(await t.gql(MV, { id: baselineId }, t.keys.AUDITOR)).modelVersion;
    expect(mv).toMatchObject({ version: 1, stage: 'PRODUCTION' });
    expect(mv.stageChanges).toEqual([
      { fromStage: null, toStage: 'CANDIDATE', reason: 'registered', changedBy: null },
      { fromStage: 'CANDIDATE', toStage: 'PRODUCTION', reason: BASELINE_REASON, changedBy: null },
    ]);
    expect(ok(await t.gql(`{ productionModel { id } }`, {}, t.keys.INVESTIGATOR)).productionModel.id).toBe(baselineId);
  });

  it('promotes a candidate with a reason; the previous version is archived; every change is recorded and audited', async () => {
    const id = await candidate();
    expect(errorCode(await t.gql(REQUEST, { id, reason: '   ' }, t.keys.ADMIN))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(REQUEST, { id, reason: 'better' }, t.keys.INVESTIGATOR))).toBe('FORBIDDEN');
    await promote(t, id, 'better on validation');
    expect(ok(await t.gql(MV, { id }, t.keys.ADMIN)).modelVersion.stage).toBe('PRODUCTION');
    const previous = ok(await t.gql(MV, { id: baselineId }, t.keys.ADMIN)).modelVersion;
    expect(previous.stage).toBe('ARCHIVED');
    // The approving (second) admin made the stage change.
    expect(previous.stageChanges.at(-1)).toEqual({ fromStage: 'PRODUCTION', toStage: 'ARCHIVED', reason: expect.stringContaining('better on validation'), changedBy: { name: 'test admin 2' } });
    const audit = await t.services.db.auditEvent.findMany({ where: { action: 'modelVersion.stage', entityId: { in: [id, baselineId] } } });
    expect(audit.length).toBeGreaterThanOrEqual(3);

    // Archived or production versions cannot be promoted; unknown ids are NOT_FOUND.
    expect(errorCode(await t.gql(REQUEST, { id: baselineId, reason: 'again' }, t.keys.ADMIN))).toBe('CONFLICT');
    expect(errorCode(await t.gql(REQUEST, { id, reason: 'again' }, t.keys.ADMIN))).toBe('CONFLICT');
    expect(errorCode(await t.gql(REQUEST, { id: '00000000-0000-0000-0000-000000000000', reason: 'x' }, t.keys.ADMIN))).toBe('NOT_FOUND');
  });

  it('refuses to promote a version without an evaluation', async () => {
    const id = await candidate();
    await adminQuery(`UPDATE "ModelVersion" SET evaluation = NULL WHERE id = '${id}'`, t.db.name);
    const res = await t.gql(REQUEST, { id, reason: 'no metrics' }, t.keys.ADMIN);
    expect(errorCode(res)).toBe('CONFLICT');
    expect(res.errors?.[0].message).toMatch(/no evaluation/);
  });

  it('keeps exactly one production version when approvals race, and the database refuses a second one', async () => {
    const ids = await Promise.all([candidate(), candidate(), candidate()]);
    const requests = await Promise.all(ids.map(async (id) => ok(await t.gql(REQUEST, { id, reason: `race ${id}` }, t.keys.ADMIN)).requestPromotion.id as string));
    const results = await Promise.all(requests.map((id) => t.gql(PROMOTION.APPROVE, { id, reason: 'race', override: 'no data set in this test' }, t.secondKeys.ADMIN)));
    expect(results.filter((r) => !r.errors).length).toBeGreaterThanOrEqual(1);
    for (const r of results) if (r.errors) expect(errorCode(r)).toBe('CONFLICT');
    expect(await t.services.db.modelVersion.count({ where: { stage: 'PRODUCTION' } })).toBe(1);
    // Each PRODUCTION entry in the history is closed by an ARCHIVED one, except the current one.
    const changes = await t.services.db.modelStageChange.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    const open = new Set<string>();
    for (const c of changes) {
      if (c.toStage === 'PRODUCTION') open.add(c.modelVersionId);
      if (c.fromStage === 'PRODUCTION') open.delete(c.modelVersionId);
    }
    expect(open.size).toBe(1);
    await expect(adminQuery(`UPDATE "ModelVersion" SET stage = 'PRODUCTION' WHERE id = '${baselineId}'`, t.db.name)).rejects.toThrow(/single_production/);
  });

  it('rolls production back to the previous version, and archives candidates but not production', async () => {
    const current = ok(await t.gql(`{ productionModel { id } }`, {}, t.keys.ADMIN)).productionModel.id;
    const rolled = ok(await t.gql(`mutation { rollbackProduction(reason: "regression in the field") { id stage } }`, {}, t.keys.ADMIN)).rollbackProduction;
    expect(rolled.stage).toBe('PRODUCTION');
    expect(rolled.id).not.toBe(current);
    const history = ok(await t.gql(MV, { id: rolled.id }, t.keys.ADMIN)).modelVersion.stageChanges;
    expect(history.at(-1)).toMatchObject({ fromStage: 'ARCHIVED', toStage: 'PRODUCTION', reason: expect.stringContaining('regression in the field') });
    expect(errorCode(await t.gql(`mutation { rollbackProduction(reason: "") { id } }`, {}, t.keys.ADMIN))).toBe('BAD_USER_INPUT');

    const archive = `mutation($id: ID!) { archiveModelVersion(id: $id, reason: "superseded") { stage } }`;
    expect(errorCode(await t.gql(archive, { id: rolled.id }, t.keys.ADMIN))).toBe('CONFLICT');
    const c = await candidate();
    expect(ok(await t.gql(archive, { id: c }, t.keys.ADMIN)).archiveModelVersion.stage).toBe('ARCHIVED');
    expect(errorCode(await t.gql(archive, { id: c }, t.keys.ADMIN))).toBe('CONFLICT');
  });

  it('rolls back along the history: twice goes two versions back, never to a withdrawn one', async () => {
    const [a, b, c] = [await candidate(), await candidate(), await candidate()];
    for (const id of [a, b, c]) await promote(t, id, `ship ${id}`);
    const rollback = `mutation { rollbackProduction(reason: "field reports") { id } }`;
    expect(ok(await t.gql(rollback, {}, t.keys.ADMIN)).rollbackProduction.id).toBe(b);
    expect(ok(await t.gql(rollback, {}, t.keys.ADMIN)).rollbackProduction.id).toBe(a);
    const kinds = ok(await t.gql(MV, { id: c }, t.keys.ADMIN)).modelVersion;
    expect(kinds.stage).toBe('ARCHIVED');
    const history = (await t.services.db.modelStageChange.findMany({ where: { modelVersionId: b }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map((h) => h.kind);
    expect(history).toEqual(['REGISTER', 'PROMOTE', 'REPLACE', 'RESTORE', 'ROLLBACK']);
  });

  it('lists versions by stage with pagination', async () => {
    const archived = ok(await t.gql(`{ modelVersions(stage: ARCHIVED, first: 2) { nodes { stage } pageInfo { hasNextPage endCursor } } }`, {}, t.keys.INVESTIGATOR)).modelVersions;
    expect(archived.nodes).toHaveLength(2);
    expect(archived.nodes.every((n: { stage: string }) => n.stage === 'ARCHIVED')).toBe(true);
    expect(archived.pageInfo.hasNextPage).toBe(true);
  });

  it('switches every API process to a new production model within seconds of a promotion', async () => {
    // A second "API process": its own services over the same database and bucket. Its polling is
    // slow, so only the NOTIFY can make it switch quickly.
    const database = apiDatabase(t.db.url);
    const other = createServices({ ...t.services, config: { ...t.services.config, modelPollMs: 600_000 }, db: database.db, sql: database.sql, logger: silentLogger });
    await startBackground(other);
    try {
      await other.serving.start();
      await t.services.serving.start();
      const before = (await other.serving.production()).version.id;
      const id = await candidate();
      await promote(t, id, 'rollout');
      // Each process loads the new model on its own (the local one from its own event, the other
      // from the NOTIFY); either may finish first.
      await waitFor('the other process to switch', async () => (await other.serving.production()).version.id === id, 10_000, 100);
      await waitFor('this process to switch', async () => (await t.services.serving.production()).version.id === id, 10_000, 100);
      expect(before).not.toBe(id);
    } finally {
      // A failure must not leave the second process's queue and listener running into the next test file.
      await stopBackground(other);
      await database.close();
    }
  }, 60_000);
});
