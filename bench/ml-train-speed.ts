/**
 * Training speed of each training path in one run:
 *   npm run bench:ml-train-speed [-- --epochs 2 --rounds 1 --size 48 --batch-size 64 --paths onnxruntime,tfjs,tfjs-stock --pytorch]
 *
 * Trains the compact network on the shared data set (EYES_DATASET_DIR; the recipe of issue 14:
 * batch 64, AdamW 0.004 one-cycle over 20 epochs, augmentation on) for a few epochs on each path,
 * alternating `rounds` times, and stops each run after `epochs` epochs (the serving fit is skipped):
 * - onnxruntime: TRAINING_RUNTIME=onnxruntime (replica-onnx.ts, one worker thread, onnxruntime's
 *   threads on all cores);
 * - tfjs: TF.js wasm with the training layers (train-layers.ts), min(2, cores) data-parallel workers;
 * - tfjs-stock: TF.js wasm with the stock layers (EYECASE_TRAIN_FUSED=0), the path before issue 14.
 * Prints seconds per epoch (training plus the per-epoch validation pass, as the trainer reports
 * it), the ratios between the paths, and the peak resident memory of the process (worker threads
 * included). With --pytorch it also runs bench/pytorch-reference.py (PyTorch on the same cores,
 * the same network and batch on random data of the data set's size; needs python3 with torch,
 * e.g. Debian's python3-torch; PYTHON picks the interpreter) and prints the ratios to it.
 * Absolute times on shared machines move by 2x; read the ratios.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { datasetDir, readLabelledFolder, trainClassifier, TrainingCancelledError } from '../src/ml/index.js';

const args = process.argv.slice(2);
const get = (name: string, dflt: number) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : dflt; };
const epochs = get('epochs', 2), rounds = get('rounds', 1), inputSize = get('size', 48), batchSize = get('batch-size', 64);
const pathsArg = args.indexOf('--paths') >= 0 ? args[args.indexOf('--paths') + 1] : 'onnxruntime,tfjs,tfjs-stock';
const PATHS = { onnxruntime: { TRAINING_RUNTIME: 'onnxruntime', EYECASE_TRAIN_FUSED: '1' }, tfjs: { TRAINING_RUNTIME: 'tfjs', EYECASE_TRAIN_FUSED: '1' }, 'tfjs-stock': { TRAINING_RUNTIME: 'tfjs', EYECASE_TRAIN_FUSED: '0' } } as const;
type PathName = keyof typeof PATHS;
const paths = pathsArg.split(',').map((p) => {
  if (!(p in PATHS)) throw new Error(`unknown path ${p}; known: ${Object.keys(PATHS).join(', ')}`);
  return p as PathName;
});

const items = await readLabelledFolder(datasetDir());
console.log(`${items.length} images; compact ${inputSize} px, batch ${batchSize}; ${os.availableParallelism()} cores; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

interface Run { seconds: number[]; peakRssMiB: number; device: string }
async function run(path: PathName): Promise<Run> {
  Object.assign(process.env, PATHS[path]); // worker threads copy the environment when they start
  const seconds: number[] = [];
  let peak = 0, device = '';
  const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
  const stop = new AbortController();
  try {
    await trainClassifier({
      items, signal: stop.signal,
      hyperparameters: { epochs: 20, inputSize, batchSize, learningRate: 0.004, architecture: 'compact', earlyStoppingPatience: 0 },
      onProgress: sample,
      onEpoch: (e) => {
        sample();
        seconds.push(e.durationMs / 1000);
        device = `${e.backend}: ${e.device}`;
        console.log(`  ${path} epoch ${e.epoch}: ${(e.durationMs / 1000).toFixed(1)} s, loss ${e.loss.toFixed(4)}, val_acc ${e.valAccuracy.toFixed(4)}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, load ${os.loadavg()[0].toFixed(1)}`);
        if (e.epoch >= epochs) stop.abort();
      },
    });
  } catch (e) {
    if (!(e instanceof TrainingCancelledError)) throw e;
  }
  return { seconds, peakRssMiB: Math.round(peak / 2 ** 20), device };
}

/** PyTorch's seconds per epoch on the same cores (bench/pytorch-reference.py), or null when it cannot run. */
function pytorchSecondsPerEpoch(): number | null {
  const script = new URL('../../bench/pytorch-reference.py', import.meta.url).pathname;
  const res = spawnSync(process.env.PYTHON ?? 'python3', [script, '--images', String(items.length), '--size', String(inputSize), '--batch-size', String(batchSize), '--epochs', String(epochs)], { encoding: 'utf8' });
  if (res.status !== 0) {
    console.log(`  pytorch reference did not run: ${(res.stderr || res.error?.message || '').trim().split('\n').pop()}`);
    return null;
  }
  process.stdout.write(res.stdout.split('\n').filter((l) => l && !l.startsWith('{')).map((l) => `  ${l}\n`).join(''));
  return (JSON.parse(res.stdout.trim().split('\n').pop()!) as { secondsPerEpoch: number }).secondsPerEpoch;
}

const results = new Map<PathName | 'pytorch', number[]>();
const runs = new Map<PathName, Run[]>();
for (let r = 0; r < rounds; r++) {
  for (const p of paths) {
    const res = await run(p);
    runs.set(p, [...(runs.get(p) ?? []), res]);
    results.set(p, [...(results.get(p) ?? []), ...res.seconds]);
  }
  if (args.includes('--pytorch')) {
    const s = pytorchSecondsPerEpoch();
    if (s !== null) results.set('pytorch', [...(results.get('pytorch') ?? []), s]);
  }
}
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const perEpoch = Object.fromEntries([...results].map(([k, v]) => [k, +mean(v).toFixed(2)]));
const ratios: Record<string, number> = {};
const reference = (['pytorch', 'tfjs-stock', 'tfjs'] as const).filter((k) => k in perEpoch);
for (const ref of reference) for (const p of paths) if (p !== ref) ratios[`${p} / ${ref}`] = +(perEpoch[p] / perEpoch[ref]).toFixed(2);
console.log(JSON.stringify({
  images: items.length, epochsPerRun: epochs, rounds, secondsPerEpoch: perEpoch, ratios,
  devices: Object.fromEntries([...runs].map(([k, v]) => [k, v[0].device])),
  peakRssMiB: Object.fromEntries([...runs].map(([k, v]) => [k, Math.max(...v.map((x) => x.peakRssMiB))])),
  loadAverageAtEnd: os.loadavg().map((l) => +l.toFixed(1)),
}));
