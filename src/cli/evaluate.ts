/**
 * npm run evaluate -- --model <dir|file> --data <dir> [--split all|validation]
 * Prints one JSON object: accuracy, auc, ece, recall_female, recall_male, inconclusive_rate, n, ...
 */
import { promises as fs } from 'node:fs';
import { dataFingerprint, decodeItems, evaluate, loadClassifier, readLabelledFolder, stratifiedSplit } from '../ml/index.js';
import { parseArgs, resolveBundlePath, runCli, usage, UsageError, type ArgSpec } from './args.js';

const spec: ArgSpec[] = [
  { name: 'model', type: 'string', help: 'bundle file or folder holding model.eyemodel (required)' },
  { name: 'data', type: 'string', help: 'folder with female/ and male/ subfolders (required)' },
  { name: 'split', type: 'string', help: "'all' (default) or 'validation': only the model's own validation split (same data and seed)" },
];
const USAGE = usage('npm run evaluate --', '--model <dir> --data <dir> [--split all|validation]', spec);

async function main(): Promise<void> {
  const { opts, positionals } = parseArgs(process.argv.slice(2), spec);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (!opts.model) throw new UsageError('--model is required');
  if (!opts.data) throw new UsageError('--data is required');
  const split = String(opts.split ?? 'all');
  if (split !== 'all' && split !== 'validation') throw new UsageError("--split must be 'all' or 'validation'");
  const st = await fs.stat(String(opts.data)).catch(() => null);
  if (!st?.isDirectory()) throw new UsageError(`--data ${String(opts.data)} is not a directory`);
  const bundlePath = await resolveBundlePath(String(opts.model));
  const classifier = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)));
  const meta = classifier.meta;
  const items = await readLabelledFolder(String(opts.data));
  const { set, skipped } = await decodeItems(items, meta.inputSize);
  let indices = Array.from({ length: set.count }, (_, i) => i);
  if (split === 'validation') {
    if (dataDingerprintMismatch(dataFingerprint(set), meta.dataFingerprint)) throw new Error('--split validation needs the same data the model was trained on (fingerprint differs)');
    indices = stratifiedSplit(set.labels, meta.hyperparameters.validationSplit, meta.hyperparameters.seed).val;
  }
  const per = set.size * set.size * 3;
  const px = new Uint8Array(indices.length * per);
  indices.forEach((idx, i) => px.set(set.pixels.subarray(idx * per, (idx + 1) * per), i * per));
  const t0 = performance.now();
  const pMale = classifier.predictPixels(px, indices.length);
  const ms = performance.now() - t0;
  const labels = Uint8Array.from(indices.map((i) => set.labels[i]));
  const m = evaluate(pMale, labels, meta.thresholds);
  const out = {
    accuracy: m.accuracy, auc: m.auc, ece: m.ece, recall_female: m.recallFemale, recall_male: m.recallMale,
    precision_female: m.precisionFemale, precision_male: m.precisionMale, log_loss: m.logLoss,
    inconclusive_rate: m.inconclusiveRate, decided_accuracy: m.decidedAccuracy, n: m.n, n_female: m.nFemale, n_male: m.nMale,
    confusion_matrix: m.confusionMatrix, thresholds: { female: meta.thresholds.female, male: meta.thresholds.male }, temperature: meta.calibration.temperature,
    split, skipped: skipped.length, skipped_items: skipped.slice(0, 50),
    model: bundlePath, model_sha256: classifier.sha256, architecture: meta.architecture, input_size: meta.inputSize,
    backend: classifier.backend.backend, device: classifier.backend.device, images_per_second: Math.round(indices.length / (ms / 1000)),
  };
  classifier.dispose();
  process.stdout.write(JSON.stringify(out) + '\n');
}

function dataDingerprintMismatch(a: string, b: string): boolean { return a !== b; }

await runCli(main, USAGE);
