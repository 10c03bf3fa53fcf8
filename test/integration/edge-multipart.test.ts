// The multipart layer: malformed requests are answered at once, refused callers spool nothing,
// the byte ceiling follows the caller's role, uploads the resolver never sees are BAD_USER_INPUT,
// and no temp file or descriptor outlives its request on any path (counted, not assumed). Every case
// runs twice: with every file spooled to a temp file, and with small requests kept in memory.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { syntheticImage } from '../support/images.js';

const ADD = `mutation($caseId: ID!, $file: Upload!) { addEvidence(caseId: $caseId, file: $file) { id } }`;
const MAX_FILE = 64 * 1024;

interface Part {
  name: string;
  value?: string;
  filename?: string;
  bytes?: Buffer;
}

const BOUNDARY = 'edgeboundary123';

function multipartBody(parts: Part[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = p.filename !== undefined ? `form-data; name="${p.name}"; filename="${p.filename}"` : `form-data; name="${p.name}"`;
    const type = p.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : '';
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`));
    chunks.push(p.bytes ?? Buffer.from(p.value ?? ''));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

interface RawResponse {
  status: number;
  body: { errors?: Array<{ message: string; extensions?: { code?: string } }>; data?: unknown };
}

/**
 * One request on its own connection (no keep-alive), so descriptors can be counted after it. It
 * declares its length (as clients do for a body they hold), unless `chunked`.
 */
function raw(url: string, headers: Record<string, string>, body: Buffer | null, options: { abortAfterBytes?: number; chunked?: boolean } = {}): Promise<RawResponse | 'aborted'> {
  return new Promise((resolve, reject) => {
    const length: Record<string, string> = body && !options.chunked ? { 'content-length': String(body.length) } : {};
    const req = http.request(url, { method: 'POST', agent: false, headers: { connection: 'close', ...length, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: { errors: [{ message: text }] } });
        }
      });
    });
    req.on('error', (err) => (options.abortAfterBytes !== undefined ? resolve('aborted') : reject(err)));
    if (options.abortAfterBytes !== undefined && body) {
      req.write(body.subarray(0, options.abortAfterBytes), () => setTimeout(() => {
        req.destroy();
        resolve('aborted');
      }, 50));
      return;
    }
    if (body) req.write(body);
    req.end();
  });
}

const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

/** Counts the entries created in a folder while `during` runs. */
async function createdIn(dir: string, during: () => Promise<unknown>): Promise<number> {
  const before = new Set(fs.readdirSync(dir));
  const seen = new Set<string>();
  const watcher = fs.watch(dir, (_event, name) => {
    if (name && !before.has(name)) seen.add(name);
  });
  try {
    await during();
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    watcher.close();
  }
  return seen.size;
}

describe.each([
  { mode: 'temp files', memoryMaxBytes: 0 },
  { mode: 'small requests in memory', memoryMaxBytes: 4 * MAX_FILE },
])('multipart layer ($mode)', ({ memoryMaxBytes }) => {
  let t: TestApp;
  let tempDir: string;
  let caseId: string;
  let image: Buffer;
  const ops = (caseId: string) => JSON.stringify({ query: ADD, variables: { caseId, file: null } });

  beforeAll(async () => {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eyecase-upload-test-'));
    const base = await import('../../src/config.js');
    const defaults = base.loadConfig({ ...process.env, S3_ENDPOINT: '' });
    t = await startTestApp({ uploadTempDir: tempDir, uploadMemoryMaxBytes: memoryMaxBytes, uploads: { ...defaults.uploads, maxFileBytes: MAX_FILE }, archive: { ...defaults.archive, maxBytes: 4 * MAX_FILE } });
    caseId = ok(await t.gql(`mutation { createCase(input: { title: "multipart" }) { id } }`)).createCase.id;
    image = await syntheticImage(3, 'png', 64);
  });
  afterAll(async () => {
    await t?.stop();
    fs.rmSync(tempDir, { recursive: true, force: true });
  });

  const auth = (role: 'INVESTIGATOR' | 'ADMIN' | 'AUDITOR' = 'INVESTIGATOR') => ({ authorization: `Bearer ${t.keys[role]}`, 'apollo-require-preflight': 'true' });
  const multipartHeaders = (extra: Record<string, string>) => ({ 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, ...extra });
  const spooled = () => fs.readdirSync(tempDir).length;
  /** The parts of an addEvidence upload before its files: operations and map. */
  const good = (extra: Part[] = []): Part[] => [{ name: 'operations', value: ops(caseId) }, { name: 'map', value: JSON.stringify({ 0: ['variables.file'] }) }, ...extra];
  const file = (name = '0', filename = 'eye.png', bytes = image): Part => ({ name, filename, bytes });

  it('answers a multipart request without a boundary with 400 at once', async () => {
    const res = (await raw(t.url, { 'content-type': 'multipart/form-data', ...auth() }, Buffer.from('whatever'))) as RawResponse;
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0].extensions?.code).toBe('BAD_REQUEST');
  });

  it('refuses anonymous and CSRF-refused multipart requests before reading the body, spooling nothing', async () => {
    const body = multipartBody(good([file('0', 'a.png', Buffer.alloc(40_000, 1))]));
    // The body is never finished: the answer must come anyway, with nothing in the temp folder.
    for (const [headers, status, code] of [
      [{ 'apollo-require-preflight': 'true' }, 401, 'UNAUTHENTICATED'],
      [{ authorization: 'Bearer eyk_not-a-key', 'apollo-require-preflight': 'true' }, 401, 'UNAUTHENTICATED'],
      [{ authorization: `Bearer ${t.keys.INVESTIGATOR}` }, 400, 'BAD_REQUEST'],
      [{ authorization: `Bearer ${t.keys.AUDITOR}`, 'apollo-require-preflight': 'true' }, 403, 'FORBIDDEN'],
    ] as const) {
      const res = await new Promise<RawResponse>((resolve, reject) => {
        const req = http.request(t.url, { method: 'POST', agent: false, headers: multipartHeaders({ ...headers, 'content-length': String(body.length + 1_000_000) }) }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
        });
        req.on('error', reject);
        req.write(body);
      });
      expect([res.status, res.body.errors?.[0].extensions?.code]).toEqual([status, code]);
      expect(spooled()).toBe(0);
    }
  });

  it('sets the byte ceiling by role: investigators the image limit, admins the archive limit', async () => {
    const big = Buffer.alloc(MAX_FILE * 2, 7);
    const investigator = await t.upload(ADD, { caseId, file: null }, { file: { name: 'big.png', bytes: big } });
    expect(errorCode(investigator)).toBe('PAYLOAD_TOO_LARGE');
    // The same bytes are under the admin's ceiling (an archive may be that large): the parser
    // lets them through and the resolver decides (here: a dataset that does not exist).
    const admin = await t.upload(
      `mutation($file: Upload!) { importDatasetArchive(datasetId: "00000000-0000-0000-0000-000000000000", archive: $file) { imported } }`,
      { file: null },
      { file: { name: 'a.zip', bytes: big } },
      t.keys.ADMIN,
    );
    expect(errorCode(admin)).toBe('NOT_FOUND');
  });

  it('answers uploads the resolver never sees with BAD_USER_INPUT: a missing part, a NUL in the file name', async () => {
    const missing = (await raw(
      t.url,
      multipartHeaders(auth()),
      multipartBody(good()),
    )) as RawResponse;
    expect(missing.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(missing.body.errors?.[0].message).toMatch(/missing/);

    const nul = (await raw(
      t.url,
      multipartHeaders(auth()),
      multipartBody(good([file('0', 'eye\u0000.png')])),
    )) as RawResponse;
    expect(nul.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');

    // The same name, percent-encoded (RFC 5987), reaches the layer decoded: refused by name.
    const encodedBody = multipartBody(good([file('0', 'x.png')])).toString('latin1').replace('filename="x.png"', "filename*=utf-8''eye%00.png");
    const encoded = (await raw(t.url, multipartHeaders(auth()), Buffer.from(encodedBody, 'latin1'))) as RawResponse;
    expect(encoded.body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(encoded.body.errors?.[0].message).toMatch(/control characters/);
  });

  it('still accepts a well-formed upload, spooled only when the request is not small, and removes its temp file afterwards', async () => {
    let res: RawResponse | undefined;
    const created = await createdIn(tempDir, async () => {
      res = (await raw(
        t.url,
        multipartHeaders(auth()),
        multipartBody(good([file()])),
      )) as RawResponse;
    });
    expect(res?.body.errors).toBeUndefined();
    expect(created > 0).toBe(memoryMaxBytes === 0);
    await waitUntil(() => spooled() === 0);
    expect(spooled()).toBe(0);
  });

  it('spools a request of unknown length (chunked) to a temp file, and still enforces the ceiling in memory', async () => {
    const body = multipartBody(good([file('0', 'eye2.png', await syntheticImage(4, 'png', 64))]));
    let res: RawResponse | undefined;
    const created = await createdIn(tempDir, async () => (res = (await raw(t.url, multipartHeaders(auth()), body, { chunked: true })) as RawResponse));
    expect(res?.body.errors).toBeUndefined();
    expect(created).toBeGreaterThan(0);
    await waitUntil(() => spooled() === 0);

    // Over the ceiling but within the memory limit: refused all the same, and nothing spooled.
    const big = multipartBody(good([file('0', 'big.png', Buffer.alloc(MAX_FILE + 10, 1))]));
    let refused: RawResponse | undefined;
    const spooledBig = await createdIn(tempDir, async () => (refused = (await raw(t.url, multipartHeaders(auth()), big)) as RawResponse));
    expect(refused?.body.errors?.[0].extensions?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(spooledBig > 0).toBe(memoryMaxBytes === 0);
  });

  /** Every kind of bad multipart request, each once. */
  const badRequests = (): Array<Promise<unknown>> => {
    return [
      raw(t.url, { 'content-type': 'multipart/form-data', ...auth() }, Buffer.from('no boundary')),
      raw(t.url, multipartHeaders(auth()), multipartBody(good([file(), file()]))), // duplicate file key
      raw(t.url, multipartHeaders({ 'apollo-require-preflight': 'true' }), multipartBody(good([file()]))), // anonymous
      raw(t.url, multipartHeaders({ authorization: `Bearer ${t.keys.INVESTIGATOR}` }), multipartBody(good([file()]))), // CSRF
      raw(t.url, multipartHeaders(auth()), multipartBody(good())), // missing part
      raw(t.url, multipartHeaders(auth()), multipartBody(good([file('0', 'a\u0000b.png')]))), // NUL file name
      raw(t.url, multipartHeaders(auth()), multipartBody(good([file('0', 'big.png', Buffer.alloc(MAX_FILE + 10, 1))]))), // over the ceiling
      raw(t.url, multipartHeaders(auth()), multipartBody([{ name: 'operations', value: '{not json' }, { name: 'map', value: '{}' }])),
      raw(t.url, multipartHeaders(auth()), multipartBody([{ name: 'map', value: '{}' }, { name: 'operations', value: ops(caseId) }])), // misordered
      raw(t.url, multipartHeaders(auth()), multipartBody(good([file()])), { abortAfterBytes: 600 }), // client abort mid-file
      raw(t.url, multipartHeaders(auth()), multipartBody(good([file('0', 'big.png', Buffer.alloc(MAX_FILE - 10, 1))])), { abortAfterBytes: MAX_FILE / 2 }),
    ];
  };

  it('leaves no descriptor and no temp file behind after a burst of bad requests', async () => {
    // A first round warms up everything that opens descriptors once (database pools, loggers).
    await Promise.all(badRequests());
    await settle(t);
    const fdsBefore = openDescriptors();
    expect(spooled()).toBe(0);

    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(badRequests());
      for (const r of results) {
        if (r === 'aborted') continue;
        const res = r as RawResponse;
        expect(res.body.errors?.[0].extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
        expect(res.status).toBeLessThan(500);
      }
    }
    await settle(t);
    expect(spooled()).toBe(0);
    expect(openDescriptors()).toBeLessThanOrEqual(fdsBefore);
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!probe() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/** Waits until the server has no open connection and temp files had time to be unlinked. */
async function settle(t: TestApp): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise<number>((resolve) => t.app.httpServer.getConnections((_e, n) => resolve(n)));
    if (open === 0 || Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
}
