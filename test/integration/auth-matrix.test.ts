// Walks every root operation of the schema with every role, anonymously and with a revoked key.
// A new operation fails the first test until it is given its row here.
import { createPrisma } from '../../src/db/prisma.js';
import { getSchema } from '../../src/graphql/schema.js';
import { silentLogger } from '../../src/logger.js';
import { createServices, startBackground, stopBackground } from '../../src/services.js';
import { waitFor } from '../support/training.js';
import type { RoleName } from '../../src/modules/auth/roles.js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { errorCode, type GqlResult, ok, startTestApp, type TestApp } from '../support/harness.js';
import { syntheticImage } from '../support/images.js';

const ZERO = '00000000-0000-0000-0000-000000000000';
type Op = { roles: RoleName[]; query: string; upload?: boolean; uploadList?: boolean; subscription?: boolean };

const I: RoleName[] = ['INVESTIGATOR'];
const IA: RoleName[] = ['INVESTIGATOR', 'AUDITOR'];
const A: RoleName[] = ['ADMIN'];
const AA: RoleName[] = ['ADMIN', 'AUDITOR'];
const ALL: RoleName[] = ['INVESTIGATOR', 'ADMIN', 'AUDITOR'];

export const MATRIX: Record<string, Op> = {
  // queries
  viewer: { roles: ALL, query: `{ viewer { role } }` },
  apiKeys: { roles: AA, query: `{ apiKeys { id } }` },
  auditEvents: { roles: AA, query: `{ auditEvents { nodes { seq } } }` },
  verifyAuditChain: { roles: AA, query: `{ verifyAuditChain { ok } }` },
  auditAnchors: { roles: AA, query: `{ auditAnchors { seq } }` },
  anchorAuditChain: { roles: A, query: `mutation { anchorAuditChain { seq } }` },
  cases: { roles: IA, query: `{ cases { nodes { id } } }` },
  case: { roles: IA, query: `{ case(id: "${ZERO}") { id } }` },
  caseByReference: { roles: IA, query: `{ caseByReference(reference: "NONE-1") { id } }` },
  evidence: { roles: IA, query: `{ evidence(id: "${ZERO}") { id } }` },
  // mutations
  createApiKey: { roles: A, query: `mutation { createApiKey(input: { name: "m", role: AUDITOR }) { secret } }` },
  revokeApiKey: { roles: A, query: `mutation { revokeApiKey(id: "${ZERO}") { id } }` },
  createCase: { roles: I, query: `mutation { createCase(input: { title: "matrix" }) { id } }` },
  updateCase: { roles: I, query: `mutation { updateCase(id: "${ZERO}", input: { title: "x" }) { id } }` },
  closeCase: { roles: I, query: `mutation { closeCase(id: "${ZERO}") { id } }` },
  addEvidence: { roles: I, upload: true, query: `mutation($file: Upload!) { addEvidence(caseId: "${ZERO}", file: $file) { id } }` },
  // datasets
  datasets: { roles: AA, query: `{ datasets { nodes { id } } }` },
  dataset: { roles: AA, query: `{ dataset(id: "${ZERO}") { id } }` },
  datasetVersion: { roles: AA, query: `{ datasetVersion(id: "${ZERO}") { id } }` },
  createDataset: { roles: A, query: `mutation { createDataset(input: { name: "matrix" }) { id } }` },
  addDatasetImages: { roles: A, uploadList: true, query: `mutation($files: [Upload!]!) { addDatasetImages(datasetId: "${ZERO}", label: FEMALE, files: $files) { imported } }` },
  importDatasetArchive: { roles: A, upload: true, query: `mutation($file: Upload!) { importDatasetArchive(datasetId: "${ZERO}", archive: $file) { imported } }` },
  removeDatasetItem: { roles: A, query: `mutation { removeDatasetItem(id: "${ZERO}") { id } }` },
  snapshotDataset: { roles: A, query: `mutation { snapshotDataset(datasetId: "${ZERO}") { id } }` },
  // training
  trainingRuns: { roles: AA, query: `{ trainingRuns { nodes { id } } }` },
  trainingRun: { roles: AA, query: `{ trainingRun(id: "${ZERO}") { id } }` },
  startTrainingRun: { roles: A, query: `mutation { startTrainingRun(datasetVersionId: "${ZERO}") { id } }` },
  cancelTrainingRun: { roles: A, query: `mutation { cancelTrainingRun(id: "${ZERO}") { id } }` },
  trainingRunUpdated: { roles: AA, subscription: true, query: `subscription { trainingRunUpdated(id: "${ZERO}") { id } }` },
  // registry
  modelVersions: { roles: ALL, query: `{ modelVersions { nodes { id } } }` },
  modelVersion: { roles: ALL, query: `{ modelVersion(id: "${ZERO}") { id } }` },
  productionModel: { roles: ALL, query: `{ productionModel { id } }` },
  compareModelVersions: { roles: AA, query: `{ compareModelVersions(a: "${ZERO}", b: "${ZERO.replace(/0$/, '1')}") { n } }` },
  promoteModelVersion: { roles: A, query: `mutation { promoteModelVersion(id: "${ZERO}", reason: "r") { id } }` },
  rollbackProduction: { roles: A, query: `mutation { rollbackProduction(reason: "r") { id } }` },
  archiveModelVersion: { roles: A, query: `mutation { archiveModelVersion(id: "${ZERO}", reason: "r") { id } }` },
  // classification and provenance
  classifyEvidence: { roles: I, query: `mutation { classifyEvidence(evidenceId: "${ZERO}") { id } }` },
  classifyImage: { roles: I, upload: true, query: `mutation($file: Upload!) { classifyImage(caseId: "${ZERO}", file: $file) { prediction { id } } }` },
  classifyCaseEvidence: { roles: I, query: `mutation { classifyCaseEvidence(caseId: "${ZERO}") { id } }` },
  explainPrediction: { roles: I, query: `mutation { explainPrediction(id: "${ZERO}") { url } }` },
  prediction: { roles: ['INVESTIGATOR', 'ADMIN', 'AUDITOR'], query: `{ prediction(id: "${ZERO}") { id } }` },
  predictionsByModelVersion: { roles: ['INVESTIGATOR', 'ADMIN', 'AUDITOR'], query: `{ predictionsByModelVersion(modelVersionId: "${ZERO}") { nodes { id } } }` },
  caseReport: { roles: IA, query: `{ caseReport(caseId: "${ZERO}") { generatedAt } }` },
};

