/**
 * The training loop: decode, split, data-parallel replicas (worker threads, or the caller's thread),
 * Adam(W) with a one-cycle learning-rate schedule, per-epoch validation, checkpoints, early stopping,
 * best-epoch selection, calibration, thresholds and the final bundle.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { decodeBundle, encodeBundle, type BundleMeta, BUNDLE_FORMAT_VERSION } from './bundle.js';
import { decodeContainer, encodeContainer, packFloat32, sha256Hex, unpackFloat32 } from './container.js';
import {
  CLASS_ORDER, PREPROCESSING_DESCRIPTION, PREPROCESSING_VERSION, dataFingerprint, decodeItems, groupSplit,
  type ImageSet, type LabelledItem, type SkippedItem,
} from './data.js';
import { BundleFormatError, TrainingCancelledError, TrainingInputError } from './errors.js';
import {
  calibrate, chooseThresholds, decide, evaluate, fitTemperature, metricIntervals, probabilities, sigmoid, wilsonInterval,
  type Decision, type Thresholds,
} from './evaluation.js';
import { fitGuard, guardScores, quantile, refusalRate, type GuardParams, type GuardSummary } from './guard.js';
import { generateNegatives, NEGATIVE_KINDS } from './negatives.js';
import { MIN_IMAGES_PER_CLASS, validateHyperparameters, type Hyperparameters } from './hyperparameters.js';
import type { GradResult, ModelArtifactsLite, OptState, ReplicaInfo } from './replica.js';
import { mixSeed, mulberry32, shuffleInPlace } from './rng.js';
import { trainingSplit } from './split.js';

export interface EpochReport {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number;
  valAccuracy: number;
  durationMs: number;
  learningRate: number;
  isBest: boolean;
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
   * EYECASE_TRAIN_WORKERS variable, else min(2, cores) on wasm/cpu and 1 with a native backend.
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

const CHECKPOINT_FORMAT_VERSION = 1;

interface ReplicaHandle {
  call<T>(method: string, ...args: unknown[]): Promise<T>;
  close(): Promise<void>;
}

function workerEntry(): URL | null {
  const url = new URL('./train-worker.js', import.meta.url);
  try {
    return existsSync(fileURLToPath(url)) ? url : null;
  } catch {
    return null;
  }
}

function nativeBackendPresent(): boolean {
  const forced = (process.env.TFJS_BACKEND ?? '').toLowerCase();
  if (forced) return ['gpu', 'node', 'tensorflow', 'tensorflow-gpu'].includes(forced);
  const req = createRequire(import.meta.url);
  for (const p of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try { req.resolve(p); return true; } catch { /* absent */ }
  }
  return false;
}

/** How many worker threads trainClassifier uses by default here. */
export function defaultWorkerCount(): number {
  const env = process.env.EYECASE_TRAIN_WORKERS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 0 && n <= 16) return workerEntry() ? n : 0;
  }
  if (!workerEntry()) return 0;
  if (nativeBackendPresent()) return 1;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(2, cores));
}

class WorkerReplica implements ReplicaHandle {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;
  constructor(entry: URL) {
    this.worker = new Worker(entry);
    this.worker.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`training worker: ${msg.error}`));
      else p.resolve(msg.result);
    });
    const fail = (e: Error) => {
      this.failed = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => fail(new Error(`training worker exited with code ${code}`)));
  }
  call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args });
    });
  }
  async close(): Promise<void> {
    this.failed = this.failed ?? new Error('closed');
    await this.worker.terminate();
  }
}

