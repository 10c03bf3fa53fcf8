import { TEXT_LIMITS, textLimit } from '../../graphql/text-limits.js';
import { MaxLength } from 'class-validator';
import { GraphQLJSON } from 'graphql-scalars';
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { TrainingStatus } from '../../generated/prisma/enums.js';
import { PageInfo } from '../../graphql/connection.js';

registerEnumType(TrainingStatus, { name: 'TrainingStatus' });

@InputType({ description: 'Training hyper-parameters; omitted fields take the engine defaults (see README)' })
export class HyperparametersInput {
  @Field(() => String, { nullable: true, description: textLimit('name', 'compact (default, for ~56 px eye crops) or xception (the study network, for GPUs)') }) @MaxLength(TEXT_LIMITS.name) architecture?: string;
  @Field(() => Int, { nullable: true }) inputSize?: number;
  @Field(() => Int, { nullable: true }) epochs?: number;
  @Field(() => Int, { nullable: true }) batchSize?: number;
  @Field(() => Float, { nullable: true }) learningRate?: number;
  @Field(() => Float, { nullable: true }) validationSplit?: number;
  @Field(() => Int, { nullable: true }) seed?: number;
  @Field(() => Boolean, { nullable: true }) augmentation?: boolean;
  @Field(() => Int, { nullable: true }) earlyStoppingPatience?: number;
  @Field(() => Float, { nullable: true }) weightDecay?: number;
  @Field(() => Float, { nullable: true, description: 'Accuracy that decisions outside the INCONCLUSIVE band must reach on validation' }) decisionAccuracy?: number;
}

@ObjectType()
export class TrainingEpoch {
  @Field(() => Int) epoch!: number;
  @Field(() => Float) loss!: number;
  @Field(() => Float) accuracy!: number;
  @Field(() => Float) valLoss!: number;
  @Field(() => Float) valAccuracy!: number;
  @Field(() => Int) durationMs!: number;
  @Field(() => String, { description: 'SHA-256 of the checkpoint stored after this epoch' }) checkpointSha256!: string;
  @Field(() => Int, { description: 'The attempt (see TrainingRun.attempts) that trained this epoch' }) attempt!: number;
  @Field(() => Date) createdAt!: Date;
}

@ObjectType()
export class TrainingRun {
  @Field(() => ID) id!: string;
  @Field(() => TrainingStatus) status!: TrainingStatus;
  @Field(() => ID) datasetVersionId!: string;
  @Field(() => GraphQLJSON, { description: 'The validated hyper-parameters, defaults filled in' }) hyperparameters!: unknown;
  @Field(() => String, { nullable: true, description: 'What trained it: onnxruntime, or the TensorFlow.js backend (tensorflow-gpu, tensorflow, wasm, cpu)' }) backend!: string | null;
  @Field(() => String, { nullable: true }) device!: string | null;
  @Field(() => String, { nullable: true, description: 'Why the run failed' }) error!: string | null;
  @Field(() => Float, { description: 'Share of the planned work done, 0 to 1' }) progress!: number;
  @Field(() => Int, { description: 'How many times a worker started it (more than 1 after a worker died)' }) attempts!: number;
  @Field(() => Boolean) cancelRequested!: boolean;
  @Field(() => Date) createdAt!: Date;
  @Field(() => Date, { nullable: true }) startedAt!: Date | null;
  @Field(() => Date, { nullable: true }) finishedAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'Last sign of life from the worker holding the run (database clock)' }) heartbeatAt!: Date | null;
  createdById!: string;
}

export enum TrainingRunState {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  STALLED = 'STALLED',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(TrainingRunState, {
  name: 'TrainingRunState',
  description: 'The status as an operator should read it',
  valuesConfig: {
    STALLED: { description: 'RUNNING, but the worker is late with its heartbeat (WORKER_STALLED_AFTER_MS): it may have died; the run is taken back after WORKER_STALE_AFTER_MS' },
  },
});

@ObjectType()
export class TrainingRunConnection {
  @Field(() => [TrainingRun]) nodes!: TrainingRun[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}
