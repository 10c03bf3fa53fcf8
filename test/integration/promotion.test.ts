// Two admins for a promotion, and the metric gate against production (issue 10, point 4).
import fs from 'node:fs/promises';
import { errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { invertedBundle, tinyBundle, tinyBundleFile } from '../support/models.js';
import { PROMOTION } from '../support/promotion.js';
import { seedDatasetVersion } from '../support/training.js';

const { REQUEST, APPROVE } = PROMOTION;
const REJECT = `mutation($id: ID!, $reason: String!) { rejectPromotion(requestId: $id, reason: $reason) { id status decisionReason decidedBy { name } } }`;
const READ = `query($id: ID!) { promotionRequest(id: $id) {
  id status reason decisionReason overrideReason decidedAt requestedBy { name } decidedBy { name } modelVersion { id stage }
  comparison { productionVersionId comparedOn n passed failures tolerance { accuracy calibrationError recallGap }
    candidate { accuracy recallFemale recallMale recallGap calibrationError } production { accuracy recallGap calibrationError } } } }`;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  const file = await tinyBundleFile();
  await t.services.registry.ensureBaseline(file);
  // The images the gate compares on: the ones the test models were trained on.
  await seedDatasetVersion(t, { female: 30, male: 30, offset: 0 });
}, 180_000);
afterAll(() => t.stop());

async function register(bundle: Uint8Array): Promise<string> {
  return (await t.services.db.$transaction((tx) => t.services.registry.register(tx, { system: 'test' }, { bundle }))).id;
}
const request = async (id: string, reason = 'ready') => ok(await t.gql(REQUEST, { id, reason }, t.keys.ADMIN)).requestPromotion.id as string;
const stageOf = async (id: string) => (await t.services.db.modelVersion.findUniqueOrThrow({ where: { id } })).stage;
const production = async () => (await t.services.registry.production())!.id;