class LocalReplica implements ReplicaHandle {
  private core: Promise<import('./replica.js').ReplicaCore>;
  constructor() {
    this.core = import('./replica.js').then((m) => new m.ReplicaCore());
  }
  async call<T>(method: string, ...args: unknown[]): Promise<T> {
    const core = await this.core;
    const fn = (core as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
    return (await fn.apply(core, args)) as T;
  }
  async close(): Promise<void> {
    (await this.core).dispose();
  }
}

interface TrainerState {
  epochsDone: number;
  history: Array<Omit<EpochReport, 'checkpoint' | 'backend' | 'device'>>;
  bestEpoch: number;
  bestValLoss: number;
  sinceBest: number;
}

function encodeCheckpoint(hp: Hyperparameters, fingerprint: string, state: TrainerState, info: ReplicaInfo,
  weights: Float32Array[], opt: OptState, best: Float32Array[]): Uint8Array {
  const payload = packFloat32([...weights, ...opt.m, ...opt.v, ...best]);
  return encodeContainer({
    kind: 'eyecase-checkpoint', formatVersion: CHECKPOINT_FORMAT_VERSION, hyperparameters: hp, dataFingerprint: fingerprint,
    state, optT: opt.t, weightShapes: info.weightShapes, trainable: info.trainable,
  }, payload);
}

function decodeCheckpoint(bytes: Uint8Array): { hp: Hyperparameters; fingerprint: string; state: TrainerState; weights: Float32Array[]; opt: OptState; best: Float32Array[]; shapes: number[][] } {
  const { header, payload } = decodeContainer(bytes, 'eyecase-checkpoint');
  if (header.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new BundleFormatError(`checkpoint format version ${String(header.formatVersion)} is not supported (this build reads version ${CHECKPOINT_FORMAT_VERSION})`);
  }
  const shapes = header.weightShapes as number[][];
  const trainable = header.trainable as boolean[];
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const tSizes = sizes.filter((_, i) => trainable[i]);
  const arrays = unpackFloat32(payload, [...sizes, ...tSizes, ...tSizes, ...sizes]);
  const nW = sizes.length, nT = tSizes.length;
  return {
    hp: header.hyperparameters as Hyperparameters, fingerprint: header.dataFingerprint as string, state: header.state as TrainerState,
    weights: arrays.slice(0, nW), opt: { t: header.optT as number, m: arrays.slice(nW, nW + nT), v: arrays.slice(nW + nT, nW + 2 * nT) },
    best: arrays.slice(nW + 2 * nT), shapes,
  };
}

/** One-cycle: linear warm-up over 15% of the steps from lr/10, then cosine down to lr/200. */
export function oneCycleLr(step: number, totalSteps: number, maxLr: number): number {
  const warm = Math.max(1, Math.round(totalSteps * 0.15));
  if (step < warm) return maxLr / 10 + ((maxLr - maxLr / 10) * step) / warm;
  const minLr = maxLr / 200;
  const p = Math.min(1, (step - warm) / Math.max(1, totalSteps - warm));
  return minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos(Math.PI * p));
}

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

function shards(indices: number[], k: number): number[][] {
  const out: number[][] = [];
  const per = Math.ceil(indices.length / k);
  for (let r = 0; r < k; r++) out.push(indices.slice(r * per, (r + 1) * per));
  return out.filter((s) => s.length > 0);
}