let t: TestApp;
let revokedKey: string;
beforeAll(async () => {
  t = await startTestApp();
  const created = ok(await t.gql(`mutation { createApiKey(input: { name: "soon revoked", role: ADMIN }) { secret key { id } } }`, {}, t.keys.ADMIN)).createApiKey;
  revokedKey = created.secret;
  ok(await t.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: created.key.id }, t.keys.ADMIN));
});
afterAll(() => t.stop());

/** The first message of a graphql-ws subscription, as a GqlResult. */
async function subscribeOnce(query: string, key: string | null): Promise<GqlResult> {
  const client = createClient({ url: t.app.wsUrl, webSocketImpl: WebSocket, connectionParams: key ? { authorization: `Bearer ${key}` } : {}, retryAttempts: 0 });
  try {
    return await new Promise<GqlResult>((resolve, reject) => {
      client.subscribe(
        { query },
        {
          next: (msg) => resolve({ status: 200, data: (msg.data ?? undefined) as Record<string, any> | undefined, errors: msg.errors as GqlResult['errors'] }),
          error: (err) => (Array.isArray(err) ? resolve({ status: 200, errors: err as GqlResult['errors'] }) : reject(err)),
          complete: () => resolve({ status: 200 }),
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

async function call(op: Op, key: string | null) {
  if (op.subscription) return subscribeOnce(op.query, key);
  if (op.uploadList) return t.upload(op.query, { files: [null] }, { 'files.0': { name: 'a.png', bytes: await syntheticImage(5) } }, key);
  if (op.upload) return t.upload(op.query, { file: null }, { file: { name: 'a.png', bytes: await syntheticImage(5) } }, key);
  return t.gql(op.query, {}, key);
}

it('lists every root operation of the schema', async () => {
  const schema = await getSchema();
  const ops = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((type) => Object.keys(type?.getFields() ?? {}));
  expect(ops.sort()).toEqual(Object.keys(MATRIX).sort());
});

describe.each(Object.entries(MATRIX))('%s', (_name, op) => {
  it('refuses anonymous callers, revoked keys and malformed headers with UNAUTHENTICATED', async () => {
    expect(errorCode(await call(op, null))).toBe('UNAUTHENTICATED');
    const revoked = await call(op, revokedKey);
    expect(errorCode(revoked)).toBe('UNAUTHENTICATED');
    expect(revoked.errors?.[0].message).toMatch(/revoked/);
    expect(errorCode(await call(op, 'eyk_not-a-real-key'))).toBe('UNAUTHENTICATED');
  });

  it.each(['INVESTIGATOR', 'ADMIN', 'AUDITOR'] as RoleName[])('as %s', async (role) => {
    const res = await call(op, t.keys[role]);
    if (op.roles.includes(role)) {
      expect(['UNAUTHENTICATED', 'FORBIDDEN']).not.toContain(errorCode(res));
    } else {
      expect(errorCode(res)).toBe('FORBIDDEN');
      expect(res.data ?? null).toBeNull();
    }
  });
});

it('auditors change nothing: every mutation refuses them', () => {
  const mutations = Object.entries(MATRIX).filter(([, op]) => op.query.trimStart().startsWith('mutation'));
  expect(mutations.length).toBeGreaterThan(0);
  for (const [name, op] of mutations) expect([name, op.roles.includes('AUDITOR')]).toEqual([name, false]);
});

it('accepts a wrongly formed Authorization header as UNAUTHENTICATED, not as anonymous', async () => {
  const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Basic abc' }, body: JSON.stringify({ query: '{ viewer { role } }' }) });
  const body = (await res.json()) as { errors: Array<{ extensions: { code: string }; message: string }> };
  expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  expect(body.errors[0].message).toMatch(/Bearer/);
});

it('shows a key secret once and stores only its hash', async () => {
  const created = ok(await t.gql(`mutation { createApiKey(input: { name: "investigator 2", role: INVESTIGATOR }) { secret key { id prefix role } } }`, {}, t.keys.ADMIN)).createApiKey;
  expect(created.secret.startsWith(created.key.prefix)).toBe(true);
  const row = await t.services.db.apiKey.findUniqueOrThrow({ where: { id: created.key.id } });
  expect(JSON.stringify(row)).not.toContain(created.secret);
  expect(ok(await t.gql(`{ viewer { name role } }`, {}, created.secret)).viewer).toEqual({ name: 'investigator 2', role: 'INVESTIGATOR' });
  const listed = ok(await t.gql(`{ apiKeys { id name } }`, {}, t.keys.AUDITOR)).apiKeys;
  expect(listed.map((k: { name: string }) => k.name)).toContain('investigator 2');
  expect(errorCode(await t.gql(`mutation { createApiKey(input: { name: "", role: ADMIN }) { secret } }`, {}, t.keys.ADMIN))).toBe('BAD_USER_INPUT');
});

it('makes a revocation effective at once, in this and in every other API process', async () => {
  const created = ok(await t.gql(`mutation { createApiKey(input: { name: "cached", role: AUDITOR }) { secret key { id } } }`, {}, t.keys.ADMIN)).createApiKey;
  // Another API process over the same database, which has seen (and cached) the key.
  const other = createServices({ ...t.services, db: createPrisma(t.db.url), logger: silentLogger });
  await startBackground(other);
  await expect(other.apiKeys.authenticate(created.secret)).resolves.toMatchObject({ role: 'AUDITOR' });
  expect(ok(await t.gql(`{ viewer { role } }`, {}, created.secret)).viewer.role).toBe('AUDITOR');

  ok(await t.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: created.key.id }, t.keys.ADMIN));
  expect(errorCode(await t.gql(`{ viewer { role } }`, {}, created.secret))).toBe('UNAUTHENTICATED');
  await waitFor('the other process to drop the key', async () => other.apiKeys.authenticate(created.secret).then(() => false, () => true), 5000, 50);
  await stopBackground(other);
  await other.db.$disconnect();
});
