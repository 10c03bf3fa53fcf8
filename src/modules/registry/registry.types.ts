import { GraphQLJSON } from 'graphql-scalars';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ModelStage, PromotionStatus, StageChangeKind } from '../../generated/prisma/enums.js';
import { PageInfo } from '../../graphql/connection.js';

registerEnumType(StageChangeKind, { name: 'StageChangeKind', description: 'REGISTER, PROMOTE, REPLACE (replaced by a promotion), ROLLBACK (withdrawn), RESTORE (brought back by a rollback), ARCHIVE' });
registerEnumType(ModelStage, { name: 'ModelStage', description: 'CANDIDATE: trained, not serving; PRODUCTION: serving (at most one); ARCHIVED: retired' });

@ObjectType({ description: 'Evaluation of a model version on its validation split' })
export class ModelMetrics {
  @Field(() => Int) n!: number;
  @Field(() => Float) accuracy!: number;
  @Field(() => Float) recallFemale!: number;
  @Field(() => Float) recallMale!: number;
  @Field(() => Float) precisionFemale!: number;
  @Field(() => Float) precisionMale!: number;
  @Field(() => Float, { description: 'ROC AUC' }) auc!: number;
  @Field(() => Float, { description: 'Expected calibration error after temperature scaling' }) ece!: number;
  @Field(() => Float, { description: 'Share of validation images left INCONCLUSIVE by the thresholds' }) inconclusiveRate!: number;
  @Field(() => String, { nullable: true, description: 'Which images these figures come from, and how the thresholds were fitted' }) split!: string | null;
  @Field(() => Float, { nullable: true, description: 'Accuracy over the decided (FEMALE or MALE) images; null when none was decided' }) decidedAccuracy!: number | null;
  @Field(() => Float, { nullable: true, description: 'Share of validation images the out-of-distribution guard refused as NOT_AN_EYE' }) notAnEyeRate!: number | null;
  @Field(() => Float, { nullable: true, description: "Share of validation eyes the out-of-distribution guard refused (NOT_AN_EYE); null for models without a guard" }) guardRefusalRate!: number | null;
  @Field(() => [[Int]], { description: 'Rows: true FEMALE, MALE; columns: predicted FEMALE, MALE (at P = 0.5)' }) confusionMatrix!: number[][];
}

@ObjectType({ description: "A model version's out-of-distribution guard: how it decides NOT_AN_EYE and how often it did when fitted" })
export class ModelGuard {
  @Field(() => String) method!: string;
  @Field(() => Float, { description: 'NOT_AN_EYE when the guard score is below this' }) threshold!: number;
  @Field(() => Float, { nullable: true, description: 'Share of person-aware validation eyes refused (cross-fitted)' }) validationEyesRefused!: number | null;
  @Field(() => Float, { nullable: true, description: 'Share of unseen synthetic non-eye images refused' }) syntheticNonEyesRefused!: number | null;
}

@ObjectType({ description: 'One stage change of a model version: from, to, who, when, why' })
export class ModelStageChange {
  @Field(() => ID) id!: string;
  @Field(() => ModelStage, { nullable: true }) fromStage!: ModelStage | null;
  @Field(() => ModelStage) toStage!: ModelStage;
  @Field(() => StageChangeKind) kind!: StageChangeKind;
  @Field(() => String) reason!: string;
  @Field(() => Date) createdAt!: Date;
  changedById!: string | null;
}

@ObjectType()
export class ModelVersion {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => Int) version!: number;
  @Field(() => ModelStage) stage!: ModelStage;
  @Field(() => String) architecture!: string;
  @Field(() => Int) inputSize!: number;
  @Field(() => String) preprocessingVersion!: string;
  @Field(() => String, { nullable: true, description: 'What trained it: onnxruntime, or the TensorFlow.js backend (tensorflow-gpu, tensorflow, wasm, cpu)' }) backend!: string | null;
  @Field(() => String, { nullable: true }) device!: string | null;
  @Field(() => String, { description: 'SHA-256 of the model bundle' }) artifactSha256!: string;
  @Field(() => Float, { description: 'FEMALE when P(male) <= this' }) thresholdFemale!: number;
  @Field(() => Float, { description: 'MALE when P(male) >= this; INCONCLUSIVE in between' }) thresholdMale!: number;
  @Field(() => GraphQLJSON, { nullable: true, description: 'Full evaluation: metrics, calibration, thresholds, data counts, hyperparameters' }) evaluation!: unknown;
  @Field(() => Date) createdAt!: Date;
  trainingRunId!: string | null;
  artifactKey!: string;
}

