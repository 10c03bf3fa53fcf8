// A model card: what a model version is, how it was validated, and the limits a reader of its
// decisions must keep in mind. Built from the registry row alone (case reports and exports carry
// it beside every machine decision).
import type { ModelVersion } from '../../generated/prisma/client.js';
import type { EvaluationMetrics } from '../../ml/index.js';

export interface ModelCard {
  modelVersionId: string;
  name: string;
  version: number;
  artifactSha256: string;
  architecture: string;
  inputSize: number;
  preprocessingVersion: string;
  validatedOn: string;
  validatedImages: number | null;
  accuracy: number | null;
  recallFemale: number | null;
  recallMale: number | null;
  /** |recall(FEMALE) - recall(MALE)|: how unequally the two classes are recognised. */
  recallGap: number | null;
  calibrationError: number | null;
  inconclusiveRate: number | null;
  decidedAccuracy: number | null;
  thresholdFemale: number;
  thresholdMale: number;
  inconclusiveMeaning: string;
  intendedUse: string;
  caveats: string[];
}

const pct = (x: number | null | undefined) => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : 'not measured');

export function modelCardOf(mv: ModelVersion): ModelCard {
  const evaluation = (mv.evaluation ?? {}) as {
    metrics?: Partial<EvaluationMetrics>; metricsSplit?: string; dataCounts?: { FEMALE?: number; MALE?: number };
    guard?: { validationEyesRefused?: number; syntheticNonEyesRefused?: number } | null;
  };
  const m = evaluation.metrics ?? {};
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const recallGap = num(m.recallFemale) !== null && num(m.recallMale) !== null ? Math.abs(m.recallFemale! - m.recallMale!) : null;
  const caveats = [
    'A machine decision is a lead for an investigator, not a finding: a person must review it before it is relied on.',
    `Validated on ${evaluation.metricsSplit ?? 'an unrecorded split'}; accuracy on other cameras, lighting, resolutions, ages or populations than the training data has not been measured.`,
    `Female recall ${pct(m.recallFemale)}, male recall ${pct(m.recallMale)} (gap ${pct(recallGap)}): errors are not equally likely for both classes.`,
    `Expected calibration error ${typeof m.ece === 'number' ? m.ece.toFixed(3) : 'not measured'}: the stated probabilities can be off by about this much on average.`,
    evaluation.guard
      ? `Trained on eye-region crops only. An out-of-distribution guard answers NOT_AN_EYE (no sex) for images unlike them: it refused ${pct(evaluation.guard.validationEyesRefused)} of validation eyes ` +
        `and ${pct(evaluation.guard.syntheticNonEyesRefused)} of unseen synthetic non-eyes, but it was fitted on synthetic images only, so an accepted image is not proven to be an eye.`
      : 'Trained on eye-region crops only: any other kind of image gives a meaningless output (this version has no out-of-distribution guard).',
    'The output is the sex class of the training labels (FEMALE/MALE), not gender identity.',
  ];
  if (!evaluation.metrics) caveats.unshift('This version has no recorded evaluation: its accuracy is unknown.');
  return {
    modelVersionId: mv.id,
    name: mv.name,
    version: mv.version,
    artifactSha256: mv.artifactSha256,
    architecture: mv.architecture,
    inputSize: mv.inputSize,
    preprocessingVersion: mv.preprocessingVersion,
    validatedOn: evaluation.metricsSplit ?? 'not recorded',
    validatedImages: num(m.n),
    accuracy: num(m.accuracy),
    recallFemale: num(m.recallFemale),
    recallMale: num(m.recallMale),
    recallGap,
    calibrationError: num(m.ece),
    inconclusiveRate: num(m.inconclusiveRate),
    decidedAccuracy: num(m.decidedAccuracy),
    thresholdFemale: mv.thresholdFemale,
    thresholdMale: mv.thresholdMale,
    inconclusiveMeaning:
      `INCONCLUSIVE: the calibrated P(male) fell between ${mv.thresholdFemale.toFixed(3)} and ${mv.thresholdMale.toFixed(3)}, where the model is not accurate enough to decide; ` +
      `it is not a third class and says nothing either way (${pct(m.inconclusiveRate)} of validation images fell there). Accuracy on the images it did decide: ${pct(m.decidedAccuracy)}.`,
    intendedUse: 'Ranking leads in investigations where only an eye-region photo of a person exists; never as sole evidence of identity or sex.',
    caveats,
  };
}
