// Fast tests of the training loop's bookkeeping without a network: batches per epoch, best epoch
// and early stopping, and the checkpoint format (what a resumed run reads back).
import { CHECKPOINT_FORMAT_VERSION, decodeCheckpoint, encodeCheckpoint, resumableCheckpoint, type Checkpoint } from '../../src/ml/checkpoint.js';
import { encodeContainer } from '../../src/ml/container.js';
import { BundleFormatError, TrainingInputError } from '../../src/ml/errors.js';
import type { Hyperparameters } from '../../src/ml/hyperparameters.js';
import { epochPlan, initialProgress, isImprovement, recordEpoch, shouldStopEarly, type EpochRecord } from '../../src/ml/schedule.js';

describe('epoch plan', () => {
  it('keeps a last partial batch only when it gives every replica two images and is at least a quarter batch', () => {
    expect(epochPlan(128, 32, 5, 1)).toEqual({ batchesPerEpoch: 4, totalSteps: 20 });
    expect(epochPlan(128 + 8, 32, 5, 1).batchesPerEpoch).toBe(5); // 8 = a quarter of 32
    expect(epochPlan(128 + 7, 32, 5, 1).batchesPerEpoch).toBe(4);
    expect(epochPlan(64 + 3, 8, 1, 2).batchesPerEpoch).toBe(8); // 3 < 2 images for each of 2 replicas
    expect(epochPlan(64 + 4, 8, 1, 2).batchesPerEpoch).toBe(9);
  });
  it('always has at least one batch', () => {
    expect(epochPlan(5, 64, 3, 1)).toEqual({ batchesPerEpoch: 1, totalSteps: 3 });
  });
});

describe('best epoch and early stopping', () => {
  const epoch = (n: number, valLoss: number, progress: ReturnType<typeof initialProgress>): EpochRecord => ({
    epoch: n, loss: 1, accuracy: 0.5, valLoss, valAccuracy: 0.5, durationMs: 1, learningRate: 0.001, isBest: isImprovement(progress, valLoss),
  });
  it('keeps the epoch with the lowest validation loss; ties and gains below 1e-5 do not count', () => {
    const progress = initialProgress();
    for (const [n, loss] of [[1, 0.7], [2, 0.6], [3, 0.6], [4, 0.599995], [5, 0.65]] as const) recordEpoch(progress, epoch(n, loss, progress));
    expect(progress.history.map((h) => h.isBest)).toEqual([true, true, false, false, false]);
    expect(progress).toMatchObject({ epochsDone: 5, bestEpoch: 2, bestValLoss: 0.6, sinceBest: 3 });
  });
  it('stops after `patience` epochs without improvement, never with patience 0', () => {
    const progress = initialProgress();
    recordEpoch(progress, epoch(1, 0.5, progress));
    recordEpoch(progress, epoch(2, 0.6, progress));
    expect(shouldStopEarly(progress, 2)).toBe(false);
    recordEpoch(progress, epoch(3, 0.6, progress));
    expect(shouldStopEarly(progress, 2)).toBe(true);
    expect(shouldStopEarly(progress, 0)).toBe(false);
    recordEpoch(progress, epoch(4, 0.4, progress));
    expect(shouldStopEarly(progress, 2)).toBe(false);
  });
});

describe('checkpoint format', () => {
  const hp: Hyperparameters = {
    architecture: 'compact', inputSize: 24, epochs: 4, batchSize: 16, learningRate: 0.004, validationSplit: 0.2, seed: 7,
    augmentation: true, earlyStoppingPatience: 0, weightDecay: 0.02, decisionAccuracy: 0.9,
  };
  // A conv kernel and bias (trainable) and a batch-norm moving mean (not trainable).
  const layout = { weightShapes: [[3, 3, 1, 2], [2], [2]], trainable: [true, true, false] };
  const floats = (n: number, from: number) => Float32Array.from({ length: n }, (_, i) => from + i / 8);
  const progress = initialProgress();
  recordEpoch(progress, { epoch: 1, loss: 0.7, accuracy: 0.5, valLoss: 0.69, valAccuracy: 0.55, durationMs: 12, learningRate: 0.0004, isBest: true });
  const checkpoint: Checkpoint = {
    hp, fingerprint: 'f'.repeat(64), state: progress,
    weights: [floats(18, 1), floats(2, 100), floats(2, 200)],
    opt: { t: 9, m: [floats(18, 300), floats(2, 400)], v: [floats(18, 500), floats(2, 600)] },
    best: [floats(18, -1), floats(2, -100), floats(2, -200)],
  };

  it('round-trips weights, Adam state, best weights, progress and layout exactly', () => {
    const back = decodeCheckpoint(encodeCheckpoint(checkpoint, layout));
    expect(back.hp).toEqual(hp);
    expect(back.fingerprint).toBe(checkpoint.fingerprint);
    expect(back.state).toEqual(progress);
    expect(back.opt.t).toBe(9);
    expect(back.layout).toEqual(layout);
    for (const key of ['weights', 'best'] as const) expect(back[key].map((a) => Array.from(a))).toEqual(checkpoint[key].map((a) => Array.from(a)));
    for (const key of ['m', 'v'] as const) expect(back.opt[key].map((a) => Array.from(a))).toEqual(checkpoint.opt[key].map((a) => Array.from(a)));
  });

  it('refuses another format version, other bytes and a damaged payload', () => {
    const bytes = encodeCheckpoint(checkpoint, layout);
    const later = encodeContainer({ kind: 'eyecase-checkpoint', formatVersion: CHECKPOINT_FORMAT_VERSION + 1 }, new Uint8Array(4));
    expect(() => decodeCheckpoint(later)).toThrow(BundleFormatError);
    expect(() => decodeCheckpoint(new TextEncoder().encode('not a checkpoint'))).toThrow(BundleFormatError);
    const damaged = Uint8Array.from(bytes);
    damaged[damaged.length - 3] ^= 0xff;
    expect(() => decodeCheckpoint(damaged)).toThrow(/checksum/);
  });

  it('lets a run resume only with the hyper-parameters that shape the network, split and steps unchanged', () => {
    const bytes = encodeCheckpoint(checkpoint, layout);
    expect(resumableCheckpoint(bytes, { ...hp, epochs: 10, learningRate: 0.001 }).state.epochsDone).toBe(1);
    expect(() => resumableCheckpoint(bytes, { ...hp, seed: 8, batchSize: 32 })).toThrow(TrainingInputError);
    expect(() => resumableCheckpoint(bytes, { ...hp, seed: 8, batchSize: 32 })).toThrow(/different seed, batchSize/);
  });
});
