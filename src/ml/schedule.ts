/**
 * The training schedule: how many batches an epoch has, the one-cycle learning rate of each step,
 * and the record of epochs that picks the best one and decides early stopping.
 */

/** The figures of one finished epoch. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  /** On the person-aware validation split, with the logits as the bundle serves them (flip-averaged, before temperature). */
  valLoss: number;
  valAccuracy: number;
  durationMs: number;
  learningRate: number;
  isBest: boolean;
}

/** Where training stands after `epochsDone` epochs (kept in checkpoints, so resuming continues it). */
export interface TrainingProgress {
  epochsDone: number;
  history: EpochRecord[];
  bestEpoch: number;
  bestValLoss: number;
  sinceBest: number;
}

export function initialProgress(): TrainingProgress {
  return { epochsDone: 0, history: [], bestEpoch: 0, bestValLoss: Number.POSITIVE_INFINITY, sinceBest: 0 };
}

/** A validation loss counts as better than the best so far only when lower by more than this (noise). */
const MIN_IMPROVEMENT = 1e-5;

export function isImprovement(progress: TrainingProgress, valLoss: number): boolean {
  return valLoss < progress.bestValLoss - MIN_IMPROVEMENT;
}

/** Adds a finished epoch (its isBest from isImprovement) to the progress. */
export function recordEpoch(progress: TrainingProgress, row: EpochRecord): void {
  if (row.isBest) {
    progress.bestValLoss = row.valLoss;
    progress.bestEpoch = row.epoch;
    progress.sinceBest = 0;
  } else progress.sinceBest++;
  progress.epochsDone = row.epoch;
  progress.history.push(row);
}

/** True when `patience` epochs (0 = never stop early) have passed without a better validation loss. */
export function shouldStopEarly(progress: TrainingProgress, patience: number): boolean {
  return patience > 0 && progress.sinceBest >= patience;
}

export interface EpochPlan { batchesPerEpoch: number; totalSteps: number }

/**
 * Batches per epoch: full batches, plus the remainder as a last batch when it is big enough to give
 * every replica two images and to be at least a quarter batch (smaller ones are dropped: noisy steps).
 */
export function epochPlan(trainCount: number, batchSize: number, epochs: number, replicas: number): EpochPlan {
  const minBatch = Math.max(2 * replicas, Math.floor(batchSize / 4));
  const batchesPerEpoch = Math.floor(trainCount / batchSize) + (trainCount % batchSize >= minBatch ? 1 : 0) || 1;
  return { batchesPerEpoch, totalSteps: epochs * batchesPerEpoch };
}

/** One-cycle: linear warm-up over 15% of the steps from lr/10, then cosine down to lr/200. */
export function oneCycleLr(step: number, totalSteps: number, maxLr: number): number {
  const warm = Math.max(1, Math.round(totalSteps * 0.15));
  if (step < warm) return maxLr / 10 + ((maxLr - maxLr / 10) * step) / warm;
  const minLr = maxLr / 200;
  const p = Math.min(1, (step - warm) / Math.max(1, totalSteps - warm));
  return minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos(Math.PI * p));
}
