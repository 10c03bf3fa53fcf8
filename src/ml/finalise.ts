/**
 * After the training loop: the serving parameters of the trained network (temperature, INCONCLUSIVE
 * band, guard) fitted on the validation split with the cross-fitted figures reported for them, and
 * the bundle's metadata. refitServing redoes this for an existing bundle without training again.
 */
import { sha256Hex } from '../shared/hash.js';
import { decodeBundle, encodeBundle, type BundleMeta, BUNDLE_FORMAT_VERSION } from './bundle.js';
import {
  CLASS_ORDER, PREPROCESSING_DESCRIPTION, PREPROCESSING_VERSION, dataFingerprint, decodeItems, groupSplit,
  type ImageSet, type LabelledItem, type SkippedItem,
} from './data.js';
import { TrainingInputError } from './errors.js';
import {
  calibrate, chooseThresholds, decide, evaluate, fitTemperature, metricIntervals, probabilities, sigmoid, wilsonInterval,
  type Decision, type Thresholds,
} from './evaluation.js';
import { fitGuard, guardScores, quantile, refusalRate, type GuardParams, type GuardSummary } from './guard.js';
import { validateHyperparameters, type Hyperparameters } from './hyperparameters.js';
import { generateNegatives, NEGATIVE_KINDS } from './negatives.js';
import type { FeatureComputer, ReplicaInfo } from './replica.js';
import { LocalReplica } from './replica-client.js';
import { onnxThreadsPerReplica, runtimeThatTrained } from './training-runtime.js';
import type { TrainingProgress } from './schedule.js';
import { trainingSplit } from './split.js';
import type { TrainResult } from './trainer.js';

/** Indices into the image set: training images and the person-aware validation split. */
export interface Split { train: number[]; val: number[] }

/** Share of validation eyes the guard may refuse when its threshold is chosen. */
export const GUARD_EYE_REFUSAL = 0.005;
/** Synthetic non-eyes for fitting the guard: about one per 3.5 training images, 220 to 2,200. */
const guardNegativesFor = (trainCount: number) => Math.max(220, Math.min(2200, Math.round(trainCount / 3.5)));

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
 * Temperature, INCONCLUSIVE band and guard of the trained network (`replica`: one replica holding
 * its weights, or several sharing the work), all fitted on the validation split with flip-averaged
 * logits. The reported figures are
 * cross-fitted: the validation groups are halved; each half is measured with a temperature, band
 * and guard threshold fitted on the other half, so no figure comes from the data its cut was
 * chosen on. The served parameters are fitted on the whole validation split.
 */
