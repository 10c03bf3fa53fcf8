import { startTestApp, type TestApp } from '../support/harness.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const base = () => t.url.replace(/\/graphql$/, '');

it('GET /healthz answers while the process is alive', async () => {
  const res = await fetch(`${base()}/healthz`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok' });
});

it('GET /readyz checks the database and the object store', async () => {
  const res = await fetch(`${base()}/readyz`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ready', checks: { database: 'ok', objectStore: 'ok' } });
});

it('echoes a request id and uses it in the logs', async () => {
  const res = await fetch(`${base()}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
  expect(res.headers.get('x-request-id')).toBe('abc-123');
  const generated = await fetch(`${base()}/healthz`);
  expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
});

it('answers malformed GraphQL requests with a client error code, not a 500', async () => {
  const bad = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.ADMIN}` }, body: JSON.stringify({ query: '{ nope' }) });
  expect(bad.status).toBe(400);
  const body = (await bad.json()) as { errors: Array<{ extensions: { code: string; stacktrace?: unknown } }> };
  expect(body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
  expect(body.errors[0].extensions.stacktrace).toBeUndefined();

  const unknownField = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ nothingHere }' }) });
  expect(((await unknownField.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');

  const badJson = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
  expect(badJson.status).toBe(400);
  expect(((await badJson.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('BAD_USER_INPUT');
});
