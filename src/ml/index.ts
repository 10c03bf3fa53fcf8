/** Public API of the classifier engine (no GraphQL here). */
export { initBackend, type BackendInfo } from './backend.js';
export {
  ARCHITECTURES, DEFAULT_HYPERPARAMETERS, HYPERPARAMETER_RANGES, MIN_IMAGES_PER_CLASS, validateHyperparameters,
  type Architecture, type Hyperparameters, type ValidationResult,
} from './hyperparameters.js';
export { ARCHITECTURE_DESCRIPTIONS } from './architectures.js';
export {
  trainClassifier, trainInWorkerThread, defaultWorkerCount, oneCycleLr,
  type TrainOptions, type TrainResult, type EpochReport, type ProgressReport,
} from './trainer.js';
export { loadClassifier, type Classifier, type ClassifierOptions, type PredictionResult } from './inference.js';
export { readBundleMeta, decodeBundle, BUNDLE_FORMAT_VERSION, BUNDLE_FILE_EXTENSION, type BundleMeta } from './bundle.js';
export {
  CLASS_ORDER, PREPROCESSING_VERSION, decodeImage, readLabelledFolder, decodeItems, stratifiedSplit, dataFingerprint,
  type Label, type LabelledItem, type SkippedItem, type ImageSet,
} from './data.js';
export {
  evaluate, calibrate, chooseThresholds, decide, rocAuc, expectedCalibrationError,
  type EvaluationMetrics, type Thresholds, type Calibration, type Decision,
} from './evaluation.js';
export { MlError, TrainingCancelledError, BundleFormatError, TrainingInputError, ImageDecodeError, InferenceUnavailableError } from './errors.js';
export { datasetDir } from './paths.js';
