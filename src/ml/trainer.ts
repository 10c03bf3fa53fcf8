/**
 * The training loop: decode, split, data-parallel replicas (worker threads, or the caller's thread),
 * Adam(W) steps on the schedule of schedule.ts, per-epoch validation, checkpoints (checkpoint.ts),
 * early stopping, then the best epoch's weights with their serving fit and metadata (finalise.ts).
 */
import { sha256Hex } from '../shared/hash.js';
import { encodeBundle, type BundleMeta } from './bundle.js';
import { encodeCheckpoint, resumableCheckpoint, type Checkpoint } from './checkpoint.js';
import { assembleBatch, CLASS_ORDER, dataFingerprint, decodeItems, type ImageSet, type LabelledItem, type SkippedItem } from './data.js';
import { TrainingCancelledError, TrainingInputError } from './errors.js';
import { fitServing, trainedBundleMeta } from './finalise.js';
import { MIN_IMAGES_PER_CLASS, validateHyperparameters, type Hyperparameters } from './hyperparameters.js';
import type { FeatureComputer, FeatureSource, GradResult, ReplicaInfo, TrainingBatch } from './replica.js';
import { defaultWorkerCount, replicaLauncher, type ReplicaClient } from './replica-client.js';
import { mixSeed, mulberry32, shuffleInPlace } from './rng.js';
import {
  epochPlan, initialProgress, isImprovement, oneCycleLr, recordEpoch, shouldStopEarly,
  type EpochPlan, type EpochRecord, type TrainingProgress,
} from './schedule.js';
import { trainingSplit } from './split.js';
import { chooseTrainingRuntime, onnxThreadsPerReplica } from './training-runtime.js';

export interface EpochReport extends EpochRecord {
  checkpoint: Uint8Array;
  backend: string;
  device: string;
}

export interface ProgressReport { epoch: number; batch: number; batchesPerEpoch: number; loss: number; accuracy: number }

export interface TrainOptions {
  items: LabelledItem[];
  hyperparameters?: Partial<Hyperparameters>;
  onEpoch?: (e: EpochReport) => Promise<void> | void;
  onProgress?: (p: ProgressReport) => void;
  /** Cancel between batches: trainClassifier rejects with TrainingCancelledError. */
  signal?: AbortSignal;
  /** A checkpoint from onEpoch: continue after its epoch (same data and hyper-parameters, epochs may grow). */
  resumeFrom?: Uint8Array;
  /**
   * Worker threads for data-parallel training. 0 = compute in the caller's thread. Default: the
   * EYECASE_TRAIN_WORKERS variable, else min(2, cores), or 1 with a native TF.js backend.
   */
  workers?: number;
  /** Log lines (decode summary etc.). */
  log?: (line: string) => void;
}

export interface TrainResult {
  bundle: Uint8Array;
  sha256: string;
  meta: BundleMeta;
  skipped: SkippedItem[];
  /** Peak resident set size of the process observed during training, in bytes. */
  peakRssBytes: number;
}

/** Peak resident set size of the process, sampled every 250 ms and at the points that allocate most. */
class PeakRss {
  peak = process.memoryUsage().rss;
  private timer = setInterval(() => this.sample(), 250);
  constructor() { this.timer.unref(); }
  sample(): void { this.peak = Math.max(this.peak, process.memoryUsage().rss); }
  stop(): void { clearInterval(this.timer); }
}

