import { createApp } from '../../src/app.js';
import { silentLogger } from '../../src/logger.js';
import type { TrainingRunner } from '../../src/modules/training/training-runner.js';
import { createServices } from '../../src/services.js';
import { adminQuery } from '../support/db.js';
import { apiDatabase, errorCode, ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';
import { readDatasetImage, syntheticImage } from '../support/images.js';
import { tinyBundle, tinyBundleFile } from '../support/models.js';
import { promote } from '../support/promotion.js';
import { seedDatasetVersion, startInProcessRunner, TINY_HYPERPARAMETERS, waitFor } from '../support/training.js';

const CLASSIFY_IMAGE = `mutation($caseId: ID!, $file: Upload!, $note: String, $mv: ID) {
  classifyImage(caseId: $caseId, file: $file, note: $note, modelVersionId: $mv) {
    evidence { id image { sha256 } }
    prediction { id probFemale probMale decision thresholdFemale thresholdMale guardScore guardThreshold modelVersionId artifactSha256 imageSha256 backend preprocessingVersion latencyMs requestedBy { name } modelVersion { version stage artifactSha256 } }
  } }`;
const CLASSIFY_EVIDENCE = `mutation($id: ID!, $mv: ID) { classifyEvidence(evidenceId: $id, modelVersionId: $mv) { id modelVersionId decision } }`;

let t: TestApp;
let baselineId: string;
let runner: TrainingRunner | undefined;
beforeAll(async () => {
  t = await startTestApp();
  baselineId = await serveBaseline(t, await tinyBundleFile());
}, 120_000);
afterAll(async () => {
  await runner?.stop();
  await t.stop();
});

async function newCase(title = 'Classification') {
  return ok(await t.gql(`mutation($t: String!) { createCase(input: { title: $t }) { id } }`, { t: title })).createCase.id as string;
}

const classifyImage = (caseId: string, bytes: Buffer, extra: Record<string, unknown> = {}, key = t.keys.INVESTIGATOR) =>
  t.upload(CLASSIFY_IMAGE, { caseId, file: null, ...extra }, { file: { name: 'eye.jpg', bytes } }, key);

describe('classification', () => {
  it('classifyImage stores the evidence and a complete, calibrated prediction in one request', async () => {
    const caseId = await newCase();
    const bytes = readDatasetImage('female', 0);
    const { evidence, prediction } = ok(await classifyImage(caseId, bytes, { note: 'camera 2' })).classifyImage;
    expect(prediction.probFemale + prediction.probMale).toBeCloseTo(1, 6);
    expect(prediction.thresholdFemale).toBeLessThanOrEqual(prediction.thresholdMale);
    expect(prediction.guardThreshold).toEqual(expect.any(Number));
    const band = prediction.probMale <= prediction.thresholdFemale ? 'FEMALE' : prediction.probMale >= prediction.thresholdMale ? 'MALE' : 'INCONCLUSIVE';
    expect(prediction.decision).toBe(prediction.guardScore < prediction.guardThreshold ? 'NOT_AN_EYE' : band);
    expect(prediction).toMatchObject({ modelVersionId: baselineId, imageSha256: evidence.image.sha256, requestedBy: { name: 'test investigator' }, modelVersion: { version: 1, stage: 'PRODUCTION' } });
    expect(prediction.artifactSha256).toBe(prediction.modelVersion.artifactSha256);
    // onnxruntime-node is installed with the project, so it serves (INFERENCE_RUNTIME=auto).
    expect(prediction.backend).toBe('onnxruntime');
    expect(prediction.latencyMs).toBeGreaterThan(0);
    const actions = (await t.services.db.auditEvent.findMany({ where: { entityId: { in: [evidence.id, prediction.id] } }, orderBy: { seq: 'asc' } })).map((e) => e.action);
    expect(actions).toEqual(['evidence.add', 'prediction.create']);
  });

  it('refuses bad uploads and closed cases, leaving no evidence, prediction or object behind', async () => {
    const caseId = await newCase();
    const objects = (await t.services.store.listKeys('images/')).length;
    const counts = async () => [await t.services.db.evidence.count(), await t.services.db.prediction.count()];
    const before = await counts();
    expect(errorCode(await classifyImage(caseId, Buffer.from('GIF89a not supported')))).toBe('UNSUPPORTED_MEDIA_TYPE');
    // The classifier's decode is the upload's integrity check here: a cut JPEG is the caller's mistake.
    const jpeg = readDatasetImage('male', 0);
    const cut = await classifyImage(caseId, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    expect(errorCode(cut)).toBe('BAD_USER_INPUT');
    expect(cut.errors?.[0].message).toMatch(/looks like image\/jpeg but could not be decoded/);
    ok(await t.gql(`mutation($id: ID!) { closeCase(id: $id) { id } }`, { id: caseId }));
    const closed = await classifyImage(caseId, await syntheticImage(900));
    expect(errorCode(closed)).toBe('CONFLICT');
    expect(closed.errors?.[0].message).toMatch(/closed/);
    expect(errorCode(await t.gql(`mutation($c: ID!) { classifyCaseEvidence(caseId: $c) { id } }`, { c: caseId }))).toBe('CONFLICT');
    expect(await counts()).toEqual(before);
    expect((await t.services.store.listKeys('images/')).length).toBe(objects);
  });

  it('classifies with a named version, records it, and refuses archived or unknown versions', async () => {
    const caseId = await newCase();
    const ev = ok(await t.upload(`mutation($c: ID!, $f: Upload!) { addEvidence(caseId: $c, file: $f) { id } }`, { c: caseId, f: null }, { f: { name: 'a.jpg', bytes: readDatasetImage('male', 0) } })).addEvidence;
    const candidate = await t.services.db.$transaction(async (tx) => t.services.registry.register(tx, { system: 'test' }, { bundle: await tinyBundle() }));
    const named = ok(await t.gql(CLASSIFY_EVIDENCE, { id: ev.id, mv: candidate.id })).classifyEvidence;
    expect(named.modelVersionId).toBe(candidate.id);
    const audit = await t.services.db.auditEvent.findFirstOrThrow({ where: { entityId: named.id } });
    expect(audit.details).toMatchObject({ modelVersionId: candidate.id, modelStage: 'CANDIDATE' });
    ok(await t.gql(`mutation($id: ID!) { archiveModelVersion(id: $id, reason: "test") { id } }`, { id: candidate.id }, t.keys.ADMIN));
    expect(errorCode(await t.gql(CLASSIFY_EVIDENCE, { id: ev.id, mv: candidate.id }))).toBe('CONFLICT');
    expect(errorCode(await t.gql(CLASSIFY_EVIDENCE, { id: ev.id, mv: '00000000-0000-0000-0000-000000000000' }))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(CLASSIFY_EVIDENCE, { id: '00000000-0000-0000-0000-000000000000' }))).toBe('NOT_FOUND');
    // classifyImage looks the model up inside the upload check (its decode validates the bytes):
    // an unknown version stays NOT_FOUND, never a decoding error, and nothing is stored.
    const before = await t.services.db.evidence.count({ where: { caseId } });
    expect(errorCode(await classifyImage(caseId, readDatasetImage('female', 1), { mv: '00000000-0000-0000-0000-000000000000' }))).toBe('NOT_FOUND');
    expect(await t.services.db.evidence.count({ where: { caseId } })).toBe(before);
  });

  it('classifyCaseEvidence classifies only what the production model has not seen yet', async () => {
    const caseId = await newCase();
    const add = `mutation($c: ID!, $f: Upload!) { addEvidence(caseId: $c, file: $f) { id } }`;
    for (let i = 0; i < 3; i++) ok(await t.upload(add, { c: caseId, f: null }, { f: { name: `${i}.jpg`, bytes: readDatasetImage(i % 2 ? 'male' : 'female', 1 + i) } }));
    const first = ok(await t.gql(`mutation($c: ID!) { classifyCaseEvidence(caseId: $c) { evidenceId modelVersionId } }`, { c: caseId })).classifyCaseEvidence;
    expect(first).toHaveLength(3);
    expect(new Set(first.map((p: { evidenceId: string }) => p.evidenceId)).size).toBe(3);
    expect(ok(await t.gql(`mutation($c: ID!) { classifyCaseEvidence(caseId: $c) { id } }`, { c: caseId })).classifyCaseEvidence).toEqual([]);
  });

  it('records each evidence item once when classifyCaseEvidence is called twice at the same time', async () => {
    const caseId = await newCase('Double click');
    const add = `mutation($c: ID!, $f: Upload!) { addEvidence(caseId: $c, file: $f) { id } }`;
    for (let i = 0; i < 4; i++) ok(await t.upload(add, { c: caseId, f: null }, { f: { name: `${i}.jpg`, bytes: readDatasetImage('female', 4 + i) } }));
    const q = `mutation($c: ID!) { classifyCaseEvidence(caseId: $c) { evidenceId } }`;
    const [a, b] = await Promise.all([t.gql(q, { c: caseId }), t.gql(q, { c: caseId })]);
    expect(ok(a).classifyCaseEvidence.length + ok(b).classifyCaseEvidence.length).toBe(4);
    expect(await t.services.db.prediction.count({ where: { caseId } })).toBe(4);
  });

  it('keeps predictions immutable in the database itself', async () => {
    const p = await t.services.db.prediction.findFirstOrThrow();
    await expect(adminQuery(`UPDATE "Prediction" SET decision = 'MALE' WHERE id = '${p.id}'`, t.db.name)).rejects.toThrow(/append-only/);
    await expect(adminQuery(`DELETE FROM "Prediction" WHERE id = '${p.id}'`, t.db.name)).rejects.toThrow(/append-only/);
  });

  it('explains a prediction with a stored heatmap, once', async () => {
    const caseId = await newCase();
    const { prediction } = ok(await classifyImage(caseId, readDatasetImage('male', 4))).classifyImage;
    const q = `mutation($id: ID!) { explainPrediction(id: $id) { predictionId method sha256 url } }`;
    const first = ok(await t.gql(q, { id: prediction.id })).explainPrediction;
    expect(first.method).toMatch(/occlusion|grad/i);
    const res = await fetch(first.url);
    expect(res.status).toBe(200);
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    const second = ok(await t.gql(q, { id: prediction.id })).explainPrediction;
    expect(second.sha256).toBe(first.sha256);
    expect(await t.services.db.auditEvent.count({ where: { entityId: prediction.id, action: 'prediction.explain' } })).toBe(1);
    const read = ok(await t.gql(`query($id: ID!) { prediction(id: $id) { explanation { sha256 } } }`, { id: prediction.id }, t.keys.AUDITOR)).prediction;
    expect(read.explanation.sha256).toBe(first.sha256);
    expect(errorCode(await t.gql(q, { id: '00000000-0000-0000-0000-000000000000' }))).toBe('NOT_FOUND');
  });
});

describe('provenance', () => {
  it('traces a prediction to its model version, promotions, training run, dataset version and image', async () => {
    const { versionId } = await seedDatasetVersion(t, { female: 24, male: 24, offset: 14 });
    runner = await startInProcessRunner(t);
    const run = ok(await t.gql(`mutation($v: ID!, $hp: HyperparametersInput) { startTrainingRun(datasetVersionId: $v, hyperparameters: $hp) { id } }`, { v: versionId, hp: TINY_HYPERPARAMETERS }, t.keys.ADMIN)).startTrainingRun;
    const mvId = await waitFor('the candidate', async () => (await t.services.db.modelVersion.findUnique({ where: { trainingRunId: run.id } }))?.id);
    const previous = (await t.services.registry.production())!.id;

    // Promotion while classifications are in flight: every request succeeds, on one model or the other.
    const caseId = await newCase('In flight');
    const inflight = Array.from({ length: 12 }, (_, i) => classifyImage(caseId, readDatasetImage(i % 2 ? 'male' : 'female', 20 + (i >> 1))));
    await promote(t, mvId, 'trained on the curated set');
    const results = await Promise.all(inflight);
    for (const r of results) expect([previous, mvId]).toContain(ok(r).classifyImage.prediction.modelVersionId);
    await waitFor('serving to switch', async () => (await t.services.serving.production()).version.id === mvId, 10_000);

    const { prediction } = ok(await classifyImage(caseId, readDatasetImage('female', 8))).classifyImage;
    expect(prediction.modelVersionId).toBe(mvId);
    const traced = ok(await t.gql(`query($id: ID!) { prediction(id: $id) {
      imageSha256 evidence { image { sha256 } } case { id }
      modelVersion { id version stageChanges { fromStage toStage reason changedBy { name } }
        trainingRun { id hyperparameters backend device epochs { epoch } }
        datasetVersion { id version manifestSha256 counts { female male total } manifestUrl } } } }`, { id: prediction.id }, t.keys.AUDITOR)).prediction;
    expect(traced.imageSha256).toBe(traced.evidence.image.sha256);
    expect(traced.case.id).toBe(caseId);
    expect(traced.modelVersion.stageChanges.map((c: { toStage: string }) => c.toStage)).toEqual(['CANDIDATE', 'PRODUCTION']);
    // Promoted by the second admin's approval of the first admin's request.
    expect(traced.modelVersion.stageChanges[1]).toMatchObject({ reason: expect.stringContaining('trained on the curated set'), changedBy: { name: 'test admin 2' } });
    expect(traced.modelVersion.trainingRun).toMatchObject({ id: run.id, hyperparameters: { inputSize: 24, epochs: 2 } });
    expect(traced.modelVersion.trainingRun.backend).toBeTruthy();
    expect(traced.modelVersion.datasetVersion).toMatchObject({ id: versionId, counts: { female: 24, male: 24, total: 48 } });
    const manifest = await (await fetch(traced.modelVersion.datasetVersion.manifestUrl)).text();
    expect(manifest).toContain(`"sha256"`);

    const listed = ok(await t.gql(`query($id: ID!) { predictionsByModelVersion(modelVersionId: $id, first: 100) { nodes { id } } }`, { id: mvId }, t.keys.AUDITOR)).predictionsByModelVersion.nodes;
    // Admins see what a version decided, not the cases and images behind it.
    expect(ok(await t.gql(`query($id: ID!) { prediction(id: $id) { caseId evidenceId decision } }`, { id: prediction.id }, t.keys.ADMIN)).prediction.caseId).toBe(caseId);
    expect(errorCode(await t.gql(`query($id: ID!) { prediction(id: $id) { case { title } } }`, { id: prediction.id }, t.keys.ADMIN))).toBe('FORBIDDEN');
    expect(errorCode(await t.gql(`query($id: ID!) { prediction(id: $id) { evidence { note } } }`, { id: prediction.id }, t.keys.ADMIN))).toBe('FORBIDDEN');
    expect(listed.map((n: { id: string }) => n.id)).toContain(prediction.id);

    const cmp = ok(await t.gql(`query($a: ID!, $b: ID!) { compareModelVersions(a: $a, b: $b) { n comparedOn decisionAgreement labelAgreement accuracyA accuracyB metrics { name a b difference } } }`, { a: mvId, b: baselineId }, t.keys.ADMIN)).compareModelVersions;
    expect(cmp.comparedOn).toMatch(/validation split/);
    // The same validation images the engine held out, and the same accuracy it measured on them.
    const evaluation = (await t.services.db.modelVersion.findUniqueOrThrow({ where: { id: mvId } })).evaluation as { dataCounts: { validation: number }; metrics: { accuracy: number } };
    expect(cmp.n).toBe(evaluation.dataCounts.validation);
    expect(Math.abs(cmp.accuracyA - evaluation.metrics.accuracy)).toBeLessThanOrEqual(0.05);
    expect(cmp.decisionAgreement).toBeGreaterThanOrEqual(0);
    expect(cmp.decisionAgreement).toBeLessThanOrEqual(1);
    expect(cmp.metrics.find((m: { name: string }) => m.name === 'accuracy')).toBeDefined();
  }, 120_000);

  it('prints a case report with evidence, predictions and the case audit trail', async () => {
    const caseId = await newCase('Report');
    const { prediction } = ok(await classifyImage(caseId, readDatasetImage('male', 9))).classifyImage;
    const report = ok(await t.gql(`query($id: ID!) { caseReport(caseId: $id) { case { id } evidence { id predictions { id } } predictions { id modelVersion { version } } auditEvents { action } } }`, { id: caseId }, t.keys.AUDITOR)).caseReport;
    expect(report.case.id).toBe(caseId);
    expect(report.evidence).toHaveLength(1);
    expect(report.predictions.map((p: { id: string }) => p.id)).toEqual([prediction.id]);
    expect(report.auditEvents.map((e: { action: string }) => e.action)).toEqual(['case.create', 'evidence.add', 'prediction.create']);
  });
});

describe('batched nested queries', () => {
  it('costs the same number of SQL queries for a case with 50 evidence items as for one with 5', async () => {
    let counting = false;
    let queries = 0;
    // The API key lookup is cached per time window, so whether it runs depends on timing: not counted.
    const database = apiDatabase(t.db.url, { onQuery: (sql) => void (counting && !/"secretHash"|"lastUsedAt"/.test(sql) && queries++) });
    const services = createServices({ ...t.services, db: database.db, sql: database.sql, logger: silentLogger });
    await services.serving.start();
    const app = await createApp(services, { port: 0, host: '127.0.0.1' });
    const principal = await t.services.apiKeys.authenticate(t.keys.INVESTIGATOR);

    async function caseWith(n: number) {
      const kase = await services.cases.create(principal, { title: `batched ${n}` });
      for (let i = 0; i < n; i++) await services.evidence.add(principal, { caseId: kase.id, bytes: await syntheticImage(10_000 + n * 100 + i) });
      await services.predictions.classifyCaseEvidence(principal, kase.id);
      return kase.id;
    }
    const query = `query($id: ID!) { case(id: $id) { evidence(first: 100) { nodes { id addedBy { name } case { id } image { sha256 } predictions { decision modelVersion { version stage } requestedBy { name } } } } } }`;
    async function count(caseId: string) {
      queries = 0;
      counting = true;
      const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.INVESTIGATOR}` }, body: JSON.stringify({ query, variables: { id: caseId } }) });
      const body = (await res.json()) as { data: { case: { evidence: { nodes: unknown[] } } } };
      counting = false;
      return { queries, items: body.data.case.evidence.nodes.length };
    }
    await count(await caseWith(1)); // warms the key cache and the loaders' code paths
    const small = await count(await caseWith(5));
    const large = await count(await caseWith(50));
    expect(small.items).toBe(5);
    expect(large.items).toBe(50);
    expect(large.queries).toBe(small.queries);
    expect(large.queries).toBeLessThanOrEqual(10);
    await app.stop();
    await services.serving.stop();
    await database.close();
  }, 120_000);
});
