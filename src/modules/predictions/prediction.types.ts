import { Field, Float, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Decision } from '../../generated/prisma/enums.js';
import { PageInfo } from '../../graphql/connection.js';
import { AuditEvent } from '../audit/audit.types.js';
import { Case } from '../cases/case.types.js';
import { Evidence } from '../evidence/evidence.types.js';

registerEnumType(Decision, { name: 'Decision', description: 'INCONCLUSIVE when P(male) falls between the two thresholds of the model' });

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
  @Field(() => String, { description: 'TensorFlow.js backend that computed it' }) backend!: string;
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

@ObjectType({ description: 'A case with all its evidence, every prediction and the audit trail, for printing' })
export class CaseReport {
  @Field(() => Case) case!: Case;
  @Field(() => [Evidence]) evidence!: Evidence[];
  @Field(() => [Prediction]) predictions!: Prediction[];
  @Field(() => [AuditEvent]) auditEvents!: AuditEvent[];
  @Field(() => Date) generatedAt!: Date;
}
