/**
 * Robustness of a bundle on its own person-aware validation split:
 * npm run bench:ml-robustness [-- <bundle or folder> [<data folder>]]
 * Every condition of src/ml/conditions.ts (rotation ±15°, centre crop 80%, JPEG quality 20,
 * brightness x0.6 and x1.4, grey-scale, blur sigma 1.5, 16 px source, flip) is applied to each
 * image at its source resolution; accuracy (Wilson 95% interval), per-class recall, INCONCLUSIVE
 * and NOT_AN_EYE rates and decided accuracy are printed per condition, then one JSON line.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { resolveBundlePath } from '../src/cli/args.js';
import { ROBUSTNESS_CONDITIONS } from '../src/ml/conditions.js';
import { eyeReport, listLabelledFolder, scoreEntries, validationEntries } from '../src/ml/folder-eval.js';
import { datasetDir, loadClassifier } from '../src/ml/index.js';
import { PROJECT_ROOT } from '../src/shared/project-root.js';

const bundlePath = await resolveBundlePath(process.argv[2] ?? path.join(PROJECT_ROOT, 'models', 'eyes-compact-v2'));
const dataDir = process.argv[3] ?? datasetDir();
const classifier = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)));
const meta = classifier.meta;
const hp = meta.hyperparameters;
const entries = await validationEntries(await listLabelledFolder(dataDir), meta.inputSize, hp.seed, hp.validationSplit, meta.dataFingerprint)
  .catch((e: Error) => { throw new Error(`${e.message}: give the folder the model was trained on as the second argument`); });
console.log(`${bundlePath}: ${entries.length} validation images (person-aware split, seed ${hp.seed}) from ${dataDir}`);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const rows: Array<Record<string, unknown>> = [];
for (const condition of ROBUSTNESS_CONDITIONS) {
  const run = await scoreEntries(classifier, entries, undefined, 256, condition.apply);
  const { metrics: m, intervals } = eyeReport(run.scored, classifier);
  rows.push({
    condition: condition.name, n: m.n, accuracy: m.accuracy, accuracyInterval: intervals.accuracy, recallFemale: m.recallFemale, recallMale: m.recallMale,
    inconclusiveRate: m.inconclusiveRate, notAnEyeRate: m.notAnEyeRate, decidedAccuracy: m.decidedAccuracy, skipped: run.skipped.length,
  });
  console.log(`${condition.name.padEnd(30)} accuracy ${pct(m.accuracy)} (${pct(intervals.accuracy[0])}-${pct(intervals.accuracy[1])})  recall F ${pct(m.recallFemale)} M ${pct(m.recallMale)}  ` +
    `inconclusive ${pct(m.inconclusiveRate)}  not an eye ${pct(m.notAnEyeRate)}  decided accuracy ${pct(m.decidedAccuracy)}`);
}
classifier.dispose();
console.log(JSON.stringify({ model: bundlePath, sha256: classifier.sha256, n: entries.length, rows }));
