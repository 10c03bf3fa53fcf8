import { Field, Float, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Decision, ReviewVerdict } from '../../generated/prisma/enums.js';
import { PageInfo } from '../../graphql/connection.js';
import { AuditEvent } from '../audit/audit.types.js';
import { Case } from '../cases/case.types.js';
import { Evidence } from '../evidence/evidence.types.js';
import { ModelCard } from '../registry/registry.types.js';

registerEnumType(ReviewVerdict, { name: 'ReviewVerdict', description: 'CONFIRMED: a person agrees with the decision; REJECTED: a person finds it wrong; NEEDS_EXPERT: a person cannot tell and asks an expert' });

export const ReviewState = { UNREVIEWED: 'UNREVIEWED', ...ReviewVerdict } as const;
export type ReviewState = (typeof ReviewState)[keyof typeof ReviewState];
registerEnumType(ReviewState, { name: 'ReviewState', description: "UNREVIEWED (a machine decision nobody has reviewed yet) or the latest review's verdict" });

registerEnumType(Decision, {
  name: 'Decision',
  description: "INCONCLUSIVE when P(male) falls between the two thresholds of the model; NOT_AN_EYE when the model's out-of-distribution guard finds the image unlike the eye crops it was trained on (then neither FEMALE nor MALE is given)",
});

@ObjectType({ description: 'One classification of one evidence image. Never changed or deleted.' })
export class Prediction {
  @Field(() => ID) id!: string;
  @Field(() => ID) caseId!: string;
  @Field(() => ID) evidenceId!: string;
  @Field(() => String, { description: 'SHA-256 of the image that was classified' }) imageSha256!: string;
  @Field(() => ID) modelVersionId!: string;
  @Field(() => String, { description: 'SHA-256 of the model bundle that computed it' }) artifactSha256!: string;
  @Field(() => Float, { description: 'Calibrated probability that the person is female' }) probFemale!: number;
  @Field(() => Float, { description: 'Calibrated probability that the person is male' }) probMale!: number;
  @Field(() => Decision) decision!: Decision;
  @Field(() => Float, { description: 'FEMALE when P(male) <= this' }) thresholdFemale!: number;
  @Field(() => Float, { description: 'MALE when P(male) >= this' }) thresholdMale!: number;
  @Field(() => Float, { nullable: true, description: "The out-of-distribution guard's score (higher = more like the training eye crops); null when the model has no guard" }) guardScore!: number | null;
  @Field(() => Float, { nullable: true, description: 'NOT_AN_EYE when guardScore is below this; null when the model has no guard' }) guardThreshold!: number | null;
  @Field(() => String, { description: 'Runtime that computed it: onnxruntime, or the TensorFlow.js backend (wasm, tensorflow, cpu)' }) backend!: string;
  @Field(() => String) preprocessingVersion!: string;
  @Field(() => Float, { description: 'Inference time (decode, queue, forward pass), milliseconds' }) latencyMs!: number;
  @Field(() => Date) createdAt!: Date;
  requestedById!: string;
}

@ObjectType()
export class PredictionConnection {
  @Field(() => [Prediction]) nodes!: Prediction[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType({ description: 'A heatmap of the parts of the eye image that drove the decision' })
export class PredictionExplanation {
  @Field(() => ID) predictionId!: string;
  @Field(() => String, { description: 'e.g. occlusion' }) method!: string;
  @Field(() => String) sha256!: string;
  @Field(() => Date) createdAt!: Date;
  objectKey!: string;
}

@ObjectType()
export class ClassifiedImage {
  @Field(() => Evidence) evidence!: Evidence;
  @Field(() => Prediction) prediction!: Prediction;
}

@ObjectType({ description: "A person's verdict on a prediction. Never changed: a later review supersedes it." })
export class PredictionReview {
  @Field(() => ID) id!: string;
  @Field(() => ID) predictionId!: string;
  @Field(() => ReviewVerdict) verdict!: ReviewVerdict;
  @Field(() => String) reason!: string;
  @Field(() => Date) createdAt!: Date;
  reviewerId!: string;
}

@ObjectType({ description: 'A prediction in a report: its review state and the limits of the model that made it' })
export class ReportedPrediction {
  @Field(() => Prediction) prediction!: Prediction;
  @Field(() => ReviewState) reviewState!: ReviewState;
  @Field(() => PredictionReview, { nullable: true, description: 'The latest review; null for an unreviewed machine decision' }) review!: PredictionReview | null;
  @Field(() => ModelCard, { description: 'Validated accuracy, what INCONCLUSIVE means and the caveats of the version that decided' }) modelCard!: ModelCard;
}

@ObjectType({ description: 'A case with all its evidence, every prediction and the audit trail, for printing' })
export class CaseReport {
  @Field(() => Case) case!: Case;
  @Field(() => [Evidence]) evidence!: Evidence[];
  @Field(() => [Prediction], { description: 'Every prediction, oldest first' }) predictions!: Prediction[];
  @Field(() => [ReportedPrediction], { description: 'Predictions a person has reviewed, with the latest verdict' }) reviewedPredictions!: ReportedPrediction[];
  @Field(() => [ReportedPrediction], { description: 'Machine decisions nobody has reviewed yet: leads, not findings' }) unreviewedMachineDecisions!: ReportedPrediction[];
  @Field(() => [ModelCard], { description: 'The model versions behind the predictions, with their measured limits' }) modelCards!: ModelCard[];
  @Field(() => [AuditEvent]) auditEvents!: AuditEvent[];
  @Field(() => Date) generatedAt!: Date;
}
