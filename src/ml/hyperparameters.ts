/** One definition of the training hyper-parameters, shared by the CLI and the GraphQL validation. */
import { ARCHITECTURES, type Architecture } from './architectures.js';

export { ARCHITECTURES, type Architecture };

export interface Hyperparameters {
  architecture: Architecture;
  /** Square input size in pixels (images are resized to inputSize x inputSize). */
  inputSize: number;
  epochs: number;
  /** Global batch size (split across data-parallel workers). */
  batchSize: number;
  /** Peak learning rate of the one-cycle schedule (Adam). */
  learningRate: number;
  /** Fraction of each class held out for validation (stratified, seeded). */
  validationSplit: number;
  seed: number;
  augmentation: boolean;
  /** Stop after this many epochs without a lower validation loss (0 = never stop early). */
  earlyStoppingPatience: number;
  /** Decoupled (AdamW-style) weight decay on convolution and dense kernels. */
  weightDecay: number;
  /** Accuracy that decisions outside the INCONCLUSIVE band must reach on validation. */
  decisionAccuracy: number;
}

export const DEFAULT_HYPERPARAMETERS: Readonly<Hyperparameters> = Object.freeze({
  architecture: 'compact',
  inputSize: 48,
  epochs: 30,
  batchSize: 64,
  learningRate: 0.004,
  validationSplit: 0.2,
  seed: 42,
  augmentation: true,
  earlyStoppingPatience: 10,
  weightDecay: 0.02,
  decisionAccuracy: 0.98,
});

/** Every dataset version must hold at least this many images of each class to be trainable. */
export const MIN_IMAGES_PER_CLASS = 20;

export const HYPERPARAMETER_RANGES = {
  inputSize: { min: 16, max: 512 },
  epochs: { min: 1, max: 500 },
  batchSize: { min: 2, max: 1024 },
  learningRate: { min: 1e-6, max: 1 },
  validationSplit: { min: 0.05, max: 0.5 },
  seed: { min: 0, max: 2 ** 31 - 1 },
  earlyStoppingPatience: { min: 0, max: 500 },
  weightDecay: { min: 0, max: 1 },
  decisionAccuracy: { min: 0.5, max: 0.9999 },
} as const;

export type ValidationResult = { ok: true; value: Hyperparameters } | { ok: false; errors: string[] };

const INTEGER_FIELDS = new Set(['inputSize', 'epochs', 'batchSize', 'seed', 'earlyStoppingPatience']);

/** Fill defaults and check names and ranges. Unknown keys are errors (typos should not pass silently). */
export function validateHyperparameters(partial: Partial<Record<keyof Hyperparameters, unknown>> | null | undefined): ValidationResult {
  const errors: string[] = [];
  const input = (partial ?? {}) as Record<string, unknown>;
  const value: Record<string, unknown> = { ...DEFAULT_HYPERPARAMETERS };
  for (const [key, raw] of Object.entries(input)) {
    if (raw === undefined || raw === null) continue;
    if (!(key in DEFAULT_HYPERPARAMETERS)) {
      errors.push(`unknown hyper-parameter '${key}' (known: ${Object.keys(DEFAULT_HYPERPARAMETERS).join(', ')})`);
      continue;
    }
    if (key === 'architecture') {
      if (typeof raw !== 'string' || !(ARCHITECTURES as readonly string[]).includes(raw)) {
        errors.push(`architecture must be one of ${ARCHITECTURES.join(', ')}; got '${String(raw)}'`);
      } else value.architecture = raw;
      continue;
    }
    if (key === 'augmentation') {
      if (typeof raw !== 'boolean') errors.push(`augmentation must be true or false; got '${String(raw)}'`);
      else value.augmentation = raw;
      continue;
    }
    const range = HYPERPARAMETER_RANGES[key as keyof typeof HYPERPARAMETER_RANGES];
    const n = typeof raw === 'number' ? raw : Number.NaN;
    if (!Number.isFinite(n)) {
      errors.push(`${key} must be a number; got '${String(raw)}'`);
      continue;
    }
    if (INTEGER_FIELDS.has(key) && !Number.isInteger(n)) {
      errors.push(`${key} must be a whole number; got ${n}`);
      continue;
    }
    if (n < range.min || n > range.max) {
      errors.push(`${key} must be between ${range.min} and ${range.max}; got ${n}`);
      continue;
    }
    value[key] = n;
  }
  if (value.architecture === 'xception' && (value.inputSize as number) < 32) errors.push('xception needs inputSize of at least 32');
  return errors.length ? { ok: false, errors } : { ok: true, value: value as unknown as Hyperparameters };
}