/** Train a classifier; heavy work runs in worker threads unless workers = 0. */
export async function trainClassifier(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? (() => {});
  const checked = validateHyperparameters(opts.hyperparameters ?? {});
  if (!checked.ok) throw new TrainingInputError(checked.errors);
  const hp = checked.value;
  let resume: ReturnType<typeof decodeCheckpoint> | null = null;
  if (opts.resumeFrom) {
    resume = decodeCheckpoint(opts.resumeFrom);
    const diffs = (['architecture', 'inputSize', 'validationSplit', 'seed', 'batchSize'] as const).filter((k) => resume!.hp[k] !== hp[k]);
    if (diffs.length) throw new TrainingInputError([`the checkpoint was made with different ${diffs.join(', ')}; resume with the same values`]);
  }

  let peakRss = process.memoryUsage().rss;
  const sampleRss = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };
  const rssTimer = setInterval(sampleRss, 250);
  rssTimer.unref();

  const nWorkers = opts.workers ?? defaultWorkerCount();
  const entry = workerEntry();
  if (nWorkers > 0 && !entry) throw new Error('worker threads requested but train-worker.js was not found next to trainer.js (run the compiled build)');

  const t0 = Date.now();
  const { set, skipped } = await decodeItems(opts.items, hp.inputSize, { shared: nWorkers > 0, degradedCopy: hp.augmentation });
  if (opts.signal?.aborted) throw new TrainingCancelledError(resume?.state.epochsDone ?? 0, opts.resumeFrom);
  log(`decoded ${set.count} images at ${hp.inputSize}x${hp.inputSize} in ${((Date.now() - t0) / 1000).toFixed(1)} s; skipped ${skipped.length}`);
  const perClass = [0, 0];
  set.labels.forEach((l) => perClass[l]++);
  const problems: string[] = [];
  CLASS_ORDER.forEach((c, i) => { if (perClass[i] < MIN_IMAGES_PER_CLASS) problems.push(`${c} has ${perClass[i]} usable images; at least ${MIN_IMAGES_PER_CLASS} are needed`); });
  if (problems.length) throw new TrainingInputError(problems);
  const fingerprint = dataFingerprint(set);
  if (resume && resume.fingerprint !== fingerprint) throw new TrainingInputError(['the checkpoint was trained on different data (fingerprint mismatch)']);
  const split = trainingSplit(set, hp);

  const replicas: ReplicaHandle[] = nWorkers > 0 ? Array.from({ length: nWorkers }, () => new WorkerReplica(entry!)) : [new LocalReplica()];
  let lastCheckpoint: Uint8Array | undefined = opts.resumeFrom;
  try {
    const infos = await Promise.all(replicas.map((r) => r.call<ReplicaInfo>('init', { architecture: hp.architecture, inputSize: hp.inputSize, pixels: set.pixels, labels: set.labels, degraded: set.degraded })));
    const info = infos[0];
    log(`backend ${info.backend} (${info.device}); ${replicas.length} replica(s) in ${nWorkers > 0 ? 'worker threads' : 'this thread'}; ${info.params} parameters`);
    const state: TrainerState = resume ? resume.state : { epochsDone: 0, history: [], bestEpoch: 0, bestValLoss: Number.POSITIVE_INFINITY, sinceBest: 0 };
    let best: Float32Array[];
    if (resume) {
      await Promise.all(replicas.map((r) => r.call('setWeights', resume!.weights)));
      await Promise.all(replicas.map((r) => r.call('setOptState', resume!.opt)));
      best = resume.best;
    } else {
      const w0 = await replicas[0].call<Float32Array[]>('getWeights');
      await Promise.all(replicas.slice(1).map((r) => r.call('setWeights', w0)));
      best = w0;
    }
    const minBatch = Math.max(2 * replicas.length, Math.floor(hp.batchSize / 4));
    const nTrain = split.train.length;
    const batchesPerEpoch = Math.floor(nTrain / hp.batchSize) + (nTrain % hp.batchSize >= minBatch ? 1 : 0) || 1;
    const totalSteps = hp.epochs * batchesPerEpoch;

    for (let epoch = state.epochsDone + 1; epoch <= hp.epochs; epoch++) {
      const te = Date.now();
      const order = shuffleInPlace([...split.train], mulberry32(mixSeed(hp.seed, epoch, 1)));
      let lossSum = 0, right = 0, seen = 0, lr = 0;
      for (let b = 0; b < batchesPerEpoch; b++) {
        if (opts.signal?.aborted) throw new TrainingCancelledError(state.epochsDone, lastCheckpoint);
        const batch = order.slice(b * hp.batchSize, (b + 1) * hp.batchSize);
        lr = oneCycleLr((epoch - 1) * batchesPerEpoch + b, totalSteps, hp.learningRate);
        const parts = shards(batch, replicas.length);
        const seedFor = (r: number) => (hp.augmentation ? mixSeed(hp.seed, epoch, b, r, 7) : null);
        if (replicas.length === 1) {
          const r = await replicas[0].call<{ loss: number; correct: number; n: number }>('step', batch, seedFor(0), lr, hp.weightDecay);
          lossSum += r.loss * r.n; right += r.correct; seen += r.n;
        } else {
          const res = await Promise.all(parts.map((p, r) => replicas[r].call<GradResult>('computeGrads', p, seedFor(r))));
          const total = res.reduce((s, r) => s + r.n, 0);
          const avg = res[0].grads.map((g) => new Float32Array(g.length));
          for (const r of res) {
            const w = r.n / total;
            r.grads.forEach((g, i) => { const a = avg[i]; for (let k = 0; k < g.length; k++) a[k] += g[k] * w; });
            lossSum += r.loss * r.n; right += r.correct; seen += r.n;
          }
          await Promise.all(replicas.map((rep) => rep.call('applyGrads', avg, lr, hp.weightDecay)));
        }
        sampleRss();
        opts.onProgress?.({ epoch, batch: b + 1, batchesPerEpoch, loss: lossSum / seen, accuracy: right / seen });
      }
      // Keep replicas identical: average the batch-norm statistics, broadcast.
      let weights = await replicas[0].call<Float32Array[]>('getWeights');
      if (replicas.length > 1) {
        const others = await Promise.all(replicas.slice(1).map((r) => r.call<Float32Array[]>('getWeights')));
        weights = weights.map((w, i) => {
          if (info.trainable[i]) return w;
          const a = Float32Array.from(w);
          for (const o of others) for (let k = 0; k < a.length; k++) a[k] += o[i][k];
          for (let k = 0; k < a.length; k++) a[k] /= replicas.length;
          return a;
        });
        await Promise.all(replicas.map((r) => r.call('setWeights', weights)));
      }
      const valLogits = await predictIndices(replicas, split.val);
      const v = bce(valLogits, set.labels, split.val);
      const isBest = v.loss < state.bestValLoss - 1e-5;
      if (isBest) { state.bestValLoss = v.loss; state.bestEpoch = epoch; state.sinceBest = 0; best = weights; } else state.sinceBest++;
      state.epochsDone = epoch;
      const row = { epoch, loss: lossSum / seen, accuracy: right / seen, valLoss: v.loss, valAccuracy: v.acc, durationMs: Date.now() - te, learningRate: lr, isBest };
      state.history.push(row);
      const opt = await replicas[0].call<OptState>('getOptState');
      lastCheckpoint = encodeCheckpoint(hp, fingerprint, state, info, weights, opt, best);
      sampleRss();
      await opts.onEpoch?.({ ...row, checkpoint: lastCheckpoint, backend: info.backend, device: info.device });
      if (hp.earlyStoppingPatience > 0 && state.sinceBest >= hp.earlyStoppingPatience) {
        log(`early stopping after epoch ${epoch}: no lower validation loss for ${state.sinceBest} epochs`);
        break;
      }
    }

    // Final model: the best epoch's weights; temperature, band and guard fitted on the person-aware
    // validation split; the figures reported are cross-fitted (see fitServing).
    await replicas[0].call('setWeights', best);
    const serving = await fitServing(replicas[0], set, split, hp, log);
    const artifacts = await replicas[0].call<ModelArtifactsLite>('exportArtifacts');
    const nGroups = (idx: number[]) => new Set(idx.map((i) => set.groups[i])).size;
    const meta: BundleMeta = {
      formatVersion: BUNDLE_FORMAT_VERSION,
      architecture: hp.architecture,
      inputSize: hp.inputSize,
      preprocessingVersion: PREPROCESSING_VERSION,
      preprocessing: PREPROCESSING_DESCRIPTION,
      classOrder: [...CLASS_ORDER],
      output: 'one logit = log-odds of MALE, averaged over the image and its mirror image; P(male) = sigmoid(logit / temperature)',
      testTimeAugmentation: 'flip',
      calibration: serving.calibration,
      thresholds: serving.thresholds,
      metrics: serving.metrics,
      metricsInSample: serving.metricsInSample,
      metricIntervals: serving.intervals,
      metricsSplit: `person-aware validation: ${split.val.length} images of ${nGroups(split.val)} groups (whole groups, about ${Math.round(hp.validationSplit * 100)}% of each class, seed ${hp.seed}); ` +
        'figures cross-fitted: temperature, band and guard threshold fitted on one half of the groups, measured on the other, both ways',
      guard: serving.guardSummary,
      hyperparameters: hp,
      bestEpoch: state.bestEpoch,
      epochsRun: state.epochsDone,
      history: state.history,
      backend: info.backend,
      device: info.device,
      workers: nWorkers,
      parameters: info.params,
      dataFingerprint: fingerprint,
      dataCounts: { FEMALE: perClass[0], MALE: perClass[1], train: split.train.length, validation: split.val.length, skipped: skipped.length, groups: nGroups([...split.train, ...split.val]), validationGroups: nGroups(split.val) },
      createdAt: new Date().toISOString(),
      trainingSeconds: (Date.now() - t0) / 1000,
    };
    const bundle = encodeBundle(meta, artifacts, serving.guard);
    sampleRss();
    return { bundle, sha256: sha256Hex(bundle), meta, skipped, peakRssBytes: peakRss };
  } catch (e) {
    if (e instanceof TrainingCancelledError) throw e;
    throw e;
  } finally {
    clearInterval(rssTimer);
    await Promise.all(replicas.map((r) => r.close().catch(() => {})));
  }
}

