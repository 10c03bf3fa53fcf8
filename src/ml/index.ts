/** Public API of the classifier engine (no GraphQL here). */
export { initBackend, type BackendInfo } from './backend.js';
export {
  ARCHITECTURES, DEFAULT_HYPERPARAMETERS, HYPERPARAMETER_RANGES, MIN_IMAGES_PER_CLASS, validateHyperparameters,
  type Architecture, type Hyperparameters, type ValidationResult,
} from './hyperparameters.js';
export { ARCHITECTURE_DESCRIPTIONS } from './architectures.js';
export { trainClassifier, trainInWorkerThread, type TrainOptions, type TrainResult, type EpochReport, type ProgressReport } from './trainer.js';
export { refitServing } from './finalise.js';
export { defaultWorkerCount } from './replica-client.js';
export { TRAINING_RUNTIMES, trainingBackend, trainingRuntimeChoice, type TrainingRuntime } from './training-runtime.js';
export { oneCycleLr } from './schedule.js';
export { loadClassifier, type Classifier, type ClassifierOptions, type DecodedInput, type PredictionResult, type PixelScores } from './inference.js';
export { readBundleMeta, decodeBundle, BUNDLE_FORMAT_VERSION, READABLE_BUNDLE_FORMATS, BUNDLE_FILE_EXTENSION, type BundleMeta } from './bundle.js';
export {
  CLASS_ORDER, PREPROCESSING_VERSION, decodeImage, decodeImageOffThread, setWasmJpegDecoding, decodeImageWithSharp, readLabelledFolder, decodeItems, groupSplit, groupKeyOf, canonicalOrder, numberedRunGroups, dataFingerprint,
  type Label, type LabelledItem, type SkippedItem, type ImageSet,
} from './data.js';
export { trainingSplit, validationSelection, type SplitItem, type SplitParameters } from './split.js';
export {
  evaluate, calibrate, chooseThresholds, decide, rocAuc, expectedCalibrationError, wilsonInterval, groupBootstrap, metricIntervals,
  type EvaluationMetrics, type Thresholds, type Calibration, type Decision, type MetricIntervals,
} from './evaluation.js';
export { GUARD_METHOD, type GuardParams, type GuardSummary } from './guard.js';
export { generateNegatives, NEGATIVE_KINDS, type NegativeKind } from './negatives.js';
export { MlError, TrainingCancelledError, BundleFormatError, TrainingInputError, ImageDecodeError, InferenceUnavailableError } from './errors.js';
export { datasetDir } from './paths.js';
