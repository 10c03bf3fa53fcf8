/**
 * npm run train -- --data <dir> --out <dir> [--arch --size --epochs --batch-size --lr --seed ...]
 * Trains on a folder with female/ and male/ subfolders; writes <out>/model.eyemodel (the bundle),
 * <out>/meta.json and <out>/last-checkpoint.bin (for --resume).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ARCHITECTURES, DEFAULT_HYPERPARAMETERS, readLabelledFolder, trainClassifier, validateHyperparameters, type Hyperparameters } from '../ml/index.js';
import { parseArgs, runCli, usage, UsageError, type ArgSpec } from './args.js';

const spec: ArgSpec[] = [
  { name: 'data', type: 'string', help: 'folder with female/ and male/ subfolders (required)' },
  { name: 'out', type: 'string', help: 'output folder for model.eyemodel, meta.json, last-checkpoint.bin (required)' },
  { name: 'arch', type: 'string', help: `architecture: ${ARCHITECTURES.join(', ')} (default ${DEFAULT_HYPERPARAMETERS.architecture})` },
  { name: 'size', type: 'number', help: `input size in pixels (default ${DEFAULT_HYPERPARAMETERS.inputSize})` },
  { name: 'epochs', type: 'number', help: `epochs (default ${DEFAULT_HYPERPARAMETERS.epochs})` },
  { name: 'batch-size', type: 'number', help: `global batch size (default ${DEFAULT_HYPERPARAMETERS.batchSize})` },
  { name: 'lr', type: 'number', help: `peak learning rate, one-cycle schedule (default ${DEFAULT_HYPERPARAMETERS.learningRate})` },
  { name: 'seed', type: 'number', help: `seed for split, shuffling, augmentation (default ${DEFAULT_HYPERPARAMETERS.seed})` },
  { name: 'val-split', type: 'number', help: `validation fraction per class, 0.05-0.5 (default ${DEFAULT_HYPERPARAMETERS.validationSplit})` },
  { name: 'patience', type: 'number', help: `early-stopping patience in epochs, 0 = off (default ${DEFAULT_HYPERPARAMETERS.earlyStoppingPatience})` },
  { name: 'weight-decay', type: 'number', help: `decoupled weight decay (default ${DEFAULT_HYPERPARAMETERS.weightDecay})` },
  { name: 'decision-accuracy', type: 'number', help: `accuracy outside the INCONCLUSIVE band (default ${DEFAULT_HYPERPARAMETERS.decisionAccuracy})` },
  { name: 'augment', type: 'boolean', help: 'augment the training set (default on; --no-augment to disable)' },
  { name: 'workers', type: 'number', help: 'data-parallel worker threads (default: 2 on wasm/cpu, 1 native)' },
  { name: 'resume', type: 'string', help: 'checkpoint file to continue from (e.g. <out>/last-checkpoint.bin)' },
  { name: 'limit-per-class', type: 'number', help: 'use only the first N files of each class (quick runs)' },
];
const USAGE = usage('npm run train --', '--data <dir> --out <dir> [options]', spec);

function bar(done: number, total: number, width = 30): string {
  const f = Math.round((done / total) * width);
  return `[${'='.repeat(Math.max(0, f - 1))}${f > 0 ? (done === total ? '=' : '>') : ''}${'.'.repeat(width - f)}]`;
}

async function main(): Promise<void> {
  const { opts, positionals } = parseArgs(process.argv.slice(2), spec);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (!opts.data) throw new UsageError('--data is required');
  if (!opts.out) throw new UsageError('--out is required');
  const partial: Partial<Record<keyof Hyperparameters, unknown>> = {
    architecture: opts.arch, inputSize: opts.size, epochs: opts.epochs, batchSize: opts['batch-size'], learningRate: opts.lr, seed: opts.seed,
    validationSplit: opts['val-split'], earlyStoppingPatience: opts.patience, weightDecay: opts['weight-decay'],
    decisionAccuracy: opts['decision-accuracy'], augmentation: opts.augment,
  };
  const checked = validateHyperparameters(partial);
  if (!checked.ok) throw new UsageError(checked.errors.join('\n       '));
  const hp = checked.value;
  const dataDir = String(opts.data), outDir = String(opts.out);
  const st = await fs.stat(dataDir).catch(() => null);
  if (!st?.isDirectory()) throw new UsageError(`--data ${dataDir} is not a directory`);
  await fs.mkdir(outDir, { recursive: true });
  const resumeFrom = opts.resume ? new Uint8Array(await fs.readFile(String(opts.resume))) : undefined;

  const items = await readLabelledFolder(dataDir, { limitPerClass: opts['limit-per-class'] as number | undefined });
  console.log(`training ${hp.architecture} at ${hp.inputSize}px on ${items.length} files from ${dataDir}`);
  console.log(`hyper-parameters: ${JSON.stringify(hp)}`);
  const tty = process.stderr.isTTY;
  const t0 = Date.now();
  let epochStart = Date.now();
  const controller = new AbortController();
  process.once('SIGINT', () => { console.error('\ncancelling after the current batch...'); controller.abort(); });
  const result = await trainClassifier({
    items, hyperparameters: hp, resumeFrom, signal: controller.signal,
    workers: opts.workers as number | undefined,
    log: (l) => console.log(l),
    onProgress: (p) => {
      if (p.batch === 1) epochStart = Date.now();
      if (!tty) return;
      const s = (Date.now() - epochStart) / 1000;
      const eta = p.batch ? (s / p.batch) * (p.batchesPerEpoch - p.batch) : 0;
      process.stderr.write(`\rEpoch ${p.epoch}/${hp.epochs} ${String(p.batch).padStart(4)}/${p.batchesPerEpoch} ${bar(p.batch, p.batchesPerEpoch)} - ETA ${eta.toFixed(0)}s - loss: ${p.loss.toFixed(4)} - accuracy: ${p.accuracy.toFixed(4)}   `);
    },
    onEpoch: async (e) => {
      if (tty) process.stderr.write('\r\x1b[2K');
      console.log(`Epoch ${e.epoch}/${hp.epochs}`);
      console.log(`${Math.round(e.durationMs / 1000)}s - loss: ${e.loss.toFixed(4)} - accuracy: ${e.accuracy.toFixed(4)} - val_loss: ${e.valLoss.toFixed(4)} - val_accuracy: ${e.valAccuracy.toFixed(4)} - lr: ${e.learningRate.toExponential(2)}${e.isBest ? ' - best' : ''} (elapsed ${Math.round((Date.now() - t0) / 1000)}s)`);
      await fs.writeFile(path.join(outDir, 'last-checkpoint.bin'), e.checkpoint);
    },
  });
  const bundlePath = path.join(outDir, 'model.eyemodel');
  await fs.writeFile(bundlePath, result.bundle);
  const { history, ...metaRest } = result.meta;
  await fs.writeFile(path.join(outDir, 'meta.json'), JSON.stringify({ sha256: result.sha256, bytes: result.bundle.length, ...metaRest, history, skipped: result.skipped, peakRssMiB: Math.round(result.peakRssBytes / 2 ** 20) }, null, 2) + '\n');
  const m = result.meta.metrics;
  for (const s of result.skipped.slice(0, 20)) console.log(`skipped ${s.id ?? '?'}: ${s.reason}`);
  if (result.skipped.length > 20) console.log(`... and ${result.skipped.length - 20} more skipped`);
  console.log(`best epoch ${result.meta.bestEpoch}: val accuracy ${(m.accuracy * 100).toFixed(2)}%, AUC ${m.auc.toFixed(4)}, ECE ${m.ece.toFixed(4)} (T=${result.meta.calibration.temperature.toFixed(3)}), ` +
    `recall F ${(m.recallFemale * 100).toFixed(1)}% / M ${(m.recallMale * 100).toFixed(1)}%, band [${result.meta.thresholds.female.toFixed(3)}, ${result.meta.thresholds.male.toFixed(3)}] -> inconclusive ${(m.inconclusiveRate * 100).toFixed(1)}%, decided accuracy ${(m.decidedAccuracy * 100).toFixed(2)}%`);
  console.log(`backend ${result.meta.backend} (${result.meta.device}), ${result.meta.workers} worker thread(s), ${Math.round((Date.now() - t0) / 1000)} s, peak RSS ${Math.round(result.peakRssBytes / 2 ** 20)} MiB`);
  console.log(`wrote ${bundlePath} (${result.bundle.length} bytes, sha256 ${result.sha256})`);
}

await runCli(main, USAGE);