/** Train a classifier; heavy work runs in worker threads unless workers = 0. */
export async function trainClassifier(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? (() => {});
  const checked = validateHyperparameters(opts.hyperparameters ?? {});
  if (!checked.ok) throw new TrainingInputError(checked.errors);
  const hp = checked.value;
  const resume = opts.resumeFrom ? resumableCheckpoint(opts.resumeFrom, hp) : null;

  const rss = new PeakRss();
  try {
    const runtime = await chooseTrainingRuntime(hp.architecture);
    const nWorkers = opts.workers ?? defaultWorkerCount(runtime);
    const launchReplicas = replicaLauncher(nWorkers, { runtime, threads: onnxThreadsPerReplica(nWorkers), replicas: Math.max(1, nWorkers) });

    const t0 = Date.now();
    const { set, skipped } = await decodeItems(opts.items, hp.inputSize, { shared: nWorkers > 0, degradedCopy: hp.augmentation });
    if (opts.signal?.aborted) throw new TrainingCancelledError(resume?.state.epochsDone ?? 0, opts.resumeFrom);
    log(`decoded ${set.count} images at ${hp.inputSize}x${hp.inputSize} in ${((Date.now() - t0) / 1000).toFixed(1)} s; skipped ${skipped.length}`);
    const perClass = usableImagesPerClass(set);
    const fingerprint = dataFingerprint(set);
    if (resume && resume.fingerprint !== fingerprint) throw new TrainingInputError(['the checkpoint was trained on different data (fingerprint mismatch)']);
    const split = trainingSplit(set, hp);

    const replicas = launchReplicas();
    try {
      const { info, weights: startWeights } = await startReplicas(replicas, hp, set, resume);
      log(`backend ${info.backend} (${info.device}); ${replicas.length} replica(s) in ${nWorkers > 0 ? 'worker threads' : 'this thread'}; ${info.params} parameters`);
      const state: TrainingProgress = resume ? resume.state : initialProgress();
      let best = resume ? resume.best : startWeights;
      const plan = epochPlan(split.train.length, hp.batchSize, hp.epochs, replicas.length);
      let lastCheckpoint: Uint8Array | undefined = opts.resumeFrom;

      for (let epoch = state.epochsDone + 1; epoch <= hp.epochs; epoch++) {
        const te = Date.now();
        const fit = await trainEpoch(replicas, nWorkers > 0, set, hp, epoch, split.train, plan, {
          checkCancelled: () => { if (opts.signal?.aborted) throw new TrainingCancelledError(state.epochsDone, lastCheckpoint); },
          afterBatch: (p) => { rss.sample(); opts.onProgress?.(p); },
        });
        const weights = await syncReplicas(replicas, info);
        const v = bce(await servedLogits(replicas, split.val), set.labels, split.val);
        const row: EpochRecord = {
          epoch, loss: fit.loss, accuracy: fit.accuracy, valLoss: v.loss, valAccuracy: v.acc, durationMs: Date.now() - te, learningRate: fit.lr,
          isBest: isImprovement(state, v.loss),
        };
        recordEpoch(state, row);
        if (row.isBest) best = weights;
        lastCheckpoint = encodeCheckpoint({ hp, fingerprint, state, weights, opt: await replicas[0].getOptState(), best }, info);
        rss.sample();
        await opts.onEpoch?.({ ...row, checkpoint: lastCheckpoint, backend: info.backend, device: info.device });
        if (shouldStopEarly(state, hp.earlyStoppingPatience)) {
          log(`early stopping after epoch ${epoch}: no lower validation loss for ${state.sinceBest} epochs`);
          break;
        }
      }

      // Final model: the best epoch's weights; temperature, band and guard fitted on the person-aware
      // validation split; the figures reported are cross-fitted (see fitServing).
      await Promise.all(replicas.map((r) => r.setWeights(best)));
      const serving = await fitServing(shardedFeatures(replicas), set, split, hp, log);
      const artifacts = await replicas[0].exportArtifacts();
      const meta = trainedBundleMeta({ hp, set, split, skipped, progress: state, info, workers: nWorkers, fingerprint, perClass, startedAt: t0 }, serving);
      const bundle = encodeBundle(meta, artifacts, serving.guard);
      rss.sample();
      return { bundle, sha256: sha256Hex(bundle), meta, skipped, peakRssBytes: rss.peak };
    } finally {
      await Promise.all(replicas.map((r) => r.close().catch(() => {})));
    }
  } finally {
    rss.stop();
  }
}

