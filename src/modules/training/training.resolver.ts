import { RateLimit } from '../../graphql/rate-limits.js';
import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { TrainingRun as TrainingRunRow } from '../../generated/prisma/client.js';
import { TrainingStatus } from '../../generated/prisma/enums.js';
import { toConnection } from '../../graphql/connection.js';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { ApiKey } from '../auth/api-key.types.js';
import { ADMIN_ONLY, ADMIN_READERS } from '../auth/roles.js';
import { DatasetVersion } from '../datasets/dataset.types.js';
import { ModelVersion } from '../registry/registry.types.js';
import { etaSeconds, isStalled, watchRun } from './training-progress.js';
import { HyperparametersInput, TrainingEpoch, TrainingRun, TrainingRunConnection, TrainingRunState } from './training.types.js';

@Resolver(() => TrainingRun)
export class TrainingResolver {
  @Authorized(ADMIN_READERS)
  @Query(() => TrainingRunConnection, { description: 'Training runs, newest first' })
  async trainingRuns(
    @Ctx() ctx: GraphQLContext,
    @Arg('status', () => TrainingStatus, { nullable: true }) status?: TrainingStatus,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.training.list({ status }, { first, after }));
  }

  @Authorized(ADMIN_READERS)
  @Query(() => TrainingRun)
  trainingRun(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.training.get(id);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => TrainingRun, { description: 'Queues a training run on a frozen dataset version' })
  @RateLimit('training')
  startTrainingRun(
    @Arg('datasetVersionId', () => ID) datasetVersionId: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('hyperparameters', () => HyperparametersInput, { nullable: true }) hyperparameters?: HyperparametersInput,
  ) {
    return ctx.services.training.start(principalOf(ctx), datasetVersionId, hyperparameters ? { ...hyperparameters } : null);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => TrainingRun, { description: 'Cancels a queued run at once, a running one within one batch' })
  cancelTrainingRun(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.training.cancel(principalOf(ctx), id);
  }

  @Authorized(ADMIN_READERS)
  @Subscription(() => TrainingRun, {
    description: 'The run now, then again after every change (status, progress, each epoch); ends when it finishes',
    // The first read happens here, before streaming starts, so NOT_FOUND and malformed ids come
    // back as ordinary GraphQL errors with their codes.
    subscribe: async ({ args, context }) => {
      const ctx = context as GraphQLContext;
      const first = await ctx.services.training.get((args as { id: string }).id);
      // Each update is a fresh read of the run's epochs too.
      return watchRun({ training: ctx.services.training, events: ctx.services.events, logger: ctx.logger }, first, (run) => ctx.loaders.epochsByTrainingRun.clear(run.id));
    },
  })
  trainingRunUpdated(@Root() run: TrainingRunRow, @Arg('id', () => ID) _id: string): TrainingRunRow {
    return run;
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => [TrainingEpoch], { description: 'Per-epoch metrics, in order' })
  epochs(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.epochsByTrainingRun.load(run.id);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => Int, { nullable: true, description: 'Estimated seconds left, from the mean epoch duration so far' })
  async etaSeconds(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext): Promise<number | null> {
    // Only a running run's estimate needs its epochs.
    return etaSeconds(run, run.status === 'RUNNING' ? await ctx.loaders.epochsByTrainingRun.load(run.id) : []);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => TrainingRunState, { description: 'status, with STALLED for a RUNNING run whose heartbeat is late' })
  state(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext): TrainingRunState {
    return isStalled(run, ctx.services.config.worker.stalledAfterMs) ? TrainingRunState.STALLED : (run.status as TrainingRunState);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => DatasetVersion)
  datasetVersion(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.datasetVersion.load(run.datasetVersionId);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ModelVersion, { nullable: true, description: 'The CANDIDATE registered when the run succeeded' })
  modelVersion(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext) {
    return ctx.services.registry.forTrainingRun(run.id);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey)
  createdBy(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(run.createdById);
  }
}
