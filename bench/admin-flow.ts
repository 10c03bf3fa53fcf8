// The admin's whole path through GraphQL only, against real processes, with the time of each
// step: import the shared data set (addDatasetImages in batches), snapshot it, start a training
// run, watch its progress, read the candidate's metrics, compare it with production, promote it,
// and see a classification use it.
//
//   npm run bench:admin-flow -- [--per-class 4422] [--epochs 3] [--batch 250]
import fs from 'node:fs';
import path from 'node:path';
import { datasetDir } from '../src/ml/index.js';
import { arg, startStack, upload } from './support/stack.js';

const perClass = Number(arg('per-class', '100000'));
const epochs = Number(arg('epochs', '3'));
const batch = Number(arg('batch', '250'));
const port = Number(arg('port', '4580'));
const databaseUrl = arg('database-url', 'postgresql://postgres@127.0.0.1:5432/eyecase_flow');

const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);


async function main() {
  const stack = await startStack({ databaseUrl, port, extraEnv: { IN_PROCESS_WORKER: 'true', LOG_LEVEL: 'info' } });
  const { gql, adminKey: admin, api } = stack;
  try {
    const start = performance.now();
    const dataset = (await gql<any>('mutation { createDataset(input: { name: "eyes-rtte", description: "shared development copy" }) { id } }', {}, admin)).createDataset;

    let t0 = performance.now();
    let imported = 0;
    for (const [label, folder] of [['FEMALE', 'female'], ['MALE', 'male']] as const) {
      const files = fs.readdirSync(path.join(datasetDir(), folder)).sort().slice(0, perClass);
      for (let i = 0; i < files.length; i += batch) {
        const chunk = files.slice(i, i + batch).map((name, j) => ({ field: `files.${j}`, name, bytes: fs.readFileSync(path.join(datasetDir(), folder, name)) }));
        const data = await upload(api, admin, 'mutation($id: ID!, $label: Sex!, $files: [Upload!]!) { addDatasetImages(datasetId: $id, label: $label, files: $files) { imported duplicates skipped } }', { id: dataset.id, label, files: chunk.map(() => null) }, chunk);
        imported += data.addDatasetImages.imported;
      }
    }
    const importSeconds = seconds(t0);
    console.log(`imported ${imported} images in ${importSeconds} s (${(imported / Number(importSeconds)).toFixed(0)} images/s)`);

    t0 = performance.now();
    const version = (await gql<any>('mutation($id: ID!) { snapshotDataset(datasetId: $id) { id version itemCount femaleCount maleCount manifestSha256 } }', { id: dataset.id }, admin)).snapshotDataset;
    console.log(`snapshot version ${version.version}: ${version.femaleCount} female + ${version.maleCount} male, manifest ${version.manifestSha256.slice(0, 12)}… in ${seconds(t0)} s`);

    t0 = performance.now();
    const run = (await gql<any>('mutation($v: ID!, $hp: HyperparametersInput) { startTrainingRun(datasetVersionId: $v, hyperparameters: $hp) { id status } }', { v: version.id, hp: { epochs, earlyStoppingPatience: 0 } }, admin)).startTrainingRun;
    let seen = 0;
    let final: any;
    for (;;) {
      const r = (await gql<any>('query($id: ID!) { trainingRun(id: $id) { status progress etaSeconds backend device error epochs { epoch loss accuracy valLoss valAccuracy durationMs } modelVersion { id version metrics { accuracy auc ece recallFemale recallMale inconclusiveRate } } } }', { id: run.id }, admin)).trainingRun;
      for (const e of r.epochs.slice(seen)) {
        console.log(`  epoch ${e.epoch}/${epochs}: ${(e.durationMs / 1000).toFixed(0)}s - loss ${e.loss.toFixed(4)} - accuracy ${e.accuracy.toFixed(4)} - val_loss ${e.valLoss.toFixed(4)} - val_accuracy ${e.valAccuracy.toFixed(4)} (progress ${(r.progress * 100).toFixed(0)}%, eta ${r.etaSeconds ?? '?'} s)`);
      }
      seen = r.epochs.length;
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(r.status)) {
        final = r;
        break;
      }
      await new Promise((res) => setTimeout(res, 3000));
    }
    console.log(`training run ${final.status} on ${final.backend} (${final.device}) in ${seconds(t0)} s${final.error ? `: ${final.error}` : ''}`);
    if (final.status !== 'SUCCEEDED') throw new Error('training did not succeed');
    const candidate = final.modelVersion;
    console.log(`candidate version ${candidate.version}: ${JSON.stringify(candidate.metrics)}`);

    const production = (await gql<any>('{ productionModel { id version } }', {}, admin)).productionModel;
    t0 = performance.now();
    const cmp = (await gql<any>('query($a: ID!, $b: ID!) { compareModelVersions(a: $a, b: $b) { comparedOn n decisionAgreement labelAgreement accuracyA accuracyB } }', { a: candidate.id, b: production.id }, admin)).compareModelVersions;
    console.log(`compared with production version ${production.version} on ${cmp.comparedOn}: accuracy ${cmp.accuracyA.toFixed(4)} vs ${cmp.accuracyB.toFixed(4)}, decisions agree ${(cmp.decisionAgreement * 100).toFixed(1)}% (${seconds(t0)} s)`);

    // Promotion needs two admins: the first requests, a second approves (after the metric gate).
    const secondAdmin = (await gql<any>('mutation { createApiKey(input: { name: "second admin", role: ADMIN }) { secret } }', {}, admin)).createApiKey.secret;
    const request = (await gql<any>('mutation($id: ID!) { requestPromotion(modelVersionId: $id, reason: "admin-flow benchmark") { id } }', { id: candidate.id }, admin)).requestPromotion;
    t0 = performance.now();
    const approved = (await gql<any>(
      'mutation($id: ID!) { approvePromotion(requestId: $id, reason: "admin-flow benchmark", overrideReason: "benchmark: promoted whatever the gate says") { comparison { passed n failures } } }',
      { id: request.id },
      secondAdmin,
    )).approvePromotion;
    console.log(`approved (metric gate ${approved.comparison.passed ? 'passed' : `refused, overridden: ${approved.comparison.failures.join('; ')}`} on ${approved.comparison.n} images) in ${seconds(t0)} s`);
    const inv = (await gql<any>('mutation { createApiKey(input: { name: "flow investigator", role: INVESTIGATOR }) { secret } }', {}, admin)).createApiKey.secret;
    const kase = (await gql<any>('mutation { createCase(input: { title: "admin flow" }) { id } }', {}, inv)).createCase;
    // Serving switches within about a second; classify (a new image each time) until it has.
    const females = fs.readdirSync(path.join(datasetDir(), 'female')).sort().slice(0, 40);
    for (let i = 0; ; i++) {
      if (i === females.length) throw new Error('classifications never used the promoted version');
      const bytes = fs.readFileSync(path.join(datasetDir(), 'female', females[i]));
      const data = await upload(api, inv, 'mutation($c: ID!, $file: Upload!) { classifyImage(caseId: $c, file: $file) { prediction { decision probFemale modelVersion { id version } } } }', { c: kase.id, file: null }, [{ field: 'file', name: 'eye.jpg', bytes }]);
      const p = data.classifyImage.prediction;
      if (p.modelVersion.id === candidate.id) {
        console.log(`classification ${i + 1} after promotion used version ${p.modelVersion.version} (${seconds(t0)} s after promoting): ${p.decision}, P(female) ${p.probFemale.toFixed(3)}`);
        break;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    console.log(`whole flow: ${seconds(start)} s`);
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
