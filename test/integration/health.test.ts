import { createLogger } from '../../src/logger.js';
import { startTestApp, type TestApp } from '../support/harness.js';

let t: TestApp;
const logLines: Array<Record<string, unknown>> = [];
beforeAll(async () => {
  t = await startTestApp({}, { logger: createLogger('info', {}, (line) => logLines.push(JSON.parse(line))) });
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
  const generatedId = generated.headers.get('x-request-id');
  expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);
  // A hostile id (spaces, over 100 characters) is replaced, not echoed or logged.
  const hostile = await fetch(`${base()}/healthz`, { headers: { 'x-request-id': 'x'.repeat(101) } });
  expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  // Each request's log line carries the id the client was given.
  await new Promise((r) => setTimeout(r, 50)); // the line is written when the response finishes
  const requests = logLines.filter((l) => l.msg === 'request' && l.path === '/healthz');
  expect(requests.map((l) => l.requestId)).toEqual(expect.arrayContaining(['abc-123', generatedId, hostile.headers.get('x-request-id')]));
  expect(requests.find((l) => l.requestId === 'abc-123')).toMatchObject({ method: 'GET', status: 200 });
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
  // A body that is not JSON is a malformed request as a whole (docs/errors-and-limits.md).
  expect(((await badJson.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe('BAD_REQUEST');
});
