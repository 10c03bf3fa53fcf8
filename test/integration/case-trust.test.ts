// Issue 10 through GraphQL: case membership, the chain of custody (reads included) and the case
// timeline, human review of predictions and the case report, and the verifiable case export.
import { createHash, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { verifyCaseExport } from '../../src/modules/exports/verify-export.js';
import { adminQuery } from '../support/db.js';
import { errorCode, type GqlResult, ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { readDatasetImage, syntheticImage } from '../support/images.js';
import { tinyBundleFile } from '../support/models.js';
import { buildZip, readZip } from '../support/zip.js';

const CLASSIFY = `mutation($c: ID!, $f: Upload!) { classifyImage(caseId: $c, file: $f) { evidence { id image { sha256 } } prediction { id decision } } }`;
const ADD_MEMBER = `mutation($c: ID!, $k: ID!) { addCaseMember(caseId: $c, apiKeyId: $k) { apiKeyId member { name } addedBy { name } } }`;
const REMOVE_MEMBER = `mutation($c: ID!, $k: ID!) { removeCaseMember(caseId: $c, apiKeyId: $k) { apiKeyId } }`;
const REVIEW = `mutation($id: ID!, $v: ReviewVerdict!, $r: String!) { reviewPrediction(predictionId: $id, verdict: $v, reason: $r) { id verdict reason createdAt reviewer { name } } }`;
const TIMELINE = `query($id: ID!, $first: Int, $after: String) { caseTimeline(caseId: $id, first: $first, after: $after) { nodes { seq action actor entityType details } pageInfo { hasNextPage endCursor } } }`;

let t: TestApp;
let owner: string;
let other: string;
let seed = 1;
beforeAll(async () => {
  t = await startTestApp();
  await serveBaseline(t, await tinyBundleFile());
  owner = t.keys.INVESTIGATOR;
  other = t.secondKeys.INVESTIGATOR;
}, 120_000);
afterAll(() => t.stop());

async function newCase(title = 'Trust'): Promise<{ id: string; reference: string }> {
  return ok(await t.gql(`mutation($t: String!) { createCase(input: { title: $t }) { id reference } }`, { t: title }, owner)).createCase;
}
const classify = async (caseId: string, bytes?: Buffer, key = owner) => t.upload(CLASSIFY, { c: caseId, f: null }, { f: { name: 'eye.jpg', bytes: bytes ?? (await syntheticImage(seed++)) } }, key);
/** A GraphQL call with a chosen x-request-id header. */
async function withRequestId(requestId: string, query: string, variables: Record<string, unknown>, key: string): Promise<GqlResult> {
  const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-request-id': requestId }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, ...((await res.json()) as object) };
}
const eventsOf = (entityId: string) => t.services.db.auditEvent.findMany({ where: { entityId }, orderBy: { seq: 'asc' } });

describe('case membership', () => {
  it('lets only members see a case; members and admins add and remove investigators; every change is audited', async () => {
    const c = await newCase('Membership');
    const read = (key: string) => t.gql(`query($id: ID!) { case(id: $id) { id title } }`, { id: c.id }, key);
    expect(errorCode(await read(other))).toBe('NOT_FOUND');
    // A non-member cannot let themselves in, and nothing changes.
    expect(errorCode(await t.gql(ADD_MEMBER, { c: c.id, k: t.keyId(other) }, other))).toBe('NOT_FOUND');
    expect(await t.services.db.caseMember.count({ where: { caseId: c.id } })).toBe(1);

    const added = ok(await t.gql(ADD_MEMBER, { c: c.id, k: t.keyId(other) }, owner)).addCaseMember;
    expect(added).toEqual([
      { apiKeyId: t.keyId(owner), member: { name: 'test investigator' }, addedBy: { name: 'test investigator' } },
      { apiKeyId: t.keyId(other), member: { name: 'test investigator 2' }, addedBy: { name: 'test investigator' } },
    ]);
    expect(ok(await read(other)).case.title).toBe('Membership');
    expect(ok(await t.gql(`{ cases(first: 100) { nodes { id } } }`, {}, other)).cases.nodes.map((n: { id: string }) => n.id)).toContain(c.id);

    // Admins manage membership without seeing the case.
    expect(errorCode(await read(t.keys.ADMIN))).toBe('FORBIDDEN');
    expect(ok(await t.gql(REMOVE_MEMBER, { c: c.id, k: t.keyId(other) }, t.keys.ADMIN)).removeCaseMember).toEqual([{ apiKeyId: t.keyId(owner) }]);
    expect(errorCode(await read(other))).toBe('NOT_FOUND');
    expect(ok(await t.gql(`query($id: ID!) { caseMembers(caseId: $id) { apiKeyId } }`, { id: c.id }, t.keys.AUDITOR)).caseMembers).toHaveLength(1);

    // Bad input changes nothing.
    expect(errorCode(await t.gql(ADD_MEMBER, { c: c.id, k: t.keyId(t.keys.AUDITOR) }, owner))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(ADD_MEMBER, { c: c.id, k: t.keyId(t.keys.ADMIN) }, t.keys.ADMIN))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(ADD_MEMBER, { c: c.id, k: '00000000-0000-0000-0000-000000000000' }, owner))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(ADD_MEMBER, { c: c.id, k: t.keyId(owner) }, owner))).toBe('CONFLICT');
    expect(errorCode(await t.gql(ADD_MEMBER, { c: '00000000-0000-0000-0000-000000000000', k: t.keyId(other) }, t.keys.ADMIN))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(REMOVE_MEMBER, { c: c.id, k: t.keyId(other) }, owner))).toBe('NOT_FOUND');
    const last = await t.gql(REMOVE_MEMBER, { c: c.id, k: t.keyId(owner) }, owner);
    expect(errorCode(last)).toBe('CONFLICT');
    expect(last.errors?.[0].message).toMatch(/at least one member/);
    const revoked = ok(await t.gql(`mutation { createApiKey(input: { name: "gone", role: INVESTIGATOR }) { key { id } } }`, {}, t.keys.ADMIN)).createApiKey.key.id;
    ok(await t.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: revoked }, t.keys.ADMIN));
    expect(errorCode(await t.gql(ADD_MEMBER, { c: c.id, k: revoked }, owner))).toBe('BAD_USER_INPUT');
    expect(await t.services.db.caseMember.count({ where: { caseId: c.id } })).toBe(1);

    const changes = (await eventsOf(c.id)).filter((e) => e.action.startsWith('case.member.')).map((e) => [e.action, e.actor, (e.details as { apiKeyId: string }).apiKeyId]);
    expect(changes).toEqual([
      ['case.member.add', 'key:test investigator', t.keyId(other)],
      ['case.member.remove', 'key:test admin', t.keyId(other)],
    ]);
    // Admins read these events without case content (no key names): ids and kinds only.
    const seenByAdmin = ok(await t.gql(`query($id: String!) { auditEvents(filter: { entityId: $id, action: "case.member.add" }) { nodes { details } } }`, { id: c.id }, t.keys.ADMIN)).auditEvents.nodes;
    expect(seenByAdmin).toEqual([{ details: { apiKeyId: t.keyId(other), requestId: expect.any(String), redacted: true } }]);
  });

  it('answers NOT_FOUND to a non-member on every path to the contents, and changes nothing', async () => {
    const c = await newCase('Hidden');
    const { evidence, prediction } = ok(await classify(c.id)).classifyImage;
    const before = [await t.services.db.evidence.count(), await t.services.db.prediction.count(), await t.services.db.predictionReview.count()];
    const attempts = [
      t.gql(`query($id: ID!) { evidence(id: $id) { id } }`, { id: evidence.id }, other),
      t.gql(`query($id: ID!) { prediction(id: $id) { id } }`, { id: prediction.id }, other),
      t.gql(`query($id: ID!) { caseReport(caseId: $id) { generatedAt } }`, { id: c.id }, other),
      t.gql(TIMELINE, { id: c.id }, other),
      t.gql(`query($r: String!) { caseByReference(reference: $r) { id } }`, { r: c.reference }, other),
      t.gql(REVIEW, { id: prediction.id, v: 'CONFIRMED', r: 'looks right' }, other),
      t.gql(`mutation($id: ID!) { classifyEvidence(evidenceId: $id) { id } }`, { id: evidence.id }, other),
      t.gql(`mutation($id: ID!) { explainPrediction(id: $id) { url } }`, { id: prediction.id }, other),
      t.gql(`mutation($id: ID!) { exportCase(caseId: $id) { url } }`, { id: c.id }, other),
      classify(c.id, undefined, other),
    ];
    for (const res of await Promise.all(attempts)) expect(errorCode(res)).toBe('NOT_FOUND');
    expect([await t.services.db.evidence.count(), await t.services.db.prediction.count(), await t.services.db.predictionReview.count()]).toEqual(before);
    expect(await t.services.store.listKeys(`exports/${c.id}/`)).toEqual([]);
  });
});

