// Operation limits, bounded error output, text limits, rate limits, and the error model: a walk
// over malformed requests of every kind, none of which may come back INTERNAL_SERVER_ERROR.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { errorCode, type GqlResult, ok, startTestApp, type TestApp } from '../support/harness.js';

const ZERO = '00000000-0000-0000-0000-000000000000';

let t: TestApp;
beforeAll(async () => {
  const { loadConfig } = await import('../../src/config.js');
  const defaults = loadConfig({ ...process.env, S3_ENDPOINT: '' });
  t = await startTestApp({ rateLimits: { ...defaults.rateLimits, explainPerMinute: 3 } });
});
afterAll(async () => {
  await t?.stop();
});

interface Raw {
  status: number;
  text: string;
  body: GqlResult & { data?: unknown };
}

/** A POST with any body (not only well-formed GraphQL) and the raw answer. */
async function post(body: unknown, key: string | null = t.keys.ADMIN, headers: Record<string, string> = {}): Promise<Raw> {
  const res = await fetch(t.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Raw['body'];
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { status: res.status, errors: [{ message: text }] };
  }
  return { status: res.status, text, body: parsed };
}

const codes = (r: Raw) => (r.body.errors ?? []).map((e) => e.extensions?.code);
const nested = (depth: number) => `{ cases { nodes { ${'evidence { nodes { case { '.repeat(depth)} id ${'} } } '.repeat(depth)} } } }`;

