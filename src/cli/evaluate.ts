/**
 * npm run evaluate -- --model <dir|file> --data <dir> [--split all|validation] [--not-eyes <dir>]
 * Streams the images (bounded memory), shows progress on a terminal (stderr), and prints one JSON
 * object: accuracy, AUC, ECE, recalls, INCONCLUSIVE and NOT_AN_EYE rates per class, 95% intervals
 * (Wilson; person bootstrap for ECE, AUC and the recall gap), images/s end to end and forward-only,
 * and with --not-eyes the share of non-eye images the guard refused.
 */
import { promises as fs } from 'node:fs';
import { loadClassifier } from '../ml/index.js';
import { eyeReport, listImageFiles, listLabelledFolder, notEyeReport, scoreEntries, validationEntries, type Progress } from '../ml/folder-eval.js';
import { parseArgs, resolveBundlePath, runCli, usage, UsageError, type ArgSpec } from './args.js';

const spec: ArgSpec[] = [
  { name: 'model', type: 'string', help: 'bundle file or folder holding model.eyemodel (required)' },
  { name: 'data', type: 'string', help: 'folder with female/ and male/ subfolders' },
  { name: 'split', type: 'string', help: "'all' (default) or 'validation': the model's own person-aware validation split (same data and seed)" },
  { name: 'not-eyes', type: 'string', help: 'folder of images that are not eyes: reports the share the guard refuses (NOT_AN_EYE)' },
];
const USAGE = usage('npm run evaluate --', '--model <dir> (--data <dir> [--split all|validation] | --not-eyes <dir>)', spec);

function progressPrinter(): (p: Progress) => void {
  if (!process.stderr.isTTY) return () => {};
  const t0 = Date.now();
  return (p) => {
    const s = (Date.now() - t0) / 1000;
    process.stderr.write(`\r\x1b[2K${p.phase === 'index' ? 'indexing' : 'evaluating'} ${p.done}/${p.total} (${(p.done / Math.max(s, 1e-3)).toFixed(0)} images/s)`);
    if (p.done === p.total) process.stderr.write('\n');
  };
}

const round = (x: unknown): unknown => (typeof x === 'number' ? +x.toFixed(6) : Array.isArray(x) ? x.map(round) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, round(v)])) : x);

async function main(): Promise<void> {
  const { opts, positionals } = parseArgs(process.argv.slice(2), spec);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (!opts.model) throw new UsageError('--model is required');
  if (!opts.data && !opts['not-eyes']) throw new UsageError('give --data, --not-eyes or both');
  const split = String(opts.split ?? 'all');
  if (split !== 'all' && split !== 'validation') throw new UsageError("--split must be 'all' or 'validation'");
  for (const key of ['data', 'not-eyes'] as const) {
    if (!opts[key]) continue;
    const st = await fs.stat(String(opts[key])).catch(() => null);
    if (!st?.isDirectory()) throw new UsageError(`--${key} ${String(opts[key])} is not a directory`);
  }
  const bundlePath = await resolveBundlePath(String(opts.model));
  const classifier = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)));
  const meta = classifier.meta;
  const progress = progressPrinter();
  const out: Record<string, unknown> = {
    model: bundlePath, model_sha256: classifier.sha256, bundle_format: meta.formatVersion, architecture: meta.architecture, input_size: meta.inputSize,
    test_time_augmentation: meta.testTimeAugmentation ?? 'none', temperature: meta.calibration.temperature,
    thresholds: { female: meta.thresholds.female, male: meta.thresholds.male },
    guard: classifier.guard ? { method: classifier.guard.method, threshold: classifier.guard.threshold, fitted: meta.guard ?? null } : null,
    backend: classifier.backend.backend, device: classifier.backend.device, engine: classifier.engine,
  };
  try {
    if (opts.data) {
      let entries = await listLabelledFolder(String(opts.data));
      if (split === 'validation') {
        const hp = meta.hyperparameters;
        entries = await validationEntries(entries, meta.inputSize, hp.seed, hp.validationSplit, meta.dataFingerprint, progress);
      }
      const run = await scoreEntries(classifier, entries, progress);
      const { metrics: m, intervals, perClass } = eyeReport(run.scored, classifier);
      Object.assign(out, {
        split: split === 'validation' ? `person-aware validation split (groups = runs of consecutive file numbers per class, seed ${meta.hyperparameters.seed})` : 'all',
        n: m.n, n_female: m.nFemale, n_male: m.nMale,
        accuracy: m.accuracy, auc: m.auc, ece: m.ece, log_loss: m.logLoss,
        recall_female: m.recallFemale, recall_male: m.recallMale, recall_gap: Math.abs(m.recallFemale - m.recallMale),
        precision_female: m.precisionFemale, precision_male: m.precisionMale,
        inconclusive_rate: m.inconclusiveRate, not_an_eye_rate: m.notAnEyeRate, decided_accuracy: m.decidedAccuracy,
        per_class: perClass, intervals_95: intervals, confusion_matrix: m.confusionMatrix,
        skipped: run.skipped.length, skipped_items: run.skipped.slice(0, 50),
        images_per_second_end_to_end: run.scored.length / run.seconds,
        images_per_second_forward: run.scored.length / run.forwardSeconds,
        seconds: run.seconds,
      });
    }
    if (opts['not-eyes']) {
      const run = await scoreEntries(classifier, await listImageFiles(String(opts['not-eyes'])), progress);
      const r = notEyeReport(run.scored);
      out.not_eyes = { folder: String(opts['not-eyes']), n: run.scored.length, refused: r.refused, by_kind: r.byKind, accepted: r.accepted, skipped: run.skipped };
    }
  } finally {
    classifier.dispose();
  }
  process.stdout.write(JSON.stringify(round(out)) + '\n');
}

await runCli(main, USAGE);
