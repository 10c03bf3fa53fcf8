// NOT_AN_EYE on every classification path, with the committed baseline model: its weights are fixed,
// so its guard's answers are the same on every run (a model trained inside a test is not: training
// draws its initial weights and dropout unseeded).
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { ok, serveBaseline, startTestApp, type TestApp } from '../support/harness.js';

const CLASSIFY_IMAGE = `mutation($caseId: ID!, $file: Upload!) {
  classifyImage(caseId: $caseId, file: $file) { prediction { id decision guardScore guardThreshold } } }`;

let t: TestApp;
let baselineId: string;
beforeAll(async () => {
  t = await startTestApp();
  baselineId = await serveBaseline(t);
}, 120_000);
afterAll(() => t.stop());

async function newCase(title: string) {
  return ok(await t.gql(`mutation($t: String!) { createCase(input: { title: $t }) { id } }`, { t: title })).createCase.id as string;
}
const classifyImage = (caseId: string, bytes: Buffer) => t.upload(CLASSIFY_IMAGE, { caseId, file: null }, { file: { name: 'eye.jpg', bytes } });

describe('images that are not eyes', () => {
  it('records an image that is not an eye as NOT_AN_EYE with the guard score and threshold, never FEMALE or MALE, on every path', async () => {
    const caseId = await newCase('Not an eye');
    const red = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 230, g: 10, b: 10 } } }).png().toBuffer();
    const noise = await sharp(Buffer.from(Array.from({ length: 72 * 72 * 3 }, (_, i) => (i * 2654435761) >>> 24)), { raw: { width: 72, height: 72, channels: 3 } }).jpeg().toBuffer();
    const viaImage = ok(await classifyImage(caseId, red)).classifyImage.prediction;
    expect(viaImage.decision).toBe('NOT_AN_EYE');
    expect(viaImage.guardScore).toBeLessThan(viaImage.guardThreshold);
    const ev = ok(await t.upload(`mutation($c: ID!, $f: Upload!) { addEvidence(caseId: $c, file: $f) { id } }`, { c: caseId, f: null }, { f: { name: 'noise.jpg', bytes: noise } })).addEvidence;
    const viaEvidence = ok(await t.gql(`mutation($id: ID!) { classifyEvidence(evidenceId: $id) { decision guardScore guardThreshold probMale imageSha256 modelVersion { version } } }`, { id: ev.id })).classifyEvidence;
    // Matched as one object so that a failure shows which model and image produced the decision.
    expect(viaEvidence).toMatchObject({ decision: 'NOT_AN_EYE', modelVersion: { version: 1 }, imageSha256: createHash('sha256').update(noise).digest('hex') });
    expect(viaEvidence.guardScore).toBeLessThan(viaEvidence.guardThreshold);
    ok(await t.upload(`mutation($c: ID!, $f: Upload!) { addEvidence(caseId: $c, file: $f) { id } }`, { c: caseId, f: null }, { f: { name: 'red2.png', bytes: await sharp(red).flop().resize(50, 40).png().toBuffer() } }));
    const viaCase = ok(await t.gql(`mutation($c: ID!) { classifyCaseEvidence(caseId: $c) { decision guardScore guardThreshold } }`, { c: caseId })).classifyCaseEvidence;
    expect(viaCase.map((p: { decision: string }) => p.decision)).toEqual(['NOT_AN_EYE']);
    const audit = await t.services.db.auditEvent.findFirst({ where: { action: 'prediction.create', entityId: viaImage.id } });
    expect(audit?.details).toMatchObject({ decision: 'NOT_AN_EYE', guardScore: viaImage.guardScore });
    const mv = ok(await t.gql(`query($id: ID!) { modelVersion(id: $id) { guard { method threshold validationEyesRefused syntheticNonEyesRefused } metrics { guardRefusalRate } } }`, { id: baselineId }, t.keys.ADMIN)).modelVersion;
    expect(mv.guard.threshold).toBeCloseTo(viaImage.guardThreshold, 10);
    expect(mv.guard.method).toMatch(/Mahalanobis/);
    expect(mv.metrics.guardRefusalRate).toBeGreaterThanOrEqual(0);
  });

});
