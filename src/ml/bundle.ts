/**
 * The model bundle: one self-describing, versioned binary (see container.ts) holding the model
 * topology and weights (TensorFlow.js layers format), architecture, input size, preprocessing
 * version, class order, calibration, thresholds, metrics, backend and a fingerprint of the data.
 */
import * as tf from '@tensorflow/tfjs';
import { sha256Hex } from '../shared/hash.js';
import { decodeContainer, decodeHeader, encodeContainer } from './container.js';
import type { Label } from './data.js';
import { BundleFormatError } from './errors.js';
import type { Calibration, EvaluationMetrics, Thresholds } from './evaluation.js';
import type { GuardParams, GuardSummary } from './guard.js';
import type { Hyperparameters } from './hyperparameters.js';
import type { ModelArtifactsLite } from './replica.js';

/**
 * Format written by this build. Version 2 adds the out-of-distribution guard (header `guard`,
 * summary in meta.guard) and flip test-time averaging (meta.testTimeAugmentation). Version 1
 * bundles still load, without a guard. Other versions are refused with a BundleFormatError.
 */
export const BUNDLE_FORMAT_VERSION = 2;
export const READABLE_BUNDLE_FORMATS: readonly number[] = [1, 2];
export const BUNDLE_KIND = 'eyecase-model-bundle';
export const BUNDLE_FILE_EXTENSION = '.eyemodel';

export interface BundleMeta {
  formatVersion: number;
  architecture: string;
  inputSize: number;
  preprocessingVersion: number;
  preprocessing: string;
  classOrder: Label[];
  output: string;
  calibration: Calibration;
  thresholds: Thresholds;
  metrics: EvaluationMetrics;
  metricsSplit: string;
  hyperparameters: Hyperparameters;
  bestEpoch: number;
  epochsRun: number;
  history: Array<{ epoch: number; loss: number; accuracy: number; valLoss: number; valAccuracy: number; durationMs: number; learningRate: number; isBest: boolean }>;
  backend: string;
  device: string;
  workers: number;
  parameters: number;
  dataFingerprint: string;
  dataCounts: { FEMALE: number; MALE: number; train: number; validation: number; skipped: number; [k: string]: number };
  /** 'flip': the logit is the mean over the image and its mirror image (format 2). */
  testTimeAugmentation?: 'flip' | 'none';
  /** The out-of-distribution guard's method, threshold and measured rates (format 2). */
  guard?: GuardSummary;
  createdAt: string;
  trainingSeconds: number;
  tfjsVersion?: string;
  [extra: string]: unknown;
}

export function encodeBundle(meta: BundleMeta, artifacts: ModelArtifactsLite, guard: GuardParams | null): Uint8Array {
  const weights = new Uint8Array(artifacts.weightData);
  return encodeContainer({
    kind: BUNDLE_KIND,
    formatVersion: BUNDLE_FORMAT_VERSION,
    meta: { ...meta, formatVersion: BUNDLE_FORMAT_VERSION, tfjsVersion: tf.version.tfjs },
    modelTopology: artifacts.modelTopology,
    weightSpecs: artifacts.weightSpecs,
    guard,
  }, weights);
}

function checkVersion(header: { formatVersion: unknown }): void {
  if (!READABLE_BUNDLE_FORMATS.includes(header.formatVersion as number)) {
    throw new BundleFormatError(
      `model bundle format version ${String(header.formatVersion)} is not supported: this build reads versions ${READABLE_BUNDLE_FORMATS.join(' and ')}. ` +
      'Re-train the model with this version, or use the release that wrote it.');
  }
}

/** Read a bundle's metadata without loading (or checksumming) the weights. */
export function readBundleMeta(bytes: Uint8Array): BundleMeta {
  const { header } = decodeHeader(bytes, BUNDLE_KIND);
  checkVersion(header);
  return header.meta as BundleMeta;
}

/** guard: null for format-1 bundles (and any bundle trained without one). */
export interface DecodedBundle { meta: BundleMeta; artifacts: tf.io.ModelArtifacts; sha256: string; guard: GuardParams | null }

/** Fully decode and verify a bundle (magic, version, payload checksum). */
export function decodeBundle(bytes: Uint8Array): DecodedBundle {
  const { header } = decodeHeader(bytes, BUNDLE_KIND);
  checkVersion(header);
  const { payload } = decodeContainer(bytes, BUNDLE_KIND);
  // A copy into a fresh ArrayBuffer: for a Node Buffer, slice() is a view (no copy), and its
  // .buffer is the whole pooled allocation.
  const weightData = Uint8Array.prototype.slice.call(payload).buffer;
  return {
    meta: header.meta as BundleMeta,
    artifacts: { modelTopology: header.modelTopology as object, weightSpecs: header.weightSpecs as tf.io.WeightsManifestEntry[], weightData },
    sha256: sha256Hex(bytes),
    guard: (header.guard as GuardParams | null | undefined) ?? null,
  };
}