async function predictIndices(replicas: ReplicaHandle[], indices: number[]): Promise<Float32Array> {
  const parts = shards(indices, replicas.length);
  const res = await Promise.all(parts.map((p, r) => replicas[r].call<Float32Array>('predict', p)));
  const out = new Float32Array(indices.length);
  let o = 0;
  for (const r of res) { out.set(r, o); o += r.length; }
  return out;
}

/** Share of validation eyes the guard may refuse when its threshold is chosen. */
export const GUARD_EYE_REFUSAL = 0.005;
/** Synthetic non-eyes for fitting the guard: about one per 3.5 training images, 220 to 2,200. */
const guardNegativesFor = (trainCount: number) => Math.max(220, Math.min(2200, Math.round(trainCount / 3.5)));

interface LogitsAndFeatures { logits: Float32Array; features: Float32Array; dim: number }

export interface ServingFit {
  calibration: ReturnType<typeof calibrate>;
  thresholds: Thresholds;
  metrics: ReturnType<typeof evaluate> & { guardRefusalRate: number };
  metricsInSample: ReturnType<typeof evaluate>;
  intervals: ReturnType<typeof metricIntervals> & { guardRefusalRate: [number, number] };
  guard: GuardParams;
  guardSummary: GuardSummary;
}

/**
 * Temperature, INCONCLUSIVE band and guard of the trained network (replica holding its weights),
 * all fitted on the validation split with flip-averaged logits. The reported figures are
 * cross-fitted: the validation groups are halved; each half is measured with a temperature, band
 * and guard threshold fitted on the other half, so no figure comes from the data its cut was
 * chosen on. The served parameters are fitted on the whole validation split.
 */
