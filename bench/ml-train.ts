/**
 * Training benchmark: npm run bench:ml-train [-- --epochs N --size S --workers W --batch-size B --lr LR --arch A --target 0.95 --limit-per-class N]
 * (TRAINING_RUNTIME=onnxruntime|tfjs picks the runtime; default auto.)
 * Trains on the shared data set (seeded 20% validation split) and prints per-epoch figures, the time
 * from start (including decoding) to the target validation accuracy, the best validation accuracy
 * and the peak resident memory of the process (worker threads included).
 */
import { datasetDir, readLabelledFolder, trainClassifier } from '../src/ml/index.js';

const args = process.argv.slice(2);
const get = (name: string, dflt: number | string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const epochs = Number(get('epochs', 6));
const inputSize = Number(get('size', 48));
const workersArg = String(get('workers', ''));
/** Default: the trainer's choice for the runtime (TRAINING_RUNTIME; one worker on onnxruntime, two on TF.js wasm). */
const workers = workersArg === '' ? undefined : Number(workersArg);
const batchSize = Number(get('batch-size', 64));
const learningRate = Number(get('lr', 0.004));
const architecture = String(get('arch', 'compact'));
const target = Number(get('target', 0.95));
const limitPerClass = Number(get('limit-per-class', 0)) || undefined;

const t0 = Date.now();
const items = await readLabelledFolder(datasetDir(), { limitPerClass });
let reached: number | null = null;
let bestAcc = 0;
const result = await trainClassifier({
  items, workers,
  hyperparameters: { epochs, inputSize, batchSize, learningRate, architecture: architecture as 'compact', earlyStoppingPatience: 0 },
  log: (l) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${l}`),
  onEpoch: (e) => {
    const el = (Date.now() - t0) / 1000;
    bestAcc = Math.max(bestAcc, e.valAccuracy);
    if (reached === null && e.valAccuracy >= target) reached = el;
    console.log(`epoch ${e.epoch}/${epochs} ${(e.durationMs / 1000).toFixed(1)}s loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)} val_loss ${e.valLoss.toFixed(4)} val_acc ${e.valAccuracy.toFixed(4)} elapsed ${el.toFixed(0)}s rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)}MiB`);
  },
});
const summary = {
  architecture, inputSize, epochs, workers, batchSize, learningRate, images: items.length,
  backend: result.meta.backend, device: result.meta.device,
  secondsPerEpoch: +(result.meta.history.reduce((s, h) => s + h.durationMs, 0) / result.meta.history.length / 1000).toFixed(1),
  bestValAccuracy: +bestAcc.toFixed(4),
  finalModelValAccuracy: +result.meta.metrics.accuracy.toFixed(4),
  [`secondsToValAccuracy${target}`]: reached,
  totalSeconds: Math.round((Date.now() - t0) / 1000),
  peakRssMiB: Math.round(result.peakRssBytes / 2 ** 20),
};
console.log(JSON.stringify(summary));
