// The zero-install start: no DATABASE_URL and no S3_ENDPOINT means an embedded PostgreSQL (PGlite
// over the wire protocol) and an embedded S3 server, both keeping their data under DATA_DIR.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { ensureFirstAdminKey } from '../../src/modules/auth/bootstrap.js';
import { startRuntime } from '../../src/runtime.js';
import { readDatasetImage } from '../support/images.js';

it('starts on embedded PostgreSQL and S3, migrates, serves GraphQL and keeps data across restarts', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'eyecase-embedded-'));
  const config = { ...loadConfig({ DATA_DIR: dataDir, EMBEDDED_S3_PORT: '0', LOG_LEVEL: 'error' }) };
  expect(config.databaseUrl).toBeUndefined();

  let runtime = await startRuntime(config, silentLogger);
  const adminKey = await ensureFirstAdminKey(runtime.services);
  expect(adminKey).toMatch(/^eyk_/);
  expect(await ensureFirstAdminKey(runtime.services)).toBeNull();
  let app = await createApp(runtime.services, { port: 0, host: '127.0.0.1' });
  const gql = async (query: string, key: string) =>
    (await (await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) })).json()) as any;

  const inv = (await gql(`mutation { createApiKey(input: { name: "inv", role: INVESTIGATOR }) { secret } }`, adminKey!)).data.createApiKey.secret;
  const created = (await gql(`mutation { createCase(input: { title: "Embedded", reference: "EMB-1" }) { id } }`, inv)).data.createCase;
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: `mutation($f: Upload!) { addEvidence(caseId: "${created.id}", file: $f) { image { sha256 } } }`, variables: { f: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([readDatasetImage('male', 1)]), 'eye.jpg');
  const uploaded = (await (await fetch(app.url, { method: 'POST', headers: { authorization: `Bearer ${inv}`, 'apollo-require-preflight': '1' }, body: form })).json()) as any;
  expect(uploaded.data.addEvidence.image.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect((await fetch(app.url.replace('/graphql', '/readyz'))).status).toBe(200);
  await app.stop();
  await runtime.stop();

  runtime = await startRuntime(config, silentLogger);
  app = await createApp(runtime.services, { port: 0, host: '127.0.0.1' });
  const again = await gql(`{ caseByReference(reference: "EMB-1") { evidence { nodes { image { sha256 } } } } }`, inv);
  expect(again.data.caseByReference.evidence.nodes).toEqual([{ image: uploaded.data.addEvidence.image }]);
  expect(await runtime.services.audit.verify()).toMatchObject({ ok: true });
  await app.stop();
  await runtime.stop();
  await fs.rm(dataDir, { recursive: true, force: true });
}, 120_000);