describe('chain of custody', () => {
  it('records reads of case content with who, what, when and the request id, and shows them on the timeline oldest first', async () => {
    const c = await newCase('Custody');
    const first = ok(await classify(c.id, readDatasetImage('female', 1))).classifyImage;
    ok(await classify(c.id, readDatasetImage('male', 1)));
    ok(await withRequestId('custody-view-1', `query($id: ID!) { case(id: $id) { id } }`, { id: c.id }, owner));
    // A page of evidence with their URLs: one event per URL handed out, all under this request.
    const page = ok(await withRequestId('custody-urls-1', `query($id: ID!) { case(id: $id) { evidence { nodes { id image { url } } } } }`, { id: c.id }, t.keys.AUDITOR)).case.evidence.nodes;
    expect(page).toHaveLength(2);
    ok(await withRequestId('custody-report-1', `query($id: ID!) { caseReport(caseId: $id) { generatedAt } }`, { id: c.id }, owner));
    ok(await t.gql(`mutation($id: ID!) { explainPrediction(id: $id) { url } }`, { id: first.prediction.id }, owner));

    const events = await t.services.db.auditEvent.findMany({ where: { OR: [{ entityId: c.id }, { entityId: { in: page.map((e: { id: string }) => e.id) } }] }, orderBy: { seq: 'asc' } });
    const byRequest = (id: string) => events.filter((e) => (e.details as { requestId?: string }).requestId === id).map((e) => [e.action, e.actor]);
    expect(byRequest('custody-view-1')).toEqual([['case.view', 'key:test investigator']]);
    expect(byRequest('custody-urls-1')).toEqual([['case.view', 'key:test auditor'], ['evidence.imageUrl', 'key:test auditor'], ['evidence.imageUrl', 'key:test auditor']]);
    expect(byRequest('custody-report-1')).toEqual([['case.report', 'key:test investigator']]);
    for (const e of events) expect((e.details as { requestId?: string }).requestId).toEqual(expect.any(String));

    // The timeline: every event about the case, its evidence and predictions, oldest first, paged.
    const all: Array<{ seq: string; action: string; entityType: string }> = [];
    let after: string | null = null;
    do {
      const tl: { nodes: typeof all; pageInfo: { hasNextPage: boolean; endCursor: string } } = ok(await t.gql(TIMELINE, { id: c.id, first: 3, after }, t.keys.AUDITOR)).caseTimeline;
      all.push(...tl.nodes);
      after = tl.pageInfo.hasNextPage ? tl.pageInfo.endCursor : null;
    } while (after);
    const seqs = all.map((e) => BigInt(e.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => (a < b ? -1 : 1)));
    const actions = all.map((e) => e.action);
    expect(actions.slice(0, 12)).toEqual([
      'case.create', 'evidence.add', 'prediction.create', 'evidence.add', 'prediction.create',
      'case.view', 'case.view', 'evidence.imageUrl', 'evidence.imageUrl', 'case.report', 'prediction.explain', 'prediction.explanationUrl',
    ]);
    // Reading the timeline is a read too: each page walked so far shows up after the rest.
    expect(new Set(actions.slice(12))).toEqual(new Set(['case.timeline']));
    expect(actions.length).toBeGreaterThan(12);
    // Members read it too; admins may not.
    expect(ok(await t.gql(TIMELINE, { id: c.id }, owner)).caseTimeline.nodes[0].action).toBe('case.create');
    expect(errorCode(await t.gql(TIMELINE, { id: c.id }, t.keys.ADMIN))).toBe('FORBIDDEN');
    expect(errorCode(await t.gql(TIMELINE, { id: c.id, after: 'x' }, owner))).toBe('BAD_USER_INPUT');
    const chain = ok(await t.gql(`{ verifyAuditChain { ok } }`, {}, t.keys.AUDITOR)).verifyAuditChain;
    expect(chain.ok).toBe(true);
  });
});