/** Usable images per class (CLASS_ORDER); TrainingInputError when a class has too few. */
function usableImagesPerClass(set: ImageSet): number[] {
  const perClass = [0, 0];
  set.labels.forEach((l) => perClass[l]++);
  const problems: string[] = [];
  CLASS_ORDER.forEach((c, i) => { if (perClass[i] < MIN_IMAGES_PER_CLASS) problems.push(`${c} has ${perClass[i]} usable images; at least ${MIN_IMAGES_PER_CLASS} are needed`); });
  if (problems.length) throw new TrainingInputError(problems);
  return perClass;
}

/** Builds the network in every replica and gives all the same weights (the checkpoint's, or replica 0's initial ones). */
async function startReplicas(replicas: ReplicaClient[], hp: Hyperparameters, set: ImageSet, resume: Checkpoint | null): Promise<{ info: ReplicaInfo; weights: Float32Array[] }> {
  const infos = await Promise.all(replicas.map((r) => r.init({ architecture: hp.architecture, inputSize: hp.inputSize, pixels: set.pixels, labels: set.labels, degraded: set.degraded })));
  if (resume) {
    await Promise.all(replicas.map((r) => r.setWeights(resume.weights)));
    await Promise.all(replicas.map((r) => r.setOptState(resume.opt)));
    return { info: infos[0], weights: resume.weights };
  }
  const w0 = await replicas[0].getWeights();
  await Promise.all(replicas.slice(1).map((r) => r.setWeights(w0)));
  return { info: infos[0], weights: w0 };
}

/**
 * One epoch of steps over the shuffled training indices. One replica computes and applies its
 * gradients in one call; several each compute gradients on their shard of the batch, and all apply
 * the average (weighted by shard size), so they stay identical. Several replicas augment their own
 * shards; a single one in a worker thread gets its batches from this thread, assembled while it
 * computes the previous step (TrainingBatch).
 */
async function trainEpoch(replicas: ReplicaClient[], inWorkers: boolean, set: ImageSet, hp: Hyperparameters, epoch: number, train: number[], plan: EpochPlan,
  hooks: { checkCancelled: () => void; afterBatch: (p: ProgressReport) => void }): Promise<{ loss: number; accuracy: number; lr: number }> {
  const order = shuffleInPlace([...train], mulberry32(mixSeed(hp.seed, epoch, 1)));
  let lossSum = 0, right = 0, seen = 0, lr = 0;
  const { batchesPerEpoch } = plan;
  const assembleHere = inWorkers && replicas.length === 1;
  const batchesOf = (b: number): TrainingBatch[] => shards(order.slice(b * hp.batchSize, (b + 1) * hp.batchSize), replicas.length).map((indices, r) => {
    const batch: TrainingBatch = { indices, augment: hp.augmentation, seed: mixSeed(hp.seed, epoch, b, r, 7) };
    return assembleHere ? { ...batch, pixels: assembleBatch(set, batch) } : batch;
  });
  let next = batchesOf(0);
  for (let b = 0; b < batchesPerEpoch; b++) {
    hooks.checkCancelled();
    const batches = next;
    lr = oneCycleLr((epoch - 1) * batchesPerEpoch + b, plan.totalSteps, hp.learningRate);
    const results = replicas.length === 1
      ? replicas[0].step(batches[0], lr, hp.weightDecay).then((r) => [r])
      : Promise.all(batches.map((batch, r) => replicas[r].computeGrads(batch)));
    if (b + 1 < batchesPerEpoch) next = batchesOf(b + 1);
    const res = await results;
    if (replicas.length > 1) {
      const grads = res as GradResult[];
      const total = grads.reduce((s, r) => s + r.n, 0);
      const avg = grads[0].grads.map((g) => new Float32Array(g.length));
      for (const r of grads) {
        const w = r.n / total;
        r.grads.forEach((g, i) => { const a = avg[i]; for (let k = 0; k < g.length; k++) a[k] += g[k] * w; });
      }
      await Promise.all(replicas.map((rep) => rep.applyGrads(avg, lr, hp.weightDecay)));
    }
    for (const r of res) { lossSum += r.loss * r.n; right += r.correct; seen += r.n; }
    hooks.afterBatch({ epoch, batch: b + 1, batchesPerEpoch, loss: lossSum / seen, accuracy: right / seen });
  }
  return { loss: lossSum / seen, accuracy: right / seen, lr };
}