export async function fitServing(replica: FeatureComputer, set: ImageSet, split: Split, hp: Hyperparameters, log: (l: string) => void): Promise<ServingFit> {
  const t0 = Date.now();
  const val = await replica.logitsAndFeatures({ indices: split.val, augSeed: null }, true);
  const labels = Uint8Array.from(split.val.map((i) => set.labels[i]));
  const groups = split.val.map((i) => set.groups[i]);
  const calibration = calibrate(val.logits, labels);
  const pMale = probabilities(val.logits, calibration.temperature);
  const thresholds = chooseThresholds(pMale, labels, hp.decisionAccuracy);
  const metricsInSample = evaluate(pMale, labels, thresholds);

  // Guard: training eyes clean and augmented against synthetic non-eyes.
  const trainClean = await replica.logitsAndFeatures({ indices: split.train, augSeed: null }, false);
  const trainAug = await replica.logitsAndFeatures({ indices: split.train, augSeed: hp.seed * 31 + 5 }, false);
  const eyeSample = { pixels: set.pixels, size: set.size, count: set.count };
  const negativesFit = guardNegativesFor(split.train.length), negativesCheck = Math.round(negativesFit / 2);
  const fitNeg = await generateNegatives(negativesFit, set.size, hp.seed * 2 + 1, eyeSample);
  const checkNeg = await generateNegatives(negativesCheck, set.size, hp.seed * 2 + 2 + 1_000_003, eyeSample);
  const fitNegF = await replica.logitsAndFeatures({ pixels: fitNeg.pixels, count: negativesFit }, false);
  const checkNegF = await replica.logitsAndFeatures({ pixels: checkNeg.pixels, count: negativesCheck }, false);
  const dim = val.dim;
  const eyes = new Float32Array(trainClean.features.length + trainAug.features.length);
  eyes.set(trainClean.features); eyes.set(trainAug.features, trainClean.features.length);
  const guard = fitGuard({
    dim, eyes, eyeCount: 2 * split.train.length, negatives: fitNegF.features, negativeCount: negativesFit,
    validationEyes: val.features, validationCount: split.val.length, eyeRefusal: GUARD_EYE_REFUSAL,
  });
  const valScores = guardScores(guard, val.features, split.val.length);
  const checkScores = guardScores(guard, checkNegF.features, negativesCheck);
  const valAug = await replica.logitsAndFeatures({ indices: split.val, augSeed: hp.seed * 31 + 6 }, false);
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

/** What trainedBundleMeta needs besides the serving fit: the run that produced the weights. */
export interface TrainedRun {
  hp: Hyperparameters;
  set: ImageSet;
  split: Split;
  skipped: SkippedItem[];
  progress: TrainingProgress;
  info: ReplicaInfo;
  workers: number;
  fingerprint: string;
  /** Usable images per class, in CLASS_ORDER. */
  perClass: number[];
  /** When training started (Date.now()). */
  startedAt: number;
}

/** The metadata of a freshly trained bundle: how it was trained, on what, and how it serves. */
export function trainedBundleMeta(run: TrainedRun, serving: ServingFit): BundleMeta {
  const { hp, set, split, progress: state, info, perClass, skipped } = run;
  const nGroups = (idx: number[]) => new Set(idx.map((i) => set.groups[i])).size;
  return {
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
    workers: run.workers,
    parameters: info.params,
    dataFingerprint: run.fingerprint,
    dataCounts: { FEMALE: perClass[0], MALE: perClass[1], train: split.train.length, validation: split.val.length, skipped: skipped.length, groups: nGroups([...split.train, ...split.val]), validationGroups: nGroups(split.val) },
    createdAt: new Date().toISOString(),
    trainingSeconds: (Date.now() - run.startedAt) / 1000,
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
  // decodeBundle always fills both (tf's type leaves them optional).
  const weightData = artifacts.weightData as ArrayBuffer, weightSpecs = artifacts.weightSpecs ?? [];
  // The serving fit runs on the runtime that trained the bundle, so a refit with the same target reproduces it.
  const replica = new LocalReplica({ runtime: await runtimeThatTrained(meta.backend), threads: onnxThreadsPerReplica(1) });
  try {
    await replica.init({ architecture: hp.architecture, inputSize: hp.inputSize, pixels: set.pixels, labels: set.labels, degraded: set.degraded });
    await replica.setWeightsFromArtifacts(weightData, weightSpecs);
    const serving = await fitServing(replica, set, split, hp, log);
    const refitted: BundleMeta = {
      ...meta, formatVersion: BUNDLE_FORMAT_VERSION, testTimeAugmentation: 'flip', hyperparameters: hp,
      calibration: serving.calibration, thresholds: serving.thresholds, metrics: serving.metrics, metricsInSample: serving.metricsInSample,
      metricIntervals: serving.intervals, guard: serving.guardSummary,
      refittedAt: new Date().toISOString(), refitSeconds: (Date.now() - t0) / 1000,
    };
    const out = encodeBundle(refitted, {
      modelTopology: artifacts.modelTopology as object, weightSpecs, weightData,
    }, serving.guard);
    return { bundle: out, sha256: sha256Hex(out), meta: refitted, skipped, peakRssBytes: process.memoryUsage().rss };
  } finally {
    await replica.close();
  }
}