describe('human review', () => {
  it('records immutable, superseding reviews with who and when, and the report keeps unreviewed machine decisions apart with the model limits', async () => {
    const c = await newCase('Review');
    const a = ok(await classify(c.id, readDatasetImage('female', 2))).classifyImage.prediction;
    const b = ok(await classify(c.id, readDatasetImage('male', 2))).classifyImage.prediction;
    expect(errorCode(await t.gql(REVIEW, { id: a.id, v: 'CONFIRMED', r: '   ' }, owner))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(REVIEW, { id: a.id, v: 'MAYBE', r: 'x' }, owner))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(REVIEW, { id: a.id, v: 'CONFIRMED', r: 'x' }, t.keys.AUDITOR))).toBe('FORBIDDEN');
    expect(errorCode(await t.gql(REVIEW, { id: '00000000-0000-0000-0000-000000000000', v: 'CONFIRMED', r: 'x' }, owner))).toBe('NOT_FOUND');

    const firstReview = ok(await t.gql(REVIEW, { id: a.id, v: 'NEEDS_EXPERT', r: 'eyelid shadow; ask the lab' }, owner)).reviewPrediction;
    expect(firstReview).toMatchObject({ verdict: 'NEEDS_EXPERT', reason: 'eyelid shadow; ask the lab', reviewer: { name: 'test investigator' } });
    ok(await t.gql(ADD_MEMBER, { c: c.id, k: t.keyId(other) }, owner));
    const second = ok(await t.gql(REVIEW, { id: a.id, v: 'CONFIRMED', r: 'lab agrees' }, other)).reviewPrediction;
    const shown = ok(await t.gql(`query($id: ID!) { prediction(id: $id) { review { id verdict reviewer { name } createdAt } reviews { verdict reason } } }`, { id: a.id }, t.keys.AUDITOR)).prediction;
    expect(shown.review).toMatchObject({ id: second.id, verdict: 'CONFIRMED', reviewer: { name: 'test investigator 2' } });
    expect(shown.reviews).toEqual([{ verdict: 'NEEDS_EXPERT', reason: 'eyelid shadow; ask the lab' }, { verdict: 'CONFIRMED', reason: 'lab agrees' }]);
    // Reviews are part of the record: the database refuses to change them.
    await expect(adminQuery(`UPDATE "PredictionReview" SET verdict = 'REJECTED' WHERE id = '${firstReview.id}'`, t.db.name)).rejects.toThrow(/append-only/);
    const audited = (await eventsOf(a.id)).filter((e) => e.action === 'prediction.review').map((e) => e.details as Record<string, unknown>);
    expect(audited).toMatchObject([{ verdict: 'NEEDS_EXPERT', supersedes: null }, { verdict: 'CONFIRMED', supersedes: firstReview.id }]);

    const report = ok(await t.gql(`query($id: ID!) { caseReport(caseId: $id) {
      predictions { id }
      reviewedPredictions { reviewState prediction { id } review { verdict reviewer { name } } modelCard { version } }
      unreviewedMachineDecisions { reviewState prediction { id decision } review { id } modelCard { accuracy recallGap calibrationError inconclusiveMeaning caveats } }
      modelCards { version accuracy validatedOn inconclusiveRate caveats } } }`, { id: c.id }, owner)).caseReport;
    expect(report.predictions).toHaveLength(2);
    expect(report.reviewedPredictions).toEqual([{ reviewState: 'CONFIRMED', prediction: { id: a.id }, review: { verdict: 'CONFIRMED', reviewer: { name: 'test investigator 2' } }, modelCard: { version: 1 } }]);
    expect(report.unreviewedMachineDecisions).toHaveLength(1);
    const unreviewed = report.unreviewedMachineDecisions[0];
    expect(unreviewed).toMatchObject({ reviewState: 'UNREVIEWED', prediction: { id: b.id }, review: null });
    const mv = (await t.services.registry.production())!;
    const metrics = (mv.evaluation as { metrics: { accuracy: number; ece: number } }).metrics;
    expect(unreviewed.modelCard.accuracy).toBe(metrics.accuracy);
    expect(unreviewed.modelCard.calibrationError).toBe(metrics.ece);
    expect(unreviewed.modelCard.inconclusiveMeaning).toContain(mv.thresholdFemale.toFixed(3));
    expect(unreviewed.modelCard.caveats.join(' ')).toMatch(/lead .* not a finding/);
    expect(report.modelCards).toHaveLength(1);

    // A closed case takes no more reviews.
    ok(await t.gql(`mutation($id: ID!) { closeCase(id: $id) { id } }`, { id: c.id }, owner));
    expect(errorCode(await t.gql(REVIEW, { id: b.id, v: 'REJECTED', r: 'too late' }, owner))).toBe('CONFLICT');
    expect(await t.services.db.predictionReview.count({ where: { predictionId: b.id } })).toBe(0);
  });
});

