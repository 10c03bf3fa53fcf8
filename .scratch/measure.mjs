// Measures the answer to abusive requests against a real app (test PostgreSQL, embedded S3).
import 'reflect-metadata';
import fs from 'node:fs/promises'; import os from 'node:os'; import path from 'node:path'; import pg from 'pg';
const root = process.cwd() + '/dist/src/';
const { loadConfig } = await import(root + 'config.js');
const { startRuntime } = await import(root + 'runtime.js');
const { createApp } = await import(root + 'app.js');
const { silentLogger } = await import(root + 'logger.js');
const admin = new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
await admin.connect(); await admin.query('DROP DATABASE IF EXISTS eyecase_scratch_edge'); await admin.query('CREATE DATABASE eyecase_scratch_edge');
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-measure-'));
const config = loadConfig({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/eyecase_scratch_edge', DATA_DIR: dataDir, EMBEDDED_S3_PORT: '0', LOG_LEVEL: 'error', BASELINE_MODEL_PATH: '/nonexistent' });
const runtime = await startRuntime(config, silentLogger);
const app = await createApp(runtime.services, { port: 0, host: '127.0.0.1' });
const key = (await runtime.services.apiKeys.create({ system: 'measure' }, { name: 'inv', role: 'INVESTIGATOR' })).secret;
const adminKey = (await runtime.services.apiKeys.create({ system: 'measure' }, { name: 'adm', role: 'ADMIN' })).secret;
async function time(name, body, k = key) {
  const t0 = performance.now();
  const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${k}` }, body: JSON.stringify(body) });
  const text = await res.text();
  const ms = performance.now() - t0;
  const j = JSON.parse(text);
  console.log(`${name}: HTTP ${res.status}, ${text.length} bytes, ${j.errors?.length ?? 0} errors (${[...new Set((j.errors ?? []).map((e) => e.extensions?.code))].join(',')}), ${ms.toFixed(0)} ms`);
}
const input = { title: 't' }; for (let i = 0; i < 40000; i++) input[`unknownKey${i}`] = 'x';
await time('40,000 unknown input keys', { query: 'mutation($input: CreateCaseInput!) { createCase(input: $input) { id } }', variables: { input } });
await time('26-level nested query', { query: `{ cases { nodes { ${'evidence { nodes { case { '.repeat(8)} id ${'} } } '.repeat(8)} } } }` });
await time('500 aliases of verifyAuditChain', { query: `{ ${Array.from({ length: 500 }, (_, i) => `a${i}: verifyAuditChain { ok }`).join(' ')} }` }, adminKey);
await time('52,690 aliases of viewer', { query: `{ ${Array.from({ length: 52690 }, (_, i) => `a${i}: viewer { role }`).join(' ')} }` });
await time('closeCase with a 100,000-character reason', { query: `mutation($r: String) { closeCase(id: "00000000-0000-0000-0000-000000000000", reason: $r) { id } }`, variables: { r: 'x'.repeat(100000) } });
const t0 = performance.now();
const nb = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'multipart/form-data', authorization: `Bearer ${key}`, 'apollo-require-preflight': '1' }, body: 'x' });
console.log(`multipart without boundary: HTTP ${nb.status}, ${(await nb.text()).length} bytes, ${(performance.now() - t0).toFixed(0)} ms`);
await app.stop(); await runtime.stop();
await admin.query('DROP DATABASE eyecase_scratch_edge'); await admin.end(); await fs.rm(dataDir, { recursive: true, force: true });