describe('promotion requests', () => {
  it('needs a second admin: the requesting key can neither approve nor reject, and nothing changes', async () => {
    const id = await register(await tinyBundle());
    const requestId = await request(id);
    const own = await t.gql(APPROVE, { id: requestId, reason: 'mine' }, t.keys.ADMIN);
    expect(errorCode(own)).toBe('FORBIDDEN');
    expect(own.errors?.[0].message).toMatch(/two admins/);
    expect(own.errors?.[0].message).toMatch(/single admin key cannot promote/);
    expect(errorCode(await t.gql(REJECT, { id: requestId, reason: 'mine' }, t.keys.ADMIN))).toBe('FORBIDDEN');
    expect(await stageOf(id)).toBe('CANDIDATE');
    expect(ok(await t.gql(READ, { id: requestId }, t.keys.AUDITOR)).promotionRequest).toMatchObject({ status: 'PENDING', decidedBy: null, comparison: null });
    // The database itself refuses the same key on both sides.
    await expect(t.services.db.promotionRequest.update({ where: { id: requestId }, data: { status: 'REJECTED', decidedById: t.keyId(t.keys.ADMIN), decisionReason: 'x', decidedAt: new Date() } })).rejects.toThrow();
    // One open request per version; investigators and auditors cannot ask or decide.
    expect(errorCode(await t.gql(REQUEST, { id, reason: 'again' }, t.keys.ADMIN))).toBe('CONFLICT');
    expect(errorCode(await t.gql(APPROVE, { id: requestId, reason: 'x' }, t.keys.AUDITOR))).toBe('FORBIDDEN');
    // A second admin rejects it, with a reason; a decided request cannot be decided again.
    expect(errorCode(await t.gql(REJECT, { id: requestId, reason: '  ' }, t.secondKeys.ADMIN))).toBe('BAD_USER_INPUT');
    const rejected = ok(await t.gql(REJECT, { id: requestId, reason: 'not before the audit' }, t.secondKeys.ADMIN)).rejectPromotion;
    expect(rejected).toEqual({ id: requestId, status: 'REJECTED', decisionReason: 'not before the audit', decidedBy: { name: 'test admin 2' } });
    const again = await t.gql(APPROVE, { id: requestId, reason: 'changed my mind' }, t.secondKeys.ADMIN);
    expect(errorCode(again)).toBe('CONFLICT');
    expect(again.errors?.[0].message).toMatch(/already rejected/);
    expect(await stageOf(id)).toBe('CANDIDATE');
    expect(errorCode(await t.gql(APPROVE, { id: '00000000-0000-0000-0000-000000000000', reason: 'x' }, t.secondKeys.ADMIN))).toBe('NOT_FOUND');
    const actions = (await t.services.db.auditEvent.findMany({ where: { entityId: id }, orderBy: { seq: 'asc' } })).map((e) => e.action);
    expect(actions).toEqual(['modelVersion.register', 'promotion.request', 'promotion.reject']);
  });

  it('refuses a candidate worse than production beyond the tolerance unless the approver overrides, and stores the comparison', async () => {
    // Production for this comparison is the committed baseline: fixed weights that classify these eye
    // crops well, so the inverted candidate is worse on every run (two models trained inside the test
    // are not reliably apart: training draws its initial weights and dropout unseeded).
    const reference = await register(new Uint8Array(await fs.readFile(t.services.config.baselineModelPath)));
    await t.services.registry.promote({ system: 'test' }, reference, 'reference for the metric gate');
    const before = await production();
    expect(before).toBe(reference);
    const worse = await register(await invertedBundle());
    const requestId = await request(worse, 'new architecture');
    const refused = await t.gql(APPROVE, { id: requestId, reason: 'looks fine' }, t.secondKeys.ADMIN);
    expect(errorCode(refused)).toBe('CONFLICT');
    expect(refused.errors?.[0].extensions?.reason).toBe('METRIC_GATE');
    expect(refused.errors?.[0].message).toMatch(/accuracy .* below production/);
    expect(refused.errors?.[0].message).toMatch(/overrideReason/);
    expect(await production()).toBe(before);
    expect(ok(await t.gql(READ, { id: requestId }, t.keys.ADMIN)).promotionRequest.status).toBe('PENDING');

    const approved = ok(await t.gql(APPROVE, { id: requestId, reason: 'field trial', override: 'accepted for a supervised field trial' }, t.secondKeys.ADMIN)).approvePromotion;
    expect(approved).toMatchObject({ status: 'APPROVED', modelVersionId: worse });
    expect(await production()).toBe(worse);
    const stored = ok(await t.gql(READ, { id: requestId }, t.keys.AUDITOR)).promotionRequest;
    expect(stored).toMatchObject({ overrideReason: 'accepted for a supervised field trial', decisionReason: 'field trial', requestedBy: { name: 'test admin' }, decidedBy: { name: 'test admin 2' } });
    const c = stored.comparison;
    expect(c).toMatchObject({ productionVersionId: before, n: 60, passed: false, tolerance: { accuracy: 0.01, calibrationError: 0.02, recallGap: 0.02 } });
    expect(c.comparedOn).toMatch(/60 images/);
    expect(c.candidate.accuracy).toBeLessThan(c.production.accuracy - 0.01);
    expect(c.failures.some((f: string) => f.startsWith('accuracy'))).toBe(true);
    expect(c.candidate.recallGap).toBeCloseTo(Math.abs(c.candidate.recallFemale - c.candidate.recallMale), 10);
    // Rollback stays one step, by one admin.
    expect(ok(await t.gql(`mutation { rollbackProduction(reason: "worse in the field") { id } }`, {}, t.keys.ADMIN)).rollbackProduction.id).toBe(before);
    await t.services.registry.rollback({ system: 'test' }, 'back to the test baseline for the next tests');
  }, 60_000);

  it('approves a candidate no worse than production without an override, with the figures stored', async () => {
    const same = await register(await tinyBundle());
    const requestId = await request(same, 'retrained with the same recipe');
    const approved = ok(await t.gql(APPROVE, { id: requestId, reason: 'matches production' }, t.secondKeys.ADMIN)).approvePromotion;
    expect(approved.status).toBe('APPROVED');
    const stored = ok(await t.gql(READ, { id: requestId }, t.keys.ADMIN)).promotionRequest;
    expect(stored.overrideReason).toBeNull();
    expect(stored.comparison).toMatchObject({ passed: true, failures: [], n: 60 });
    expect(stored.comparison.candidate.accuracy).toBeCloseTo(stored.comparison.production.accuracy, 10);
    expect(await production()).toBe(same);
    const event = await t.services.db.auditEvent.findFirstOrThrow({ where: { action: 'promotion.approve', entityId: same } });
    expect(event.details).toMatchObject({ promotionRequestId: requestId, gatePassed: true, reason: 'matches production' });
  }, 60_000);

  it('answers a typed error when the candidate was archived after the request, and changes nothing', async () => {
    const id = await register(await tinyBundle());
    const requestId = await request(id);
    ok(await t.gql(`mutation($id: ID!) { archiveModelVersion(id: $id, reason: "superseded") { stage } }`, { id }, t.secondKeys.ADMIN));
    const before = await production();
    const res = await t.gql(APPROVE, { id: requestId, reason: 'go' }, t.secondKeys.ADMIN);
    expect(errorCode(res)).toBe('CONFLICT');
    expect(res.errors?.[0].extensions?.reason).toBe('CANDIDATE_ARCHIVED');
    expect(res.errors?.[0].message).toMatch(/archived/);
    expect(await production()).toBe(before);
    expect(ok(await t.gql(READ, { id: requestId }, t.keys.ADMIN)).promotionRequest.status).toBe('PENDING');
  });

  it('lets exactly one of two concurrent approvals of the same request promote; the other gets CONFLICT', async () => {
    const id = await register(await tinyBundle());
    const requestId = await request(id);
    const third = ok(await t.gql(`mutation { createApiKey(input: { name: "test admin 3", role: ADMIN }) { secret } }`, {}, t.keys.ADMIN)).createApiKey.secret;
    const results = await Promise.all([
      t.gql(APPROVE, { id: requestId, reason: 'first' }, t.secondKeys.ADMIN),
      t.gql(APPROVE, { id: requestId, reason: 'second' }, third),
    ]);
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    expect(results.map(errorCode).filter(Boolean)).toEqual(['CONFLICT']);
    expect(await production()).toBe(id);
    expect(await t.services.db.modelStageChange.count({ where: { modelVersionId: id, kind: 'PROMOTE' } })).toBe(1);
  }, 60_000);
});
