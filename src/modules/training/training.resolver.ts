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
import { CHANNELS } from '../../events/event-bus.js';
import { AppError } from '../../errors.js';
import { FINAL_STATUSES } from './training.service.js';
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
      return watchRun(ctx, await ctx.services.training.get((args as { id: string }).id));
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
    if (run.status !== 'RUNNING') return run.status === 'QUEUED' ? null : 0;
    const epochs = await ctx.loaders.epochsByTrainingRun.load(run.id);
    const planned = (run.hyperparameters as { epochs?: number }).epochs ?? 0;
    if (!epochs.length || !planned) return null;
    const mean = epochs.reduce((s, e) => s + e.durationMs, 0) / epochs.length / 1000;
    return Math.max(0, Math.round(mean * planned * (1 - run.progress)));
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => TrainingRunState, { description: 'status, with STALLED for a RUNNING run whose heartbeat is late' })
  state(@Root() run: TrainingRun, @Ctx() ctx: GraphQLContext): TrainingRunState {
    const late = run.status === 'RUNNING' && (!run.heartbeatAt || Date.now() - run.heartbeatAt.getTime() > ctx.services.config.worker.stalledAfterMs);
    return late ? TrainingRunState.STALLED : (run.status as TrainingRunState);
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

/** How often a watched run is re-read even without an event (events are best effort). */
const WATCH_POLL_MS = 5000;

/**
 * Yields the run now and after every change announced for it (or at least every few seconds),
 * until it reaches a final status. Errors after the start are logged and reported as internal.
 */
async function* watchRun(ctx: GraphQLContext, first: TrainingRunRow): AsyncGenerator<TrainingRunRow> {
  const controller = new AbortController();
  const changes = ctx.services.events.iterate(CHANNELS.trainingRun, controller.signal);
  const nextChange = async (): Promise<void> => {
    for (;;) {
      const { value, done } = await changes.next();
      if (done || value[0].runId === first.id) return;
    }
  };
  try {
    let run = first;
    yield run;
    let pending: Promise<'event'> | undefined;
    while (!FINAL_STATUSES.includes(run.status)) {
      // One outstanding read of the event stream at a time; it may outlive a round won by the timer.
      pending ??= nextChange().then(() => 'event' as const);
      pending.catch(() => undefined); // aborted at the end: not an error
      let timer: NodeJS.Timeout | undefined;
      const winner = await Promise.race([pending, new Promise<'timer'>((resolve) => (timer = setTimeout(() => resolve('timer'), WATCH_POLL_MS)))]);
      clearTimeout(timer);
      if (winner === 'event') pending = undefined;
      const latest = await ctx.services.training.get(first.id);
      if (latest.status === run.status && latest.progress === run.progress && latest.heartbeatAt?.getTime() === run.heartbeatAt?.getTime()) continue;
      run = latest;
      ctx.loaders.epochsByTrainingRun.clear(run.id); // each update is a fresh read
      yield run;
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    ctx.logger.error('training run subscription failed', { error: err, runId: first.id });
    throw new AppError('INTERNAL_SERVER_ERROR', 'Internal server error');
  } finally {
    controller.abort();
  }
}