describe('operation limits', () => {
  it('refuses deep, wide, long and heavy operations with a validation error that names the limit', async () => {
    const deep = await post({ query: nested(8) });
    expect(deep.status).toBe(400);
    expect(deep.body.errors?.[0].extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'depth' });

    const aliases = await post({ query: `{ ${Array.from({ length: 25 }, (_, i) => `a${i}: viewer { role }`).join(' ')} }` });
    expect(aliases.status).toBe(400);
    expect(codes(aliases)).toContain('GRAPHQL_VALIDATION_FAILED');
    expect(aliases.body.errors?.some((e) => e.extensions?.limit === 'aliases')).toBe(true);

    // verifyAuditChain rereads the whole log: two in one request are allowed, three cost too much.
    const two = await post({ query: `{ a: verifyAuditChain { ok } b: verifyAuditChain { ok } }` });
    expect(two.body.errors).toBeUndefined();
    const three = await post({ query: `{ a: verifyAuditChain { ok } b: verifyAuditChain { ok } c: verifyAuditChain { ok } }` });
    expect(three.status).toBe(400);
    expect(three.body.errors?.[0].extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost', max: 5000 });

    // Pages cost per requested item, whether `first` is a literal or a variable.
    const pages = `query($n: Int) { cases(first: $n) { nodes { evidence(first: $n) { nodes { predictions { id decision probMale } } } } } }`;
    const wide = await post({ query: pages, variables: { n: 100 } }, t.keys.INVESTIGATOR);
    expect(wide.body.errors?.[0].extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost' });
    const narrow = await post({ query: pages, variables: { n: 5 } }, t.keys.INVESTIGATOR);
    expect(narrow.body.errors).toBeUndefined();

    const directives = await post({ query: `{ viewer ${'@include(if: true) '.repeat(12)} { role } }` });
    expect(directives.body.errors?.some((e) => e.extensions?.limit === 'directives')).toBe(true);

    const tokens = await post({ query: `{ viewer { ${'role '.repeat(3000)} } }` });
    expect(tokens.status).toBe(400);
    expect(codes(tokens)[0]).toMatch(/^GRAPHQL_(PARSE|VALIDATION)_FAILED$/);
    expect(tokens.body.errors?.[0].message).toMatch(/token/i);
  });

  it('does not suggest field names', async () => {
    const r = await post({ query: `{ viewr { role } }` });
    expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(r.text).not.toMatch(/Did you mean/);
  });

  it('answers introspection only to callers with a key', async () => {
    const anonymous = await post({ query: `{ __schema { queryType { name } } }` }, null);
    expect(anonymous.status).toBe(401);
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
    const nestedType = await post({ query: `{ __type(name: "Case") { fields { name } } }` }, null);
    expect(codes(nestedType)).toEqual(['UNAUTHENTICATED']);
    const withKey = await post({ query: `{ __schema { queryType { name } } }` }, t.keys.AUDITOR);
    expect(withKey.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });

  it('bounds error output: 40,000 unknown input keys give a small answer with few errors', async () => {
    const input: Record<string, string> = { title: 't' };
    for (let i = 0; i < 40_000; i++) input[`unknownKey${i}`] = 'x';
    const r = await post({ query: `mutation($input: CreateCaseInput!) { createCase(input: $input) { id } }`, variables: { input } }, t.keys.INVESTIGATOR);
    expect(r.status).toBeLessThan(500);
    expect(codes(r).every((c) => c === 'BAD_USER_INPUT')).toBe(true);
    expect(r.body.errors!.length).toBeLessThanOrEqual(10);
    expect(r.text.length).toBeLessThan(20_000);
    for (const e of r.body.errors!) expect(e.message.length).toBeLessThanOrEqual(500);
  });
});

describe('operation limits over WebSocket', () => {
  /** One operation over graphql-ws: the first result or the errors. */
  async function overWs(query: string, key: string | null): Promise<GqlResult> {
    const client = createClient({ url: t.app.wsUrl, webSocketImpl: WebSocket, connectionParams: key ? { authorization: `Bearer ${key}` } : {}, retryAttempts: 0 });
    try {
      return await new Promise<GqlResult>((resolve, reject) => {
        client.subscribe(
          { query },
          {
            next: (msg) => resolve({ status: 200, data: (msg.data ?? undefined) as Record<string, unknown> | undefined, errors: msg.errors as GqlResult['errors'] }),
            error: (err) => (Array.isArray(err) ? resolve({ status: 200, errors: err as GqlResult['errors'] }) : reject(err)),
            complete: () => resolve({ status: 200 }),
          },
        );
      });
    } finally {
      await client.dispose();
    }
  }

  it('applies the same limits and the introspection rule to operations sent over graphql-ws', async () => {
    expect(errorCode(await overWs(`{ __schema { queryType { name } } }`, null))).toBe('UNAUTHENTICATED');
    const deep = await overWs(nested(8), t.keys.INVESTIGATOR);
    expect(deep.errors?.[0].extensions).toMatchObject({ limit: 'depth' });
    const heavy = await overWs(`{ a: verifyAuditChain { ok } b: verifyAuditChain { ok } c: verifyAuditChain { ok } }`, t.keys.AUDITOR);
    expect(heavy.errors?.[0].extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost' });
    expect(errorCode(await overWs(`{ viewer { ${'role '.repeat(3000)} } }`, t.keys.AUDITOR))).toBe('GRAPHQL_PARSE_FAILED');
    expect(errorCode(await overWs(`{ viewr { role } }`, t.keys.AUDITOR))).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(ok(await overWs(`{ viewer { role } }`, t.keys.AUDITOR))).toEqual({ viewer: { role: 'AUDITOR' } });
  });
});

describe('text limits', () => {
  it('refuses over-long free text everywhere it is accepted, and states the limits in the schema', async () => {
    const caseId = ok(await t.gql(`mutation { createCase(input: { title: "text limits" }) { id } }`)).createCase.id;
    const long = (n: number) => 'x'.repeat(n);
    const attempts: Array<[string, Record<string, unknown>, string]> = [
      [`mutation($id: ID!, $r: String) { closeCase(id: $id, reason: $r) { id } }`, { id: caseId, r: long(100_000) }, t.keys.INVESTIGATOR],
      [`mutation($t: String!) { createCase(input: { title: $t }) { id } }`, { t: long(201) }, t.keys.INVESTIGATOR],
      [`mutation($d: String) { createCase(input: { title: "d", description: $d }) { id } }`, { d: long(10_001) }, t.keys.INVESTIGATOR],
      [`query($q: String) { cases(filter: { text: $q }) { nodes { id } } }`, { q: long(201) }, t.keys.INVESTIGATOR],
      [`query($r: String!) { caseByReference(reference: $r) { id } }`, { r: long(65) }, t.keys.INVESTIGATOR],
      [`query($a: String) { cases(after: $a) { nodes { id } } }`, { a: long(513) }, t.keys.INVESTIGATOR],
      [`mutation($r: String!) { requestPromotion(modelVersionId: "${ZERO}", reason: $r) { id } }`, { r: long(1001) }, t.keys.ADMIN],
      [`mutation($r: String!) { approvePromotion(requestId: "${ZERO}", reason: "ok", overrideReason: $r) { id } }`, { r: long(1001) }, t.keys.ADMIN],
      [`mutation($r: String!) { reviewPrediction(predictionId: "${ZERO}", verdict: CONFIRMED, reason: $r) { id } }`, { r: long(1001) }, t.keys.INVESTIGATOR],
      [`mutation($n: String!) { createApiKey(input: { name: $n, role: AUDITOR }) { secret } }`, { n: long(101) }, t.keys.ADMIN],
      [`mutation($n: String!) { createDataset(input: { name: $n }) { id } }`, { n: long(101) }, t.keys.ADMIN],
      [`query($a: String) { auditEvents(filter: { action: $a }) { nodes { seq } } }`, { a: long(201) }, t.keys.AUDITOR],
    ];
    for (const [query, variables, key] of attempts) {
      const r = await t.gql(query, variables, key);
      expect([query, errorCode(r)]).toEqual([query, 'BAD_USER_INPUT']);
      expect(r.errors![0].message.length).toBeLessThanOrEqual(500);
    }
    // Nothing of the refused close reached the audit log.
    const closes = await t.services.db.auditEvent.count({ where: { action: 'case.close', entityId: caseId } });
    expect(closes).toBe(0);

    const schema = (await import('../../src/graphql/schema.js')).printSchemaSdl;
    const sdl = await schema();
    expect(sdl).toMatch(/At most 1000 characters/);
    expect(sdl).toMatch(/At most 200 characters/);
  });

  it('matches _ and % in the case search text literally', async () => {
    const make = async (title: string) => ok(await t.gql(`mutation($t: String!) { createCase(input: { title: $t }) { id } }`, { t: title })).createCase.id;
    const underscore = await make('wild_card 42');
    await make('wildXcard 42');
    const percent = await make('ratio 100% sure');
    await make('ratio 100 sure');
    const search = async (text: string) => ok(await t.gql(`query($q: String) { cases(first: 100, filter: { text: $q }) { nodes { id } } }`, { q: text })).cases.nodes.map((n: { id: string }) => n.id);
    expect(await search('wild_card')).toEqual([underscore]);
    expect(await search('100%')).toEqual([percent]);
    expect(await search('wild%card')).toEqual([]);
  });
});

describe('rate limits', () => {
  it('refuses a key beyond its budget with RATE_LIMITED and a retry hint; other keys are unaffected', async () => {
    const explain = (key: string) => t.gql(`mutation { explainPrediction(id: "${ZERO}") { url } }`, {}, key);
    for (let i = 0; i < 3; i++) expect(errorCode(await explain(t.keys.INVESTIGATOR))).toBe('NOT_FOUND');
    const limited = await explain(t.keys.INVESTIGATOR);
    expect(errorCode(limited)).toBe('RATE_LIMITED');
    expect(limited.errors![0].extensions).toMatchObject({ limit: 'explain', perMinute: 3 });
    expect(limited.errors![0].extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(limited.errors![0].extensions!.retryAfterSeconds).toBeLessThanOrEqual(60);

    const other = (await t.services.apiKeys.create({ system: 'test' }, { name: 'second investigator', role: 'INVESTIGATOR' })).secret;
    expect(errorCode(await explain(other))).toBe('NOT_FOUND');
    // Callers who may not use the mutation at all are refused for that, not counted.
    expect(errorCode(await explain(t.keys.AUDITOR))).toBe('FORBIDDEN');
  });
});

describe('error model', () => {
  const cursor = (createdAt: string, id = ZERO) => Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
  const malformed: Array<[string, () => Promise<Raw>, string[]]> = [
    ['cursor in year -100000', () => post({ query: `query($a: String) { cases(after: $a) { nodes { id } } }`, variables: { a: cursor('-100000-01-01T00:00:00.000Z') } }, t.keys.INVESTIGATOR), ['BAD_USER_INPUT']],
    ['cursor in year 275000', () => post({ query: `query($a: String) { datasets(after: $a) { nodes { id } } }`, variables: { a: cursor('+275000-01-01T00:00:00.000Z') } }), ['BAD_USER_INPUT']],
    ['cursor with a bad id', () => post({ query: `query($a: String) { trainingRuns(after: $a) { nodes { id } } }`, variables: { a: cursor('2026-01-01T00:00:00.000Z', 'x') } }), ['BAD_USER_INPUT']],
    ['cursor that is not base64 JSON', () => post({ query: `{ modelVersions(after: "%%%") { nodes { id } } }` }), ['BAD_USER_INPUT']],
    ['audit seq beyond bigint', () => post({ query: `{ auditEvents(after: "9999999999999999999") { nodes { seq } } }` }), ['BAD_USER_INPUT']],
    ['audit seq not a number', () => post({ query: `{ auditEvents(after: "-1") { nodes { seq } } }` }), ['BAD_USER_INPUT']],
    ['audit filter date literal out of range', () => post({ query: `{ auditEvents(filter: { from: "+275000-01-01T00:00:00Z" }) { nodes { seq } } }` }), ['GRAPHQL_VALIDATION_FAILED']],
    ['audit filter date variable out of range', () => post({ query: `query($f: DateTimeISO) { auditEvents(filter: { from: $f }) { nodes { seq } } }`, variables: { f: '+275000-01-01T00:00:00Z' } }), ['BAD_USER_INPUT']],
    ['audit filter date beyond PostgreSQL', () => post({ query: `query($f: DateTimeISO) { auditEvents(filter: { from: $f }) { nodes { seq } } }`, variables: { f: '-100000-01-01T00:00:00Z' } }), ['BAD_USER_INPUT']],
    ['page size 0', () => post({ query: `{ datasets(first: 0) { nodes { id } } }` }), ['BAD_USER_INPUT']],
    ['page size beyond Int', () => post({ query: `{ datasets(first: 99999999999) { nodes { id } } }` }), ['GRAPHQL_VALIDATION_FAILED']],
    ['malformed id', () => post({ query: `{ dataset(id: "not-a-uuid") { id } }` }), ['BAD_USER_INPUT']],
    ['NUL in text', () => post({ query: `mutation($t: String!) { createCase(input: { title: $t }) { id } }`, variables: { t: 'a\u0000b' } }, t.keys.INVESTIGATOR), ['BAD_USER_INPUT']],
    ['unsupported persisted query version', () => post({ extensions: { persistedQuery: { version: 2, sha256Hash: 'abc' } } }), ['BAD_REQUEST']],
    ['unknown persisted query', () => post({ extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } }), ['PERSISTED_QUERY_NOT_FOUND']],
    ['persisted query hash mismatch', () => post({ query: '{ viewer { role } }', extensions: { persistedQuery: { version: 1, sha256Hash: 'b'.repeat(64) } } }), ['BAD_REQUEST']],
    ['persisted query of the wrong type', () => post({ extensions: { persistedQuery: 'yes' } }), ['BAD_REQUEST']],
    ['subscription over HTTP POST', () => post({ query: `subscription { trainingRunUpdated(id: "${ZERO}") { id } }` }), ['BAD_REQUEST']],
    ['query that is not a string', () => post({ query: 42 }), ['BAD_REQUEST']],
    ['no query at all', () => post({}), ['BAD_REQUEST']],
    ['variables that are not an object', () => post({ query: '{ viewer { role } }', variables: 'x' }), ['BAD_REQUEST']],
    ['batched request', () => post([{ query: '{ viewer { role } }' }, { query: '{ viewer { role } }' }]), ['BAD_REQUEST']],
    ['body that is not JSON', () => post('{"query": '), ['BAD_REQUEST']],
    ['unknown operation name', () => post({ query: 'query A { viewer { role } }', operationName: 'B' }), ['OPERATION_RESOLUTION_FAILURE']],
    ['several operations without a name', () => post({ query: 'query A { viewer { role } } query B { viewer { role } }' }), ['OPERATION_RESOLUTION_FAILURE']],
    ['syntax error', () => post({ query: '{ viewer { ' }), ['GRAPHQL_PARSE_FAILED']],
    ['variable of the wrong type', () => post({ query: 'query($n: Int) { datasets(first: $n) { nodes { id } } }', variables: { n: 'ten' } }), ['BAD_USER_INPUT']],
    ['unknown enum value', () => post({ query: 'query($s: ModelStage) { modelVersions(stage: $s) { nodes { id } } }', variables: { s: 'NOPE' } }), ['BAD_USER_INPUT']],
    ['bad JSON scalar in hyperparameters', () => post({ query: `mutation { startTrainingRun(datasetVersionId: "${ZERO}", hyperparameters: { epochs: -5 }) { id } }` }), ['BAD_USER_INPUT']],
    ['anonymous mutation', () => post({ query: `mutation { createCase(input: { title: "x" }) { id } }` }, null), ['UNAUTHENTICATED']],
    ['bad authorization header', () => post({ query: `{ viewer { role } }` }, null, { authorization: 'Basic abc' }), ['UNAUTHENTICATED']],
    ['wrong content type', () => fetch(t.url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{ viewer { role } }' }).then(async (r) => ({ status: r.status, text: '', body: (await r.json().catch(() => ({ errors: [{ message: 'x', extensions: { code: 'BAD_REQUEST' } }] }))) as Raw['body'] })), ['BAD_REQUEST']],
  ];

  it('answers a subscription sent over HTTP POST with 400', async () => {
    const r = await post({ query: `subscription { trainingRunUpdated(id: "${ZERO}") { id } }` });
    expect([r.status, codes(r)]).toEqual([400, ['BAD_REQUEST']]);
  });

  it.each(malformed)('%s: a stable client code, never INTERNAL', async (_name, send, expected) => {
    const r = await send();
    expect(r.status).toBeLessThan(500);
    expect(codes(r)).not.toContain('INTERNAL_SERVER_ERROR');
    expect(codes(r)).toEqual(expected);
  });
});

describe('real faults', () => {
  it('are INTERNAL_SERVER_ERROR with a request id, and each one is logged with that id', async () => {
    const { createApp } = await import('../../src/app.js');
    const { apiDatabase } = await import('../support/harness.js');
    const { createLogger } = await import('../../src/logger.js');
    const { createServices, startBackground, stopBackground } = await import('../../src/services.js');
    const { createTestDatabase, adminQuery } = await import('../support/db.js');
    const db = await createTestDatabase();
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('error', {}, (line) => lines.push(JSON.parse(line)));
    const database = apiDatabase(db.url);
    const services = createServices({ config: t.services.config, db: database.db, sql: database.sql, connections: database.connections, store: t.services.store, logger, databaseUrl: db.url });
    await startBackground(services);
    const app = await createApp(services, { port: 0, host: '127.0.0.1' });
    try {
      const key = (await services.apiKeys.create({ system: 'test' }, { name: 'fault admin', role: 'ADMIN' })).secret;
      // A fault no caller can cause: the table behind the query is gone.
      await adminQuery('DROP TABLE "Dataset" CASCADE', db.name);
      const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query: '{ datasets { nodes { id } } }' }) });
      const body = (await res.json()) as GqlResult;
      const fault = body.errors?.find((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR');
      if (!fault) return void expect(body.errors ?? 'no errors').toEqual('an INTERNAL_SERVER_ERROR');
      expect(fault.message).toBe('Internal server error');
      const requestId = fault.extensions!.requestId;
      expect(requestId).toBe(res.headers.get('x-request-id'));
      expect(lines.some((l) => l.msg === 'internal error' && l.requestId === requestId)).toBe(true);
    } finally {
      await app.stop();
      await stopBackground(services);
      await database.close();
      await db.drop();
    }
  });
});
