// Who can read what: admins see ids and kinds of case work, never its content (audit payloads,
// heatmaps); investigators do not see other roles' key names; and the embedded S3 server keeps
// its bucket private (unsigned reads and listings refused, presigned URLs still served).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedS3, type EmbeddedS3 } from '../../src/embedded/s3-server.js';
import { ObjectStore } from '../../src/storage/object-store.js';
import { errorCode, ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { readDatasetImage } from '../support/images.js';
import { tinyBundleFile } from '../support/models.js';

describe('admins read no case content, investigators no other roles\u2019 key names', () => {
  let t: TestApp;
  let baselineId: string;
  beforeAll(async () => {
    t = await startTestApp();
    baselineId = await serveBaseline(t, await tinyBundleFile());
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('shows admins the ids and kinds of case work in the audit log, auditors everything', async () => {
    const secret = { title: 'Operation Nightjar', description: 'informant S. Marsh', note: 'frame from camera 7', file: 'marsh-eyes.jpg', reason: 'suspect identified as J. Doe' };
    const caseId = ok(await t.gql(`mutation($i: CreateCaseInput!) { createCase(input: $i) { id } }`, { i: { title: secret.title, description: secret.description } })).createCase.id;
    const classified = ok(
      await t.upload(
        `mutation($c: ID!, $f: Upload!, $n: String) { classifyImage(caseId: $c, file: $f, note: $n) { prediction { id } } }`,
        { c: caseId, f: null, n: secret.note },
        { f: { name: secret.file, bytes: readDatasetImage('female', 0) } },
      ),
    ).classifyImage;
    ok(await t.gql(`mutation($id: ID!) { explainPrediction(id: $id) { sha256 } }`, { id: classified.prediction.id }));
    ok(await t.gql(`mutation($id: ID!, $r: String) { closeCase(id: $id, reason: $r) { id } }`, { id: caseId, r: secret.reason }));

    const log = `{ auditEvents(first: 100) { nodes { action entityType entityId details } } }`;
    const asAdmin = ok(await t.gql(log, {}, t.keys.ADMIN)).auditEvents.nodes as Array<{ action: string; entityId: string; details: Record<string, unknown> }>;
    const caseWork = asAdmin.filter((e) => /^(case|evidence|prediction)\./.test(e.action));
    expect(caseWork.map((e) => e.action)).toEqual(expect.arrayContaining(['case.create', 'evidence.add', 'prediction.create', 'prediction.explain', 'case.close']));
    const adminText = JSON.stringify(asAdmin);
    for (const value of Object.values(secret)) expect(adminText).not.toContain(value);
    for (const e of caseWork) expect(e.details).toMatchObject({ redacted: true });
    expect(caseWork.find((e) => e.action === 'case.create')!.entityId).toBe(caseId);

    const asAuditor = JSON.stringify(ok(await t.gql(log, {}, t.keys.AUDITOR)).auditEvents.nodes);
    expect(asAuditor).toContain(secret.title);
    expect(asAuditor).toContain(secret.reason);
  });

  it('treats heatmaps as case content: no explanation URL for admins', async () => {
    const caseId = ok(await t.gql(`mutation { createCase(input: { title: "heatmap" }) { id } }`)).createCase.id;
    const { prediction } = ok(
      await t.upload(`mutation($c: ID!, $f: Upload!) { classifyImage(caseId: $c, file: $f) { prediction { id } } }`, { c: caseId, f: null }, { f: { name: 'e.jpg', bytes: readDatasetImage('male', 1) } }),
    ).classifyImage;
    const url = ok(await t.gql(`mutation($id: ID!) { explainPrediction(id: $id) { url } }`, { id: prediction.id })).explainPrediction.url;
    expect((await fetch(url)).status).toBe(200);

    const q = `query($mv: ID!) { predictionsByModelVersion(modelVersionId: $mv, first: 100) { nodes { id explanation { sha256 url } } } }`;
    const admin = await t.gql(q, { mv: baselineId }, t.keys.ADMIN);
    expect(errorCode(admin)).toBe('FORBIDDEN');
    expect(admin.errors!.every((e) => e.path?.at(-1) === 'url')).toBe(true);
    const ids = await t.gql(`query($mv: ID!) { predictionsByModelVersion(modelVersionId: $mv, first: 100) { nodes { id explanation { sha256 } } } }`, { mv: baselineId }, t.keys.ADMIN);
    expect(ok(ids).predictionsByModelVersion.nodes.some((n: { id: string }) => n.id === prediction.id)).toBe(true);
  });

  it('does not show investigators who changed a model\u2019s stage', async () => {
    const q = `query($id: ID!) { modelVersion(id: $id) { stageChanges { toStage changedBy { name } } } }`;
    const investigator = await t.gql(q, { id: baselineId }, t.keys.INVESTIGATOR);
    expect(errorCode(investigator)).toBe('FORBIDDEN');
    expect(JSON.stringify(investigator.data ?? {})).not.toContain('test admin');
    ok(await t.gql(`query($id: ID!) { modelVersion(id: $id) { stageChanges { toStage reason } } }`, { id: baselineId }, t.keys.INVESTIGATOR));
    expect(errorCode(await t.gql(q, { id: baselineId }, t.keys.AUDITOR))).toBeUndefined();
  });
});

describe('embedded S3 server', () => {
  let s3: EmbeddedS3;
  let store: ObjectStore;
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'eyecase-s3-private-'));
    s3 = await startEmbeddedS3({ directory: dir, port: 0, bucket: 'private' });
    store = new ObjectStore(s3.config);
    await store.ensureBucket();
  });
  afterAll(async () => {
    await s3?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses unsigned reads and listings; serves signed requests and presigned URLs; refuses tampered ones', async () => {
    const stored = await store.putContent('images', Buffer.from('an eye'), 'image/png');
    const base = `http://127.0.0.1:${s3.config.port}`;
    for (const url of [`${base}/private/${stored.key}`, `${base}/private`, `${base}/private?list-type=2`, `${base}/`]) {
      const res = await fetch(url);
      expect([url, res.status]).toEqual([url, 403]);
      expect(await res.text()).toContain('AccessDenied');
    }
    expect((await fetch(`${base}/private/${stored.key}`, { method: 'PUT', body: 'overwritten' })).status).toBe(403);
    expect((await fetch(`${base}/private/${stored.key}`, { method: 'DELETE' })).status).toBe(403);

    // The API's own signed requests and the presigned URLs it hands out still work.
    expect((await store.get(stored.key)).toString()).toBe('an eye');
    expect(await store.listKeys('images/')).toEqual([stored.key]);
    const presigned = await store.presignedGetUrl(stored.key, 60);
    const ok200 = await fetch(presigned);
    expect(ok200.status).toBe(200);
    expect(await ok200.text()).toBe('an eye');
    const tampered = presigned.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
    expect((await fetch(tampered)).status).toBe(403);
    // A signature by a key the server does not know is refused too.
    const stranger = new ObjectStore({ ...s3.config, accessKey: 'STRANGER', secretKey: 'nope' });
    await expect(stranger.get(stored.key)).rejects.toThrow();
  });
});
