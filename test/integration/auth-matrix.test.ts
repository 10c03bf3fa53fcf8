// Walks every root operation of the schema with every caller: anonymous, a revoked key, each role,
// and two investigators (one a member of the case, one not). Every call runs against real records
// (a case with evidence, a prediction, a dataset, a training run, model versions, promotion
// requests) and is checked for its real outcome: data for those allowed, FORBIDDEN for a role
// that may not use the operation, NOT_FOUND for an investigator who is not a member of the case.
// A new operation fails the first test until it is given its row here.
import { getSchema } from '../../src/graphql/schema.js';
import { silentLogger } from '../../src/logger.js';
import { createServices, startBackground, stopBackground } from '../../src/services.js';
import { seedDatasetVersion, waitFor } from '../support/training.js';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { apiDatabase, errorCode, type GqlResult, ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { readDatasetImage, syntheticImage } from '../support/images.js';
import { tinyBundle, tinyBundleFile } from '../support/models.js';
import { promote, PROMOTION } from '../support/promotion.js';
import { buildZip } from '../support/zip.js';

/** OWNER: the investigator who opened the case; OTHER: an investigator who is not a member. */
const CALLERS = ['OWNER', 'OTHER', 'ADMIN', 'AUDITOR'] as const;
type Caller = (typeof CALLERS)[number];
type Outcome = 'ok' | 'FORBIDDEN' | 'NOT_FOUND';
type Vars = Record<string, unknown>;
interface Op {
  query: string;
  /** Fresh variables for one call (so a mutation always has something real to act on). */
  vars?: () => Promise<Vars>;
  upload?: 'file' | 'files';
  subscription?: boolean;
  expect: Record<Caller, Outcome>;
}

const F = 'FORBIDDEN' as const;
const NF = 'NOT_FOUND' as const;
const expectations = (owner: Outcome, other: Outcome, admin: Outcome, auditor: Outcome): Record<Caller, Outcome> => ({ OWNER: owner, OTHER: other, ADMIN: admin, AUDITOR: auditor });
const everyone = expectations('ok', 'ok', 'ok', 'ok');
/** Admin records: admins use them; auditors read them. */
const adminRead = expectations(F, F, 'ok', 'ok');
const adminWrite = expectations(F, F, 'ok', F);
/** A case's contents: its members and auditors read them; members change them. */
const caseRead = expectations('ok', NF, F, 'ok');
const caseWrite = expectations('ok', NF, F, F);

let t: TestApp;
let keys: Record<Caller, string>;
let revokedKey: string;
let third: { secret: string; id: string };
const fx = {} as { caseId: string; reference: string; evidenceId: string; predictionId: string; baselineId: string; datasetId: string; versionId: string; runId: string };
let seed = 1000;

const gqlOk = async (query: string, vars: Vars = {}, key = t.keys.INVESTIGATOR) => ok(await t.gql(query, vars, key));
const newCase = async () => (await gqlOk(`mutation { createCase(input: { title: "matrix" }) { id } }`)).createCase.id as string;
const candidate = async () => (await t.services.db.$transaction(async (tx) => t.services.registry.register(tx, { system: 'test' }, { bundle: await tinyBundle() }))).id;
const startRun = async () => (await gqlOk(`mutation($v: ID!) { startTrainingRun(datasetVersionId: $v) { id } }`, { v: fx.versionId }, t.keys.ADMIN)).startTrainingRun.id as string;
const requestedBySecondAdmin = async () => (await gqlOk(PROMOTION.REQUEST, { id: await candidate(), reason: 'matrix' }, t.secondKeys.ADMIN)).requestPromotion.id as string;

export const MATRIX: Record<string, Op> = {
  // keys and audit
  viewer: { query: `{ viewer { role } }`, expect: everyone },
  apiKeys: { query: `{ apiKeys { id } }`, expect: adminRead },
  auditEvents: { query: `{ auditEvents { nodes { seq } } }`, expect: adminRead },
  verifyAuditChain: { query: `{ verifyAuditChain { ok } }`, expect: adminRead },
  auditAnchors: { query: `{ auditAnchors { seq } }`, expect: adminRead },
  anchorAuditChain: { query: `mutation { anchorAuditChain { seq } }`, expect: adminWrite },
  createApiKey: { query: `mutation { createApiKey(input: { name: "m", role: AUDITOR }) { secret } }`, expect: adminWrite },
  revokeApiKey: {
    query: `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`,
    vars: async () => ({ id: (await t.services.apiKeys.create({ system: 'test' }, { name: 'to revoke', role: 'AUDITOR' })).id }),
    expect: adminWrite,
  },
  // cases
  cases: { query: `{ cases { nodes { id } } }`, expect: expectations('ok', 'ok', F, 'ok') },
  case: { query: `query($id: ID!) { case(id: $id) { id } }`, vars: async () => ({ id: fx.caseId }), expect: caseRead },
  caseByReference: { query: `query($r: String!) { caseByReference(reference: $r) { id } }`, vars: async () => ({ r: fx.reference }), expect: caseRead },
  caseTimeline: { query: `query($id: ID!) { caseTimeline(caseId: $id) { nodes { action } } }`, vars: async () => ({ id: fx.caseId }), expect: caseRead },
  caseMembers: { query: `query($id: ID!) { caseMembers(caseId: $id) { apiKeyId } }`, vars: async () => ({ id: fx.caseId }), expect: expectations('ok', NF, 'ok', 'ok') },
  createCase: { query: `mutation { createCase(input: { title: "matrix" }) { id } }`, expect: expectations('ok', 'ok', F, F) },
  updateCase: { query: `mutation($id: ID!) { updateCase(id: $id, input: { title: "x" }) { id } }`, vars: async () => ({ id: fx.caseId }), expect: caseWrite },
  closeCase: { query: `mutation($id: ID!) { closeCase(id: $id) { id } }`, vars: async () => ({ id: await newCase() }), expect: caseWrite },
  addCaseMember: {
    query: `mutation($c: ID!, $k: ID!) { addCaseMember(caseId: $c, apiKeyId: $k) { apiKeyId } }`,
    vars: async () => ({ c: await newCase(), k: third.id }),
    expect: expectations('ok', NF, 'ok', F),
  },
  removeCaseMember: {
    query: `mutation($c: ID!, $k: ID!) { removeCaseMember(caseId: $c, apiKeyId: $k) { apiKeyId } }`,
    vars: async () => {
      const c = await newCase();
      await gqlOk(`mutation($c: ID!, $k: ID!) { addCaseMember(caseId: $c, apiKeyId: $k) { apiKeyId } }`, { c, k: third.id });
      return { c, k: third.id };
    },
    expect: expectations('ok', NF, 'ok', F),
  },
  exportCase: { query: `mutation($id: ID!) { exportCase(caseId: $id) { sha256 } }`, vars: async () => ({ id: fx.caseId }), expect: caseWrite },
  // evidence and classification
  evidence: { query: `query($id: ID!) { evidence(id: $id) { id image { url } } }`, vars: async () => ({ id: fx.evidenceId }), expect: caseRead },
  addEvidence: { query: `mutation($c: ID!, $file: Upload!) { addEvidence(caseId: $c, file: $file) { id } }`, upload: 'file', vars: async () => ({ c: fx.caseId }), expect: caseWrite },
  classifyImage: { query: `mutation($c: ID!, $file: Upload!) { classifyImage(caseId: $c, file: $file) { prediction { id } } }`, upload: 'file', vars: async () => ({ c: fx.caseId }), expect: caseWrite },
  classifyEvidence: { query: `mutation($id: ID!) { classifyEvidence(evidenceId: $id) { id } }`, vars: async () => ({ id: fx.evidenceId }), expect: caseWrite },
  classifyCaseEvidence: { query: `mutation($c: ID!) { classifyCaseEvidence(caseId: $c) { id } }`, vars: async () => ({ c: fx.caseId }), expect: caseWrite },
  explainPrediction: { query: `mutation($id: ID!) { explainPrediction(id: $id) { url } }`, vars: async () => ({ id: fx.predictionId }), expect: caseWrite },
  reviewPrediction: { query: `mutation($id: ID!) { reviewPrediction(predictionId: $id, verdict: NEEDS_EXPERT, reason: "matrix") { id } }`, vars: async () => ({ id: fx.predictionId }), expect: caseWrite },
  // Admins see what a model version decided (ids and figures), never the case behind it.
  prediction: { query: `query($id: ID!) { prediction(id: $id) { id decision } }`, vars: async () => ({ id: fx.predictionId }), expect: expectations('ok', NF, 'ok', 'ok') },
  predictionsByModelVersion: { query: `query($id: ID!) { predictionsByModelVersion(modelVersionId: $id) { nodes { id } } }`, vars: async () => ({ id: fx.baselineId }), expect: everyone },
  caseReport: { query: `query($id: ID!) { caseReport(caseId: $id) { generatedAt } }`, vars: async () => ({ id: fx.caseId }), expect: caseRead },
  // datasets
  datasets: { query: `{ datasets { nodes { id } } }`, expect: adminRead },
  dataset: { query: `query($id: ID!) { dataset(id: $id) { id } }`, vars: async () => ({ id: fx.datasetId }), expect: adminRead },
  datasetVersion: { query: `query($id: ID!) { datasetVersion(id: $id) { id } }`, vars: async () => ({ id: fx.versionId }), expect: adminRead },
  createDataset: { query: `mutation($n: String!) { createDataset(input: { name: $n }) { id } }`, vars: async () => ({ n: `matrix-${seed++}` }), expect: adminWrite },
  addDatasetImages: { query: `mutation($d: ID!, $files: [Upload!]!) { addDatasetImages(datasetId: $d, label: FEMALE, files: $files) { imported } }`, upload: 'files', vars: async () => ({ d: fx.datasetId }), expect: adminWrite },
  importDatasetArchive: { query: `mutation($d: ID!, $file: Upload!) { importDatasetArchive(datasetId: $d, archive: $file) { imported } }`, upload: 'file', vars: async () => ({ d: fx.datasetId, zip: true }), expect: adminWrite },
  removeDatasetItem: {
    query: `mutation($id: ID!) { removeDatasetItem(id: $id) { id } }`,
    vars: async () => {
      ok(await t.upload(`mutation($d: ID!, $files: [Upload!]!) { addDatasetImages(datasetId: $d, label: MALE, files: $files) { imported } }`, { d: fx.datasetId, files: [null] }, { 'files.0': { name: 'x.png', bytes: await syntheticImage(seed++) } }, t.keys.ADMIN));
      return { id: (await t.services.db.datasetItem.findFirstOrThrow({ where: { datasetId: fx.datasetId }, orderBy: { createdAt: 'desc' } })).id };
    },
    expect: adminWrite,
  },
  setDatasetItemGroup: {
    query: `mutation($id: ID!) { setDatasetItemGroup(id: $id, groupKey: "person-1") { id groupKey } }`,
    vars: async () => ({ id: (await t.services.db.datasetItem.findFirstOrThrow({ where: { datasetId: fx.datasetId } })).id }),
    expect: adminWrite,
  },
  snapshotDataset: { query: `mutation($d: ID!) { snapshotDataset(datasetId: $d) { id } }`, vars: async () => ({ d: fx.datasetId }), expect: adminWrite },
  // training
  trainingRuns: { query: `{ trainingRuns { nodes { id } } }`, expect: adminRead },
  trainingRun: { query: `query($id: ID!) { trainingRun(id: $id) { id } }`, vars: async () => ({ id: fx.runId }), expect: adminRead },
  startTrainingRun: { query: `mutation($v: ID!) { startTrainingRun(datasetVersionId: $v) { id } }`, vars: async () => ({ v: fx.versionId }), expect: adminWrite },
  cancelTrainingRun: { query: `mutation($id: ID!) { cancelTrainingRun(id: $id) { id } }`, vars: async () => ({ id: await startRun() }), expect: adminWrite },
  trainingRunUpdated: { query: `subscription($id: ID!) { trainingRunUpdated(id: $id) { id } }`, subscription: true, vars: async () => ({ id: fx.runId }), expect: adminRead },
  // registry
  modelVersions: { query: `{ modelVersions { nodes { id } } }`, expect: everyone },
  modelVersion: { query: `query($id: ID!) { modelVersion(id: $id) { id modelCard { accuracy caveats } } }`, vars: async () => ({ id: fx.baselineId }), expect: everyone },
  productionModel: { query: `{ productionModel { id } }`, expect: everyone },
  compareModelVersions: { query: `query($a: ID!, $b: ID!) { compareModelVersions(a: $a, b: $b) { n } }`, vars: async () => ({ a: fx.baselineId, b: await candidate() }), expect: adminRead },
  promotionRequests: { query: `{ promotionRequests { nodes { id } } }`, expect: adminRead },
  promotionRequest: { query: `query($id: ID!) { promotionRequest(id: $id) { id } }`, vars: async () => ({ id: await requestedBySecondAdmin() }), expect: adminRead },
  requestPromotion: { query: PROMOTION.REQUEST, vars: async () => ({ id: await candidate(), reason: 'matrix' }), expect: adminWrite },
  // Requested by the second admin, so the first may decide.
  approvePromotion: { query: PROMOTION.APPROVE, vars: async () => ({ id: await requestedBySecondAdmin(), reason: 'matrix' }), expect: adminWrite },
  rejectPromotion: { query: `mutation($id: ID!) { rejectPromotion(requestId: $id, reason: "matrix") { id } }`, vars: async () => ({ id: await requestedBySecondAdmin() }), expect: adminWrite },
  rollbackProduction: {
    query: `mutation { rollbackProduction(reason: "r") { id } }`,
    vars: async () => {
      await promote(t, await candidate(), 'so that there is something to roll back');
      return {};
    },
    expect: adminWrite,
  },
  archiveModelVersion: { query: `mutation($id: ID!) { archiveModelVersion(id: $id, reason: "r") { id } }`, vars: async () => ({ id: await candidate() }), expect: adminWrite },
};

beforeAll(async () => {
  t = await startTestApp();
  keys = { OWNER: t.keys.INVESTIGATOR, OTHER: t.secondKeys.INVESTIGATOR, ADMIN: t.keys.ADMIN, AUDITOR: t.keys.AUDITOR };
  const created = ok(await t.gql(`mutation { createApiKey(input: { name: "soon revoked", role: ADMIN }) { secret key { id } } }`, {}, t.keys.ADMIN)).createApiKey;
  revokedKey = created.secret;
  ok(await t.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: created.key.id }, t.keys.ADMIN));
  const thirdKey = ok(await t.gql(`mutation { createApiKey(input: { name: "investigator 3", role: INVESTIGATOR }) { secret key { id } } }`, {}, t.keys.ADMIN)).createApiKey;
  third = { secret: thirdKey.secret, id: thirdKey.key.id };

  fx.baselineId = await serveBaseline(t, await tinyBundleFile());
  const kase = (await gqlOk(`mutation { createCase(input: { title: "Owned by the first investigator" }) { id reference } }`)).createCase;
  Object.assign(fx, { caseId: kase.id, reference: kase.reference });
  const classified = ok(await t.upload(`mutation($c: ID!, $f: Upload!) { classifyImage(caseId: $c, file: $f) { evidence { id } prediction { id } } }`, { c: kase.id, f: null }, { f: { name: 'eye.jpg', bytes: readDatasetImage('female', 0) } })).classifyImage;
  Object.assign(fx, { evidenceId: classified.evidence.id, predictionId: classified.prediction.id });
  const { datasetId, versionId } = await seedDatasetVersion(t, { female: 20, male: 20 });
  Object.assign(fx, { datasetId, versionId });
  fx.runId = await startRun();
}, 180_000);
afterAll(() => t.stop());

