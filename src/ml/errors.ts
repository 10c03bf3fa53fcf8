/** Error classes callers can recognise (instanceof or the `code` field). */
export class MlError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Training was cancelled through the AbortSignal (between batches). */
export class TrainingCancelledError extends MlError {
  /** The last completed epoch's checkpoint, if any epoch completed (resume from it). */
  readonly lastCheckpoint?: Uint8Array;
  readonly completedEpochs: number;
  constructor(completedEpochs: number, lastCheckpoint?: Uint8Array) {
    super('TRAINING_CANCELLED', `training was cancelled after ${completedEpochs} completed epoch(s)`);
    this.completedEpochs = completedEpochs;
    this.lastCheckpoint = lastCheckpoint;
  }
}

/** The bytes are not a bundle/checkpoint, are damaged, or have another format version. */
export class BundleFormatError extends MlError {
  constructor(message: string) { super('BUNDLE_FORMAT', message); }
}

/** Bad hyper-parameters or a data set that cannot be trained on. */
export class TrainingInputError extends MlError {
  readonly errors: string[];
  constructor(errors: string[]) {
    super('TRAINING_INPUT', errors.join('; '));
    this.errors = errors;
  }
}

/** An image that could not be decoded. */
export class ImageDecodeError extends MlError {
  constructor(message: string) { super('IMAGE_DECODE', message); }
}

/** Inference could not run just now (its worker thread died); the same request may be retried. */
export class InferenceUnavailableError extends MlError {
  constructor(message: string) { super('INFERENCE_UNAVAILABLE', message); }
}