/**
 * The weights after an epoch. Batch-norm statistics drift apart between replicas (each sees its own
 * shard), so they are averaged and broadcast to keep replicas identical; trainable weights already are.
 */
async function syncReplicas(replicas: ReplicaClient[], info: ReplicaInfo): Promise<Float32Array[]> {
  const weights = await replicas[0].getWeights();
  if (replicas.length === 1) return weights;
  const others = await Promise.all(replicas.slice(1).map((r) => r.getWeights()));
  const averaged = weights.map((w, i) => {
    if (info.trainable[i]) return w;
    const a = Float32Array.from(w);
    for (const o of others) for (let k = 0; k < a.length; k++) a[k] += o[i][k];
    for (let k = 0; k < a.length; k++) a[k] /= replicas.length;
    return a;
  });
  await Promise.all(replicas.map((r) => r.setWeights(averaged)));
  return averaged;
}

/** Mean binary cross-entropy and accuracy of logits for the set indices `idx`. */
function bce(logits: Float32Array, labels: Uint8Array, idx: number[]): { loss: number; acc: number } {
  let loss = 0, right = 0;
  for (let i = 0; i < idx.length; i++) {
    const z = logits[i], y = labels[idx[i]];
    // stable log(1 + exp(-|z|)) form
    loss += Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
    if ((z > 0 ? 1 : 0) === y) right++;
  }
  return { loss: loss / idx.length, acc: right / idx.length };
}

/** `indices` cut into at most k consecutive, non-empty parts of equal size (the last may be smaller). */
function shards(indices: number[], k: number): number[][] {
  const out: number[][] = [];
  const per = Math.ceil(indices.length / k);
  for (let r = 0; r < k; r++) out.push(indices.slice(r * per, (r + 1) * per));
  return out.filter((s) => s.length > 0);
}

/**
 * The replicas (holding the same weights) as one: each computes the logits and features of a
 * consecutive shard of the images, in parallel. An augmented source's first shard draws from its
 * seed, the others from seeds derived from it, so one replica gives what it gave before.
 */
export function shardedFeatures(replicas: ReplicaClient[]): FeatureComputer {
  return {
    async logitsAndFeatures(source, flip) {
      const k = replicas.length;
      if (k === 1) return replicas[0].logitsAndFeatures(source, flip);
      let parts: FeatureSource[];
      if ('indices' in source) {
        const { augSeed } = source;
        parts = shards(source.indices, k).map((indices, r) => ({ indices, augSeed: augSeed === null || r === 0 ? augSeed : mixSeed(augSeed, r) }));
      } else {
        const per = source.pixels.length / source.count, size = Math.ceil(source.count / k);
        parts = Array.from({ length: k }, (_, r) => [r * size, Math.min(source.count, (r + 1) * size)])
          .filter(([a, b]) => b > a)
          // slice, not subarray: a view would be sent to the worker with its whole buffer.
          .map(([a, b]) => ({ pixels: source.pixels.slice(a * per, b * per), count: b - a }));
      }
      const res = await Promise.all(parts.map((p, r) => replicas[r].logitsAndFeatures(p, flip)));
      const dim = res[0].dim;
      const logits = new Float32Array(res.reduce((s, r) => s + r.logits.length, 0)), features = new Float32Array(logits.length * dim);
      let o = 0;
      for (const r of res) { logits.set(r.logits, o); features.set(r.features, o * dim); o += r.logits.length; }
      return { logits, features, dim };
    },
  };
}

/** Logits of the set images `indices` as the trained bundle serves them (averaged with the mirror image's: test-time flip). */
async function servedLogits(replicas: ReplicaClient[], indices: number[]): Promise<Float32Array> {
  return (await shardedFeatures(replicas).logitsAndFeatures({ indices, augSeed: null }, true)).logits;
}

/** Same contract as trainClassifier, always off the caller's thread (at least one worker thread). */
export function trainInWorkerThread(opts: TrainOptions): Promise<TrainResult> {
  return trainClassifier({ ...opts, workers: opts.workers === 0 ? 1 : opts.workers });
}
