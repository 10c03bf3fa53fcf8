/**
 * Training speed, before/after in one run: npm run bench:ml-train-speed [-- --epochs 2 --rounds 1 --size 48 --workers 2 --batch-size 64]
 *
 * Trains the compact network on the shared data set (EYES_DATASET_DIR; the recipe of the issue:
 * batch 64, AdamW 0.004 one-cycle over 20 epochs, augmentation on) for a few epochs, once with the
 * stock tfjs layers (EYECASE_TRAIN_FUSED=0, the path before issue 14) and once with the training
 * layers (src/ml/train-layers.ts), alternating `rounds` times, and stops each run after `epochs`
 * epochs (the serving fit is skipped). Prints seconds per epoch (training plus the per-epoch
 * validation pass, as the trainer reports it), the ratio between the two paths, the ratio to the
 * issue's PyTorch figure (7.8 s per epoch, PyTorch 1.13 CPU, 2 threads, measured on this kind of
 * machine but not in this run) and the peak resident memory of the process (worker threads
 * included). Absolute times on shared machines move by 2x; read the ratios.
 */
import os from 'node:os';
import { datasetDir, readLabelledFolder, trainClassifier, TrainingCancelledError } from '../src/ml/index.js';

const args = process.argv.slice(2);
const get = (name: string, dflt: number) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : dflt; };
const epochs = get('epochs', 2), rounds = get('rounds', 1), inputSize = get('size', 48), workers = get('workers', 2), batchSize = get('batch-size', 64);
const PYTORCH_SECONDS_PER_EPOCH = 7.8;

const items = await readLabelledFolder(datasetDir());
console.log(`${items.length} images; compact ${inputSize} px, batch ${batchSize}, ${workers} worker threads; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);

interface Run { seconds: number[]; peakRssMiB: number }
async function run(fused: boolean): Promise<Run> {
  process.env.EYECASE_TRAIN_FUSED = fused ? '1' : '0'; // worker threads copy the environment when they start
  const seconds: number[] = [];
  let peak = 0;
  const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
  const stop = new AbortController();
  try {
    await trainClassifier({
      items, workers, signal: stop.signal,
      hyperparameters: { epochs: 20, inputSize, batchSize, learningRate: 0.004, architecture: 'compact', earlyStoppingPatience: 0 },
      onProgress: sample,
      onEpoch: (e) => {
        sample();
        seconds.push(e.durationMs / 1000);
        console.log(`  ${fused ? 'training layers' : 'stock layers'} epoch ${e.epoch}: ${(e.durationMs / 1000).toFixed(1)} s, loss ${e.loss.toFixed(4)}, val_acc ${e.valAccuracy.toFixed(4)}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, load ${os.loadavg()[0].toFixed(1)}`);
        if (e.epoch >= epochs) stop.abort();
      },
    });
  } catch (e) {
    if (!(e instanceof TrainingCancelledError)) throw e;
  }
  return { seconds, peakRssMiB: Math.round(peak / 2 ** 20) };
}

const results: Record<'stock' | 'fused', Run[]> = { stock: [], fused: [] };
for (let r = 0; r < rounds; r++) {
  results.stock.push(await run(false));
  results.fused.push(await run(true));
}
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const perEpoch = (runs: Run[]) => mean(runs.flatMap((x) => x.seconds));
const stock = perEpoch(results.stock), fused = perEpoch(results.fused);
console.log(JSON.stringify({
  images: items.length, epochsPerRun: epochs, rounds,
  secondsPerEpoch: { stockLayers: +stock.toFixed(1), trainingLayers: +fused.toFixed(1) },
  speedup: +(stock / fused).toFixed(2),
  ratioToPyTorch: { stockLayers: +(stock / PYTORCH_SECONDS_PER_EPOCH).toFixed(2), trainingLayers: +(fused / PYTORCH_SECONDS_PER_EPOCH).toFixed(2), pytorchReference: `${PYTORCH_SECONDS_PER_EPOCH} s/epoch, from the issue, not measured in this run` },
  peakRssMiB: { stockLayers: Math.max(...results.stock.map((x) => x.peakRssMiB)), trainingLayers: Math.max(...results.fused.map((x) => x.peakRssMiB)) },
  loadAverageAtEnd: os.loadavg().map((l) => +l.toFixed(1)),
}));
