// Contention: racing stage changes answer CONFLICT (never INTERNAL) and leave exactly one
// production version, 50 times over, on the service and over HTTP.
import { AppError } from '../../src/errors.js';
import { errorCode, startTestApp, type TestApp } from '../support/harness.js';
import { tinyBundle, tinyBundleFile } from '../support/models.js';
import { PROMOTION } from '../support/promotion.js';

describe('promotion races', () => {
  let t: TestApp;
  let bundle: Uint8Array;
  beforeAll(async () => {
    t = await startTestApp();
    bundle = await tinyBundle();
    await t.services.registry.ensureBaseline(await tinyBundleFile());
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  const candidates = (n: number) =>
    Promise.all(Array.from({ length: n }, () => t.services.db.$transaction((tx) => t.services.registry.register(tx, { system: 'test' }, { bundle }), { timeout: 30_000 }).then((mv) => mv.id)));
  const productionCount = () => t.services.db.modelVersion.count({ where: { stage: 'PRODUCTION' } });

  it('answers a 5-way promotion race with one winner and CONFLICT for the rest, 50 times', async () => {
    const admin = { keyId: (await t.services.db.apiKey.findFirstOrThrow({ where: { role: 'ADMIN' } })).id, name: 'test admin', role: 'ADMIN' as const };
    const outcomes = { won: 0, conflict: 0 };
    for (let round = 0; round < 50; round++) {
      const ids = await candidates(5);
      const results = await Promise.allSettled(ids.map((id) => t.services.registry.promote(admin, id, `race ${round}`)));
      for (const r of results) {
        if (r.status === 'fulfilled') outcomes.won++;
        else {
          expect(r.reason).toBeInstanceOf(AppError);
          expect((r.reason as AppError).code).toBe('CONFLICT');
          outcomes.conflict++;
        }
      }
      expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
      expect(await productionCount()).toBe(1);
    }
    expect(outcomes.won + outcomes.conflict).toBe(250);
  }, 240_000);

  it('answers the same race over HTTP with CONFLICT, never INTERNAL', async () => {
    const ids = await candidates(5);
    // Promotion is a request by one admin and an approval by another: the approvals race.
    const requests = await Promise.all(ids.map(async (id) => (await t.gql(PROMOTION.REQUEST, { id, reason: 'http race' }, t.keys.ADMIN)).data!.requestPromotion.id as string));
    const results = await Promise.all(requests.map((id) => t.gql(PROMOTION.APPROVE, { id, reason: 'http race', override: 'no data set to compare on in this test' }, t.secondKeys.ADMIN)));
    expect(results.filter((r) => !r.errors).length).toBeGreaterThanOrEqual(1);
    for (const r of results) if (r.errors) expect(errorCode(r)).toBe('CONFLICT');
    expect(await productionCount()).toBe(1);
  });
});