/** The first message of a graphql-ws subscription, as a GqlResult. */
async function subscribeOnce(query: string, variables: Vars, key: string | null): Promise<GqlResult> {
  const client = createClient({ url: t.app.wsUrl, webSocketImpl: WebSocket, connectionParams: key ? { authorization: `Bearer ${key}` } : {}, retryAttempts: 0 });
  try {
    return await new Promise<GqlResult>((resolve, reject) => {
      client.subscribe(
        { query, variables },
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

async function call(op: Op, key: string | null): Promise<GqlResult> {
  const { zip, ...vars } = (await op.vars?.()) ?? {};
  if (op.subscription) return subscribeOnce(op.query, vars, key);
  const image = async () => ({ name: 'a.png', bytes: await syntheticImage(seed++) });
  if (op.upload === 'files') return t.upload(op.query, { ...vars, files: [null] }, { 'files.0': await image() }, key);
  if (op.upload === 'file') {
    const file = zip ? { name: 'set.zip', bytes: buildZip([{ name: 'female/', data: undefined }, { name: 'female/a.png', data: (await image()).bytes }]) } : await image();
    return t.upload(op.query, { ...vars, file: null }, { file }, key);
  }
  return t.gql(op.query, vars, key);
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

  it.each(CALLERS)('as %s', async (caller) => {
    const res = await call(op, keys[caller]);
    const expected = op.expect[caller];
    if (expected === 'ok') {
      expect(res.errors ?? []).toEqual([]);
      expect(Object.values(res.data ?? {})[0]).not.toBeNull();
    } else {
      expect([errorCode(res), res.errors?.[0].message]).toEqual([expected, expect.any(String)]);
      expect(res.data ?? null).toBeNull();
    }
  });
});

it('shows an investigator who is not a member nothing of the case: not in lists, searches or model version listings', async () => {
  const other = t.secondKeys.INVESTIGATOR;
  const ids = async (query: string, key: string) => ok(await t.gql(query, { r: fx.reference }, key));
  const listed = (await ids(`query($r: String) { cases(filter: { text: $r }) { nodes { id } } }`, other)).cases.nodes;
  expect(listed).toEqual([]);
  expect((await ids(`query($r: String) { cases(filter: { text: $r }) { nodes { id } } }`, t.keys.INVESTIGATOR)).cases.nodes).toEqual([{ id: fx.caseId }]);
  const byVersion = ok(await t.gql(`query($id: ID!) { predictionsByModelVersion(modelVersionId: $id, first: 100) { nodes { id caseId } } }`, { id: fx.baselineId }, other)).predictionsByModelVersion.nodes;
  expect(byVersion.filter((p: { caseId: string }) => p.caseId === fx.caseId)).toEqual([]);
  // NOT_FOUND for a non-member reads exactly like NOT_FOUND for a case that does not exist.
  const missing = await t.gql(`query($id: ID!) { case(id: $id) { id } }`, { id: '00000000-0000-0000-0000-000000000000' }, other);
  const hidden = await t.gql(`query($id: ID!) { case(id: $id) { id } }`, { id: fx.caseId }, other);
  expect(hidden.errors?.[0].message.replace(fx.caseId, 'ID')).toBe(missing.errors?.[0].message.replace('00000000-0000-0000-0000-000000000000', 'ID'));
});

it('auditors change nothing: every mutation refuses them', () => {
  const mutations = Object.entries(MATRIX).filter(([, op]) => op.query.trimStart().startsWith('mutation'));
  expect(mutations.length).toBeGreaterThan(0);
  for (const [name, op] of mutations) expect([name, op.expect.AUDITOR]).toEqual([name, 'FORBIDDEN']);
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
  const database = apiDatabase(t.db.url);
  const other = createServices({ ...t.services, db: database.db, sql: database.sql, logger: silentLogger });
  await startBackground(other);
  await expect(other.apiKeys.authenticate(created.secret)).resolves.toMatchObject({ role: 'AUDITOR' });
  expect(ok(await t.gql(`{ viewer { role } }`, {}, created.secret)).viewer.role).toBe('AUDITOR');

  ok(await t.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, { id: created.key.id }, t.keys.ADMIN));
  expect(errorCode(await t.gql(`{ viewer { role } }`, {}, created.secret))).toBe('UNAUTHENTICATED');
  await waitFor('the other process to drop the key', async () => other.apiKeys.authenticate(created.secret).then(() => false, () => true), 5000, 50);
  await stopBackground(other);
  await database.close();
});