describe('case export', () => {
  async function exportAndDownload(caseId: string) {
    const exported = ok(await t.gql(`mutation($id: ID!) { exportCase(caseId: $id) { caseId objectKey sha256 byteSize fileCount auditChainHeadSeq auditChainHeadHash url expiresInSeconds } }`, { id: caseId }, owner)).exportCase;
    const res = await fetch(exported.url);
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'export-')), 'case.zip');
    await fs.writeFile(file, bytes);
    return { exported, bytes, file };
  }
  const rewrite = async (entries: Array<{ name: string; data: Buffer }>) => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'tampered-')), 'case.zip');
    await fs.writeFile(file, buildZip(entries));
    return file;
  };

  it('writes one ZIP with evidence, predictions, reviews, audit slice and model cards that verify offline, and says exactly what a tampered copy changed', async () => {
    const c = await newCase('Export');
    const one = ok(await classify(c.id, readDatasetImage('female', 3))).classifyImage;
    ok(await classify(c.id, readDatasetImage('male', 3)));
    ok(await t.gql(REVIEW, { id: one.prediction.id, v: 'CONFIRMED', r: 'matches the witness' }, owner));
    const headBefore = await t.services.audit.head();
    const { exported, bytes, file } = await exportAndDownload(c.id);
    expect(exported.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(exported.byteSize).toBe(bytes.length);
    expect(exported.auditChainHeadSeq).toBe(headBefore!.seq.toString());
    expect(exported.auditChainHeadHash).toBe(headBefore!.hash);

    const entries = await readZip(bytes);
    const names = entries.map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['case.json', 'evidence.jsonl', 'predictions.jsonl', 'reviews.jsonl', 'audit.jsonl', 'manifest.json']));
    expect(names.filter((n) => n.startsWith('images/'))).toHaveLength(2);
    expect(names.filter((n) => n.startsWith('model-cards/'))).toHaveLength(1);
    expect(exported.fileCount).toBe(names.length);
    const text = (name: string) => entries.find((e) => e.name === name)!.data.toString('utf8');
    const manifest = JSON.parse(text('manifest.json'));
    expect(manifest.auditChainHead).toMatchObject({ seq: headBefore!.seq.toString(), hash: headBefore!.hash, keyId: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(manifest.files.map((f: { path: string }) => f.path).sort()).toEqual(names.filter((n) => n !== 'manifest.json').sort());
    const predictions = text('predictions.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(predictions).toHaveLength(2);
    expect(predictions[0].modelVersion).toMatchObject({ version: 1, artifactSha256: predictions[0].artifactSha256 });
    expect(text('reviews.jsonl').trim().split('\n').map((l) => JSON.parse(l).reason)).toEqual(['matches the witness']);
    const audit = text('audit.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['case.create', 'evidence.add', 'prediction.create', 'prediction.review']));
    expect(audit.every((e) => BigInt(e.seq) <= headBefore!.seq)).toBe(true);

    // Exporting is itself an audit event, with the ZIP's SHA-256.
    const event = (await eventsOf(c.id)).find((e) => e.action === 'case.export')!;
    expect(event.details).toMatchObject({ sha256: exported.sha256, objectKey: exported.objectKey, auditChainHead: manifest.auditChainHead });

    expect(await verifyCaseExport(file)).toEqual({ ok: true, checkedFiles: names.length, auditEvents: audit.length, problems: [] });
    // The head is signed by the server's audit key: checked against that key given independently,
    // and refused against any other key or when the head was edited.
    const serverKey = (await t.services.auditAnchors.currentAnchoredHead('test')).publicKey;
    expect((await verifyCaseExport(file, serverKey)).problems).toEqual([]);
    const otherKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await verifyCaseExport(file, otherKey)).problems).toEqual([expect.stringMatching(/^manifest.json: the chain head was signed by key [0-9a-f]{64}, not by the trusted key given/)]);
    const movedHead = entries.map((e) => (e.name === 'manifest.json' ? { name: e.name, data: Buffer.from(JSON.stringify({ ...manifest, auditChainHead: { ...manifest.auditChainHead, seq: String(BigInt(manifest.auditChainHead.seq) - 1n) } })) } : e));
    expect((await verifyCaseExport(await rewrite(movedHead))).problems).toEqual(expect.arrayContaining(["manifest.json: the chain head's signature does not match its seq, hash and time"]));

    // Tampered copies: one image byte changed; a file removed; an audit event altered with the manifest "fixed" to match.
    const image = names.find((n) => n.startsWith('images/'))!;
    const flipped = entries.map((e) => (e.name === image ? { name: e.name, data: Buffer.concat([e.data.subarray(0, 100), Buffer.from([e.data[100] ^ 0xff]), e.data.subarray(101)]) } : e));
    const v1 = await verifyCaseExport(await rewrite(flipped));
    expect(v1.ok).toBe(false);
    expect(v1.problems).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${image}: SHA-256 is [0-9a-f]{64}, the manifest says`)), expect.stringMatching(new RegExp(`^${image}: its content's SHA-256`))]));

    const v2 = await verifyCaseExport(await rewrite(entries.filter((e) => e.name !== 'reviews.jsonl')));
    expect(v2.problems).toEqual(['reviews.jsonl: listed in the manifest but missing from the ZIP']);

    const forgedAudit = Buffer.from(audit.map((e) => JSON.stringify(e.action === 'prediction.review' ? { ...e, details: { ...e.details, verdict: 'REJECTED' } } : e)).join('\n') + '\n');
    const fixedManifest = { ...manifest, files: manifest.files.map((f: { path: string }) => (f.path === 'audit.jsonl' ? { ...f, sha256: createHash('sha256').update(forgedAudit).digest('hex'), size: forgedAudit.length } : f)) };
    const forged = entries.map((e) => (e.name === 'audit.jsonl' ? { name: e.name, data: forgedAudit } : e.name === 'manifest.json' ? { name: e.name, data: Buffer.from(JSON.stringify(fixedManifest)) } : e));
    const v3 = await verifyCaseExport(await rewrite(forged));
    expect(v3.problems).toEqual([expect.stringMatching(/^audit.jsonl: event \d+ \(prediction.review\) does not match its hash/)]);

    const v4 = await verifyCaseExport(await rewrite([...entries, { name: 'extra.txt', data: Buffer.from('planted') }]));
    expect(v4.problems).toEqual(['extra.txt: in the ZIP but not listed in the manifest']);
    expect((await verifyCaseExport(await rewrite([]))).ok).toBe(false);
  });

  it('leaves nothing behind when a source fails mid-export (an evidence image gone from the object store)', async () => {
    const c = await newCase('Broken');
    const { evidence } = ok(await classify(c.id)).classifyImage;
    ok(await classify(c.id));
    const row = await t.services.db.evidence.findUniqueOrThrow({ where: { id: evidence.id }, include: { image: true } });
    await t.services.store.delete(row.image.objectKey);
    const res = await t.gql(`mutation($id: ID!) { exportCase(caseId: $id) { url } }`, { id: c.id }, owner);
    expect(errorCode(res)).toBe('INTERNAL_SERVER_ERROR'); // the server lost a blob: not the caller's mistake
    expect(await t.services.store.listKeys(`exports/${c.id}/`)).toEqual([]);
    expect((await eventsOf(c.id)).map((e) => e.action)).not.toContain('case.export');
  });

  it('streams a larger case with evidence in many pages', async () => {
    const c = await newCase('Many');
    const n = 30;
    for (let i = 0; i < n; i++) ok(await t.upload(`mutation($c: ID!, $f: Upload!) { addEvidence(caseId: $c, file: $f) { id } }`, { c: c.id, f: null }, { f: { name: 'x.png', bytes: await syntheticImage(5000 + i) } }, owner));
    const { file } = await exportAndDownload(c.id);
    const result = await verifyCaseExport(file);
    expect(result).toMatchObject({ ok: true, problems: [] });
    expect(result.checkedFiles).toBe(n + 6); // images, case, evidence, predictions, reviews, audit, manifest (no model cards)
  }, 60_000);
});