@ObjectType()
export class ModelVersionConnection {
  @Field(() => [ModelVersion]) nodes!: ModelVersion[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType()
export class MetricComparison {
  @Field(() => String) name!: string;
  @Field(() => Float, { nullable: true }) a!: number | null;
  @Field(() => Float, { nullable: true }) b!: number | null;
  @Field(() => Float, { nullable: true, description: 'b - a' }) difference!: number | null;
}

@ObjectType({ description: 'Two versions side by side, and how often they agree on the same validation images' })
export class ModelComparison {
  @Field(() => ModelVersion) a!: ModelVersion;
  @Field(() => ModelVersion) b!: ModelVersion;
  @Field(() => [MetricComparison], { description: 'Each version as evaluated on its own validation split' }) metrics!: MetricComparison[];
  @Field(() => String, { description: 'The images both were run on for the figures below' }) comparedOn!: string;
  @Field(() => Int) n!: number;
  @Field(() => Float, { description: 'Share of images where both give the same decision (FEMALE, MALE, INCONCLUSIVE or NOT_AN_EYE)' }) decisionAgreement!: number;
  @Field(() => Float, { description: 'Share of images where both pick the same more likely class' }) labelAgreement!: number;
  @Field(() => Float) accuracyA!: number;
  @Field(() => Float) accuracyB!: number;
}

@ObjectType({ description: 'What a model version is, how it was validated, and the limits of its decisions' })
export class ModelCard {
  @Field(() => ID) modelVersionId!: string;
  @Field(() => String) name!: string;
  @Field(() => Int) version!: number;
  @Field(() => String) artifactSha256!: string;
  @Field(() => String) architecture!: string;
  @Field(() => Int) inputSize!: number;
  @Field(() => String) preprocessingVersion!: string;
  @Field(() => String, { description: 'The images the figures below were measured on' }) validatedOn!: string;
  @Field(() => Int, { nullable: true }) validatedImages!: number | null;
  @Field(() => Float, { nullable: true, description: 'Validated accuracy (at P = 0.5)' }) accuracy!: number | null;
  @Field(() => Float, { nullable: true }) recallFemale!: number | null;
  @Field(() => Float, { nullable: true }) recallMale!: number | null;
  @Field(() => Float, { nullable: true, description: '|recallFemale - recallMale|' }) recallGap!: number | null;
  @Field(() => Float, { nullable: true, description: 'Expected calibration error' }) calibrationError!: number | null;
  @Field(() => Float, { nullable: true }) inconclusiveRate!: number | null;
  @Field(() => Float, { nullable: true, description: 'Accuracy over the images it decided (not INCONCLUSIVE)' }) decidedAccuracy!: number | null;
  @Field(() => Float) thresholdFemale!: number;
  @Field(() => Float) thresholdMale!: number;
  @Field(() => String, { description: 'What an INCONCLUSIVE decision means for this version' }) inconclusiveMeaning!: string;
  @Field(() => String) intendedUse!: string;
  @Field(() => [String]) caveats!: string[];
}

registerEnumType(PromotionStatus, { name: 'PromotionStatus', description: 'PENDING until a second admin approves or rejects it' });

@ObjectType({ description: 'How much worse than production a candidate may be before an approval needs an override' })
export class GateTolerance {
  @Field(() => Float, { description: 'Largest accepted drop in accuracy' }) accuracy!: number;
  @Field(() => Float, { description: 'Largest accepted rise in expected calibration error' }) calibrationError!: number;
  @Field(() => Float, { description: 'Largest accepted rise in |recallFemale - recallMale|' }) recallGap!: number;
}

@ObjectType({ description: 'One version scored on the shared validation images' })
export class GateMetrics {
  @Field(() => Float) accuracy!: number;
  @Field(() => Float) recallFemale!: number;
  @Field(() => Float) recallMale!: number;
  @Field(() => Float) recallGap!: number;
  @Field(() => Float) calibrationError!: number;
}

@ObjectType({ description: 'The candidate against production on the same validation images, as stored with the approval' })
export class PromotionComparison {
  @Field(() => ID, { nullable: true, description: 'Null when no version was in production' }) productionVersionId!: string | null;
  @Field(() => Int, { nullable: true }) productionVersion!: number | null;
  @Field(() => String) comparedOn!: string;
  @Field(() => Int) n!: number;
  @Field(() => GateTolerance) tolerance!: GateTolerance;
  @Field(() => GateMetrics, { nullable: true }) candidate!: GateMetrics | null;
  @Field(() => GateMetrics, { nullable: true }) production!: GateMetrics | null;
  @Field(() => Boolean) passed!: boolean;
  @Field(() => [String], { description: 'Every figure worse beyond its tolerance' }) failures!: string[];
}

@ObjectType({ description: 'A promotion asked for by one admin and decided by another' })
export class PromotionRequest {
  @Field(() => ID) id!: string;
  @Field(() => ID) modelVersionId!: string;
  @Field(() => PromotionStatus) status!: PromotionStatus;
  @Field(() => String, { description: "The requester's reason" }) reason!: string;
  @Field(() => Date) createdAt!: Date;
  @Field(() => String, { nullable: true, description: "The deciding admin's reason" }) decisionReason!: string | null;
  @Field(() => String, { nullable: true, description: 'Why the approver promoted a candidate the metric gate refused' }) overrideReason!: string | null;
  @Field(() => Date, { nullable: true }) decidedAt!: Date | null;
  @Field(() => PromotionComparison, { nullable: true, description: 'Stored with the approval' }) comparison!: PromotionComparison | null;
  requestedById!: string;
  decidedById!: string | null;
}

@ObjectType()
export class PromotionRequestConnection {
  @Field(() => [PromotionRequest]) nodes!: PromotionRequest[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}
