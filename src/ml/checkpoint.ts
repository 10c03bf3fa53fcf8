/**
 * Training checkpoints: everything needed to continue a run after its last finished epoch (weights,
 * Adam state, the best epoch's weights, the progress), in the container format of container.ts.
 */
import { decodeContainer, encodeContainer, packFloat32, unpackFloat32 } from './container.js';
import { BundleFormatError, TrainingInputError } from './errors.js';
import type { Hyperparameters } from './hyperparameters.js';
import type { OptState, ReplicaInfo } from './replica.js';
import type { TrainingProgress } from './schedule.js';

export const CHECKPOINT_FORMAT_VERSION = 1;
const KIND = 'eyecase-checkpoint';

export interface Checkpoint {
  hp: Hyperparameters;
  fingerprint: string;
  state: TrainingProgress;
  /** All weights of the network (trainable and batch-norm statistics), in model order. */
  weights: Float32Array[];
  /** Adam state of the trainable weights. */
  opt: OptState;
  /** The weights of the best epoch so far. */
  best: Float32Array[];
}

/** The network's layout, stored with the arrays so that they can be cut apart again. */
export type WeightLayout = Pick<ReplicaInfo, 'weightShapes' | 'trainable'>;

/** Header, then payload: weights, Adam m, Adam v, best weights, as float32 end to end. */
export function encodeCheckpoint(c: Checkpoint, layout: WeightLayout): Uint8Array {
  const payload = packFloat32([...c.weights, ...c.opt.m, ...c.opt.v, ...c.best]);
  return encodeContainer({
    kind: KIND, formatVersion: CHECKPOINT_FORMAT_VERSION, hyperparameters: c.hp, dataFingerprint: c.fingerprint,
    state: c.state, optT: c.opt.t, weightShapes: layout.weightShapes, trainable: layout.trainable,
  }, payload);
}

export function decodeCheckpoint(bytes: Uint8Array): Checkpoint & { layout: WeightLayout } {
  const { header, payload } = decodeContainer(bytes, KIND);
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
    hp: header.hyperparameters as Hyperparameters, fingerprint: header.dataFingerprint as string, state: header.state as TrainingProgress,
    weights: arrays.slice(0, nW), opt: { t: header.optT as number, m: arrays.slice(nW, nW + nT), v: arrays.slice(nW + nT, nW + 2 * nT) },
    best: arrays.slice(nW + 2 * nT), layout: { weightShapes: shapes, trainable },
  };
}

/** Hyper-parameters a run cannot change when it resumes (they shape the network, the split or the steps). */
const FIXED_ON_RESUME = ['architecture', 'inputSize', 'validationSplit', 'seed', 'batchSize'] as const;

/** The checkpoint, if a run with these hyper-parameters may continue it; TrainingInputError if not. */
export function resumableCheckpoint(bytes: Uint8Array, hp: Hyperparameters): Checkpoint {
  const checkpoint = decodeCheckpoint(bytes);
  const diffs = FIXED_ON_RESUME.filter((k) => checkpoint.hp[k] !== hp[k]);
  if (diffs.length) throw new TrainingInputError([`the checkpoint was made with different ${diffs.join(', ')}; resume with the same values`]);
  return checkpoint;
}