export async function fitServing(replica: ReplicaHandle, set: ImageSet, split: { train: number[]; val: number[] }, hp: Hyperparameters, log: (l: string) => void): Promise<ServingFit> {
  const t0 = Date.now();
  const val = await replica.call<LogitsAndFeatures>('logitsAndFeatures', { indices: split.val, augSeed: null }, true);
  const labels = Uint8Array.from(split.val.map((i) => set.labels[i]));
  const groups = split.val.map((i) => set.groups[i]);
  const calibration = calibrate(val.logits, labels);
  const pMale = probabilities(val.logits, calibration.temperature);
  const thresholds = chooseThresholds(pMale, labels, hp.decisionAccuracy);
  const metricsInSample = evaluate(pMale, labels, thresholds);

  // Guard: training eyes clean and augmented against synthetic non-eyes.
  const trainClean = await replica.call<LogitsAndFeatures>('logitsAndFeatures', { indices: split.train, augSeed: null }, false);
  const trainAug = await replica.call<LogitsAndFeatures>('logitsAndFeatures', { indices: split.train, augSeed: hp.seed * 31 + 5 }, false);
  const eyeSample = { pixels: set.pixels, size: set.size, count: set.count };
  const negativesFit = guardNegativesFor(split.train.length), negativesCheck = Math.round(negativesFit / 2);
  const fitNeg = await generateNegatives(negativesFit, set.size, hp.seed * 2 + 1, eyeSample);
  const checkNeg = await generateNegatives(negativesCheck, set.size, hp.seed * 2 + 2 + 1_000_003, eyeSample);
  const fitNegF = await replica.call<LogitsAndFeatures>('logitsAndFeatures', { pixels: fitNeg.pixels, count: negativesFit }, false);
  const checkNegF = await replica.call<LogitsAndFeatures>('logitsAndFeatures', { pixels: checkNeg.pixels, count: negativesCheck }, false);
  const dim = val.dim;
  const eyes = new Float32Array(trainClean.features.length + trainAug.features.length);
  eyes.set(trainClean.features); eyes.set(trainAug.features, trainClean.features.length);
  const guard = fitGuard({
    dim, eyes, eyeCount: 2 * split.train.length, negatives: fitNegF.features, negativeCount: negativesFit,
    validationEyes: val.features, validationCount: split.val.length, eyeRefusal: GUARD_EYE_REFUSAL,
  });
  const valScores = guardScores(guard, val.features, split.val.length);
  const checkScores = guardScores(guard, checkNegF.features, negativesCheck);
  const valAug = await replica.call<LogitsAndFeatures>('logitsAndFeatures', { indices: split.val, augSeed: hp.seed * 31 + 6 }, false);
  const valAugScores = guardScores(guard, valAug.features, split.val.length);
  const perKind: Record<string, number> = {};
  for (const kind of NEGATIVE_KINDS) {
    const s = Array.from(checkScores).filter((_, i) => checkNeg.kinds[i] === kind);
    perKind[kind] = refusalRate(s, guard.threshold);
  }

  // Cross-fitted figures.
  const halves = groupSplit(labels, groups, 0.5, hp.seed + 1);
  const pCross = new Float64Array(labels.length);
  const decisions: Decision[] = new Array(labels.length);
  let refusedEyes = 0;
  for (const [measure, fitOn] of [[halves.val, halves.train], [halves.train, halves.val]]) {
    const lf = fitOn.map((i) => val.logits[i]), yf = fitOn.map((i) => labels[i]);
    const T = fitTemperature(lf, yf);
    const band = chooseThresholds(probabilities(lf, T), yf, hp.decisionAccuracy);
    const guardCut = quantile(fitOn.map((i) => valScores[i]), GUARD_EYE_REFUSAL);
    for (const i of measure) {
      pCross[i] = sigmoid(val.logits[i] / T);
      const refused = valScores[i] < guardCut;
      if (refused) refusedEyes++;
      decisions[i] = refused ? 'NOT_AN_EYE' : decide(pCross[i], band);
    }
  }
  const cross = evaluate(pCross, labels, thresholds, decisions);
  const intervals = metricIntervals(cross, pCross, labels, groups, decisions);
  const guardSummary: GuardSummary = {
    method: guard.method,
    threshold: guard.threshold,
    eyeRefusalTarget: GUARD_EYE_REFUSAL,
    negativesUsed: negativesFit,
    negativeKinds: [...NEGATIVE_KINDS],
    validationEyesRefused: refusedEyes / labels.length,
    validationEyesRefusedInterval: wilsonInterval(refusedEyes, labels.length),
    validationEyesRefusedInSample: refusalRate(valScores, guard.threshold),
    augmentedValidationEyesRefused: refusalRate(valAugScores, guard.threshold),
    syntheticNonEyesRefused: refusalRate(checkScores, guard.threshold),
    syntheticNonEyesRefusedInterval: wilsonInterval(Math.round(refusalRate(checkScores, guard.threshold) * negativesCheck), negativesCheck),
    syntheticNonEyesChecked: negativesCheck,
    syntheticNonEyesRefusedByKind: perKind,
  };
  log(`serving fit in ${((Date.now() - t0) / 1000).toFixed(1)} s: T=${calibration.temperature.toFixed(3)}, band [${thresholds.female.toFixed(3)}, ${thresholds.male.toFixed(3)}], ` +
    `guard threshold ${guard.threshold.toFixed(3)}: refuses ${(guardSummary.validationEyesRefused as number * 100).toFixed(2)}% of validation eyes (cross-fitted), ` +
    `${((guardSummary.syntheticNonEyesRefused as number) * 100).toFixed(1)}% of ${negativesCheck} unseen synthetic non-eyes`);
  return {
    calibration, thresholds, metricsInSample, guard, guardSummary,
    metrics: { ...cross, guardRefusalRate: refusedEyes / labels.length },
    intervals: { ...intervals, guardRefusalRate: wilsonInterval(refusedEyes, labels.length) },
  };
}

