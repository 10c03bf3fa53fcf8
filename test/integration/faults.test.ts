// Dependency faults against the real PostgreSQL and the real S3 server: sessions terminated under
// classify traffic (no crash, nothing half-recorded), the database and the object store made
// unreachable through a TCP proxy (SERVICE_UNAVAILABLE with HTTP 503 and Retry-After, naming the
// dependency; /readyz says which one), and recovery once they are back.
import { startTcpProxy, type TcpProxy, viaProxy } from '../../bench/support/tcp-proxy.js';
import { createLogger } from '../../src/logger.js';
import { adminQuery } from '../support/db.js';
import { errorCode, type GqlResult, ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { syntheticImage } from '../support/images.js';

const CLASSIFY_IMAGE = `mutation($caseId: ID!, $file: Upload!) { classifyImage(caseId: $caseId, file: $file) { evidence { id image { sha256 } } prediction { id } } }`;
const ADD_EVIDENCE = `mutation($caseId: ID!, $file: Upload!) { addEvidence(caseId: $caseId, file: $file) { id } }`;

const newCase = async (t: TestApp) => ok(await t.gql(`mutation { createCase(input: { title: "faults" }) { id } }`)).createCase.id as string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startWithBaseline(routes: Parameters<typeof startTestApp>[1] = {}): Promise<TestApp> {
  const t = await startTestApp({}, routes);
  await serveBaseline(t);
  return t;
}

/** Retries `attempt` until it gives a result without errors (the pools reconnect on next use). */
async function eventually(attempt: () => Promise<GqlResult>, tries = 40): Promise<GqlResult> {
  let last!: GqlResult;
  for (let i = 0; i < tries; i++) {
    last = await attempt();
    if (!last.errors?.length) return last;
    await sleep(250);
  }
  return last;
}

describe('sessions terminated under classify traffic', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startWithBaseline();
  }, 60_000);
  afterAll(() => t.stop());

  it('keeps the process up and records every answered request fully or not at all', async () => {
    const caseId = await newCase(t);
    const images = await Promise.all(Array.from({ length: 36 }, (_, i) => syntheticImage(1000 + i, 'jpeg', 64)));
    let traffic = true;
    let terminated = 0;
    const terminator = (async () => {
      while (traffic) {
        const { rows } = await adminQuery(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = '${t.db.name}' AND pid <> pg_backend_pid()`);
        terminated += rows[0].n;
        await sleep(40);
      }
    })();
    const answers: Array<{ sha?: string; result: GqlResult }> = [];
    let next = 0;
    const client = async () => {
      for (let i = next++; i < images.length; i = next++) {
        const result = await t.upload(CLASSIFY_IMAGE, { caseId, file: null }, { file: { name: `e${i}.jpg`, bytes: images[i] } });
        answers.push({ result, sha: result.data?.classifyImage?.evidence.image.sha256 });
      }
    };
    await Promise.all([client(), client(), client()]);
    traffic = false;
    await terminator;

    expect(terminated).toBeGreaterThan(0);
    expect(answers).toHaveLength(images.length);
    // Every error a client saw is a retryable outage, never an internal error.
    const codes = answers.filter((a) => a.result.errors).map((a) => errorCode(a.result));
    for (const code of codes) expect(code).toBe('SERVICE_UNAVAILABLE');
    for (const a of answers.filter((x) => x.result.errors)) expect(a.result.status).toBe(503);

    // The service recovers: the next request succeeds.
    const after = await eventually(() => t.upload(CLASSIFY_IMAGE, { caseId, file: null }, { file: { name: 'after.jpg', bytes: images[0] } }));
    expect(after.errors?.[0]?.extensions?.code ?? 'ok').toMatch(/ok|CONFLICT/);

    // Every answered success is fully recorded: evidence, image, prediction and both audit events.
    const successes = answers.filter((a) => !a.result.errors).map((a) => a.result.data!.classifyImage);
    for (const s of successes) {
      const { rows } = await adminQuery(
        `SELECT (SELECT count(*) FROM "Prediction" WHERE id = '${s.prediction.id}' AND "evidenceId" = '${s.evidence.id}')::int AS p,
                (SELECT count(*) FROM "AuditEvent" WHERE "entityId" IN ('${s.evidence.id}', '${s.prediction.id}'))::int AS a`,
        t.db.name,
      );
      expect(rows[0]).toEqual({ p: 1, a: 2 });
    }
    // And nothing is half-recorded, whatever the answer: each evidence row has its image (row and
    // object), exactly one prediction and its two audit events.
    const { rows: evidence } = await adminQuery(
      `SELECT e.id, i."objectKey",
              (SELECT count(*) FROM "Prediction" p WHERE p."evidenceId" = e.id)::int AS predictions,
              (SELECT count(*) FROM "AuditEvent" a WHERE a."entityId" = e.id::text OR a."entityId" IN (SELECT p.id::text FROM "Prediction" p WHERE p."evidenceId" = e.id))::int AS events
         FROM "Evidence" e JOIN "Image" i ON i.id = e."imageId" WHERE e."caseId" = '${caseId}'`,
      t.db.name,
    );
    expect(evidence.length).toBeGreaterThanOrEqual(successes.length);
    for (const e of evidence) {
      expect({ predictions: e.predictions, events: e.events }).toEqual({ predictions: 1, events: 2 });
      expect(await t.services.store.exists(e.objectKey)).toBe(true);
    }
    expect((await t.services.audit.verify()).ok).toBe(true);
  }, 120_000);
});

describe('database unreachable', () => {
  const logLines: Array<Record<string, unknown>> = [];
  let t: TestApp;
  let proxy: TcpProxy;
  beforeAll(async () => {
    const admin = new URL(process.env.TEST_DATABASE_URL!);
    proxy = await startTcpProxy(admin.hostname, Number(admin.port || 5432));
    t = await startWithBaseline({ databaseUrl: (url) => viaProxy(url, proxy), logger: createLogger('warn', {}, (line) => logLines.push(JSON.parse(line))) });
  }, 60_000);
  afterAll(async () => {
    await proxy.up();
    await t.stop();
    await proxy.close();
  });

  it('answers SERVICE_UNAVAILABLE (503, Retry-After) naming the database, and recovers', async () => {
    const caseId = await newCase(t);
    const unusedKey = (await t.services.apiKeys.create({ system: 'test' }, { name: 'not cached yet', role: 'INVESTIGATOR' })).secret;
    await proxy.down();

    const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.INVESTIGATOR}` }, body: JSON.stringify({ query: `mutation { createCase(input: { title: "down" }) { id } }` }) });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = (await res.json()) as { errors: Array<{ message: string; extensions: Record<string, unknown> }> };
    expect(body.errors[0].extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', dependency: 'database', retryAfterSeconds: 5 });
    expect(body.errors[0].message).toMatch(/database is unavailable/);

    // A key that is not cached needs the database to build the request context: 503, not a bare 500.
    const ctx = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${unusedKey}`, 'x-request-id': 'ctx-fail-1' }, body: JSON.stringify({ query: '{ viewer { keyId } }' }) });
    expect(ctx.status).toBe(503);
    expect(ctx.headers.get('retry-after')).toBe('5');
    expect(((await ctx.json()) as { errors: Array<{ extensions: Record<string, unknown> }> }).errors[0].extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', dependency: 'database' });
    expect(logLines).toContainEqual(expect.objectContaining({ level: 'error', msg: 'could not build the request context', requestId: 'ctx-fail-1', dependency: 'database' }));
    // Outages in resolvers are logged too, as warnings naming the dependency, with the request id.
    expect(logLines).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'dependency unavailable', dependency: 'database', requestId: expect.any(String) }));

    // An upload: the object may be stored, but no row is, and the answer names the database.
    const upload = await t.upload(ADD_EVIDENCE, { caseId, file: null }, { file: { name: 'x.png', bytes: await syntheticImage(4242) } });
    expect(upload.status).toBe(503);
    expect(upload.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', dependency: 'database' });

    const ready = await fetch(t.url.replace(/graphql$/, 'readyz'));
    expect(ready.status).toBe(503);
    const readyBody = (await ready.json()) as { checks: Record<string, string> };
    expect(readyBody.checks.objectStore).toBe('ok');
    expect(readyBody.checks.database).not.toBe('ok');

    await proxy.up();
    const back = await eventually(() => t.gql(`mutation { createCase(input: { title: "back" }) { id } }`));
    expect(back.errors).toBeUndefined();
    expect(ok(await t.gql('{ viewer { keyId } }', {}, unusedKey)).viewer.keyId).toBeTruthy();
    expect((await fetch(t.url.replace(/graphql$/, 'readyz'))).status).toBe(200);
    const { rows } = await adminQuery(`SELECT count(*)::int AS n FROM "Evidence" WHERE "caseId" = '${caseId}'`, t.db.name);
    expect(rows[0].n).toBe(0);
  }, 90_000);
});

describe('object store unreachable', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy('127.0.0.1', Number(process.env.TEST_S3_PORT));
    t = await startWithBaseline({ s3Port: proxy.port });
  }, 60_000);
  afterAll(async () => {
    await proxy.up();
    await t.stop();
    await proxy.close();
  });

  it('answers SERVICE_UNAVAILABLE (503, Retry-After) naming the object store, writes no row, and recovers', async () => {
    const caseId = await newCase(t);
    const bytes = await syntheticImage(777, 'jpeg', 64);
    await proxy.down();
    for (const query of [ADD_EVIDENCE, CLASSIFY_IMAGE]) {
      const r = await t.upload(query, { caseId, file: null }, { file: { name: 'e.jpg', bytes } });
      expect(r.status).toBe(503);
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', dependency: 'objectStore', retryAfterSeconds: 5 });
      expect(r.errors?.[0]?.message).toMatch(/object store is unavailable/);
    }
    const ready = await fetch(t.url.replace(/graphql$/, 'readyz'));
    expect(ready.status).toBe(503);
    const readyBody = (await ready.json()) as { checks: Record<string, string> };
    expect(readyBody.checks.database).toBe('ok');
    expect(readyBody.checks.objectStore).toMatch(/object store unavailable/);
    const { rows } = await adminQuery(`SELECT (SELECT count(*) FROM "Evidence")::int AS e, (SELECT count(*) FROM "Image")::int AS i`, t.db.name);
    expect(rows[0]).toEqual({ e: 0, i: 0 });

    await proxy.up();
    const back = await eventually(() => t.upload(CLASSIFY_IMAGE, { caseId, file: null }, { file: { name: 'e.jpg', bytes } }));
    expect(back.errors).toBeUndefined();
    expect((await fetch(t.url.replace(/graphql$/, 'readyz'))).status).toBe(200);
  }, 90_000);
});
