// Idempotent writes: an Idempotency-Key header on uploads and classifications makes a retry of
// the same request return the original result (instead of CONFLICT or a second record); the same
// key with a different request is IDEMPOTENCY_KEY_REUSED; a failed request does not use the key up.
import { adminQuery } from '../support/db.js';
import { errorCode, ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { syntheticImage } from '../support/images.js';

const CLASSIFY_IMAGE = `mutation($caseId: ID!, $file: Upload!, $note: String) { classifyImage(caseId: $caseId, file: $file, note: $note) { evidence { id } prediction { id } } }`;
const ADD_EVIDENCE = `mutation($caseId: ID!, $file: Upload!) { addEvidence(caseId: $caseId, file: $file) { id } }`;
const CLASSIFY_EVIDENCE = `mutation($id: ID!) { classifyEvidence(evidenceId: $id) { id } }`;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await serveBaseline(t);
}, 60_000);
afterAll(() => t.stop());

const newCase = async () => ok(await t.gql(`mutation { createCase(input: { title: "idempotent" }) { id } }`)).createCase.id as string;
const withKey = (key: string) => ({ 'apollo-require-preflight': 'true', 'idempotency-key': key });
const upload = (query: string, vars: Record<string, unknown>, bytes: Buffer, key?: string, apiKey = t.keys.INVESTIGATOR) =>
  t.upload(query, { ...vars, file: null }, { file: { name: 'eye.jpg', bytes } }, apiKey, key ? withKey(key) : undefined);
const count = async (sql: string) => (await adminQuery(sql, t.db.name)).rows[0].n as number;

describe('Idempotency-Key', () => {
  it('returns the original classifyImage result to a retry, recording once; without a key a retry is CONFLICT', async () => {
    const caseId = await newCase();
    const bytes = await syntheticImage(501, 'jpeg', 64);
    const first = ok(await upload(CLASSIFY_IMAGE, { caseId, note: 'n' }, bytes, 'retry-1')).classifyImage;
    const again = ok(await upload(CLASSIFY_IMAGE, { caseId, note: 'n' }, bytes, 'retry-1')).classifyImage;
    expect(again).toEqual(first);
    expect(await count(`SELECT count(*)::int AS n FROM "Evidence" WHERE "caseId" = '${caseId}'`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM "Prediction" WHERE "caseId" = '${caseId}'`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM "AuditEvent" WHERE "entityId" IN ('${first.evidence.id}', '${first.prediction.id}')`)).toBe(2);

    expect(errorCode(await upload(CLASSIFY_IMAGE, { caseId, note: 'n' }, bytes))).toBe('CONFLICT');
  });

  it('refuses the same key for different bytes, arguments or operation, and keys are per API key', async () => {
    const caseId = await newCase();
    const bytes = await syntheticImage(502, 'jpeg', 64);
    ok(await upload(CLASSIFY_IMAGE, { caseId }, bytes, 'reuse-1'));
    const otherBytes = await upload(CLASSIFY_IMAGE, { caseId }, await syntheticImage(503, 'jpeg', 64), 'reuse-1');
    expect(errorCode(otherBytes)).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(otherBytes.errors?.[0]?.message).toMatch(/already used for a different request \(classifyImage\)/);
    expect(errorCode(await upload(CLASSIFY_IMAGE, { caseId, note: 'other' }, bytes, 'reuse-1'))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(errorCode(await upload(ADD_EVIDENCE, { caseId }, bytes, 'reuse-1'))).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await count(`SELECT count(*)::int AS n FROM "Evidence" WHERE "caseId" = '${caseId}'`)).toBe(1);

    // Another API key has its own keys.
    const created = await t.services.apiKeys.create({ system: 'test' }, { name: 'second investigator', role: 'INVESTIGATOR' });
    const other = created.secret;
    // (A member of the case: others may not see it at all.)
    ok(await t.gql(`mutation($c: ID!, $k: ID!) { addCaseMember(caseId: $c, apiKeyId: $k) { apiKeyId } }`, { c: caseId, k: created.id }));
    ok(await upload(ADD_EVIDENCE, { caseId }, await syntheticImage(504, 'jpeg', 64), 'reuse-1', other));
  });

  it('does not use the key up when the request fails, and rejects malformed keys', async () => {
    const caseId = await newCase();
    const bytes = await syntheticImage(505, 'jpeg', 64);
    expect(errorCode(await upload(ADD_EVIDENCE, { caseId: '00000000-0000-0000-0000-000000000000' }, bytes, 'fails-first'))).toBe('NOT_FOUND');
    expect(errorCode(await upload(ADD_EVIDENCE, { caseId }, Buffer.from('not an image'), 'fails-first'))).toBe('UNSUPPORTED_MEDIA_TYPE');
    const evidence = ok(await upload(ADD_EVIDENCE, { caseId }, bytes, 'fails-first')).addEvidence;
    expect(ok(await upload(ADD_EVIDENCE, { caseId }, bytes, 'fails-first')).addEvidence).toEqual(evidence);

    expect(errorCode(await upload(ADD_EVIDENCE, { caseId }, bytes, 'has spaces in it'))).toBe('BAD_USER_INPUT');
    expect(errorCode(await upload(ADD_EVIDENCE, { caseId }, bytes, 'x'.repeat(201)))).toBe('BAD_USER_INPUT');
  });

  it('gives concurrent duplicates one record and the same answer', async () => {
    const caseId = await newCase();
    const bytes = await syntheticImage(506, 'jpeg', 64);
    const results = await Promise.all(Array.from({ length: 4 }, () => upload(CLASSIFY_IMAGE, { caseId }, bytes, 'concurrent-1')));
    const answers = results.map((r) => ok(r).classifyImage);
    for (const a of answers) expect(a).toEqual(answers[0]);
    expect(await count(`SELECT count(*)::int AS n FROM "Prediction" WHERE "caseId" = '${caseId}'`)).toBe(1);
  });

  it('makes classifyEvidence retry-safe too', async () => {
    const caseId = await newCase();
    const evidence = ok(await upload(ADD_EVIDENCE, { caseId }, await syntheticImage(507, 'jpeg', 64))).addEvidence;
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${t.keys.INVESTIGATOR}`, 'idempotency-key': 'classify-ev-1' };
    const send = () => fetch(t.url, { method: 'POST', headers, body: JSON.stringify({ query: CLASSIFY_EVIDENCE, variables: { id: evidence.id } }) }).then((r) => r.json() as Promise<{ data: { classifyEvidence: { id: string } } }>);
    const a = await send();
    const b = await send();
    expect(b.data.classifyEvidence.id).toBe(a.data.classifyEvidence.id);
    expect(await count(`SELECT count(*)::int AS n FROM "Prediction" WHERE "evidenceId" = '${evidence.id}'`)).toBe(1);
    // Without the key, classifying again is a new prediction (that is what the caller asked for).
    ok(await t.gql(CLASSIFY_EVIDENCE, { id: evidence.id }));
    expect(await count(`SELECT count(*)::int AS n FROM "Prediction" WHERE "evidenceId" = '${evidence.id}'`)).toBe(2);
  });

  it('forgets keys after their time to live', async () => {
    const before = await count(`SELECT count(*)::int AS n FROM "IdempotencyKey"`);
    expect(before).toBeGreaterThan(0);
    expect(await t.services.idempotency.expire(3_600_000)).toBe(0);
    expect(await t.services.idempotency.expire(0)).toBe(before);
    expect(await count(`SELECT count(*)::int AS n FROM "IdempotencyKey"`)).toBe(0);
  });
});