/**
 * Re-fit the serving parameters of a trained bundle (temperature, band, guard and the cross-fitted
 * figures) on the data it was trained on, keeping its weights: for a new guard or decision target
 * without training again. The data must match the bundle's fingerprint.
 */
export async function refitServing(bundle: Uint8Array, items: LabelledItem[], opts: { decisionAccuracy?: number; log?: (line: string) => void } = {}): Promise<TrainResult> {
  const log = opts.log ?? (() => {});
  const { meta, artifacts } = decodeBundle(bundle);
  const hp: Hyperparameters = { ...meta.hyperparameters, decisionAccuracy: opts.decisionAccuracy ?? meta.hyperparameters.decisionAccuracy };
  const checked = validateHyperparameters(hp);
  if (!checked.ok) throw new TrainingInputError(checked.errors);
  const t0 = Date.now();
  const { set, skipped } = await decodeItems(items, hp.inputSize, { degradedCopy: hp.augmentation });
  if (dataFingerprint(set) !== meta.dataFingerprint) throw new TrainingInputError(['the data differs from the data the model was trained on (fingerprint mismatch)']);
  const split = trainingSplit(set, hp);
  const replica = new LocalReplica();
  try {
    await replica.call('init', { architecture: hp.architecture, inputSize: hp.inputSize, pixels: set.pixels, labels: set.labels, degraded: set.degraded });
    await replica.call('setWeightsFromArtifacts', artifacts.weightData, artifacts.weightSpecs);
    const serving = await fitServing(replica, set, split, hp, log);
    const refitted: BundleMeta = {
      ...meta, formatVersion: BUNDLE_FORMAT_VERSION, testTimeAugmentation: 'flip', hyperparameters: hp,
      calibration: serving.calibration, thresholds: serving.thresholds, metrics: serving.metrics, metricsInSample: serving.metricsInSample,
      metricIntervals: serving.intervals, guard: serving.guardSummary,
      refittedAt: new Date().toISOString(), refitSeconds: (Date.now() - t0) / 1000,
    };
    const out = encodeBundle(refitted, {
      modelTopology: artifacts.modelTopology as object, weightSpecs: artifacts.weightSpecs ?? [], weightData: artifacts.weightData as ArrayBuffer,
    }, serving.guard);
    return { bundle: out, sha256: sha256Hex(out), meta: refitted, skipped, peakRssBytes: process.memoryUsage().rss };
  } finally {
    await replica.close();
  }
}

/** Same contract as trainClassifier, always off the caller's thread (at least one worker thread). */
export function trainInWorkerThread(opts: TrainOptions): Promise<TrainResult> {
  return trainClassifier({ ...opts, workers: Math.max(1, opts.workers ?? defaultWorkerCount()) });
}

export { sigmoid };
