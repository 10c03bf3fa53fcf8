import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { toConnection } from '../../graphql/connection.js';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { ModelStage, PromotionStatus } from '../../generated/prisma/enums.js';
import { ApiKey } from '../auth/api-key.types.js';
import { ADMIN_ONLY, ADMIN_READERS, ANY_ROLE } from '../auth/roles.js';
import { DatasetVersion } from '../datasets/dataset.types.js';
import { TrainingRun } from '../training/training.types.js';
import { modelCardOf } from './model-card.js';
import { guardOf, metricsOf } from './registry.service.js';
import { ModelCard, ModelComparison, ModelGuard, ModelMetrics, ModelStageChange, ModelVersion, ModelVersionConnection, PromotionRequest, PromotionRequestConnection } from './registry.types.js';

@Resolver(() => ModelVersion)
export class RegistryResolver {
  @Authorized(ANY_ROLE)
  @Query(() => ModelVersionConnection, { description: 'Model versions, newest first' })
  async modelVersions(
    @Ctx() ctx: GraphQLContext,
    @Arg('stage', () => ModelStage, { nullable: true }) stage?: ModelStage,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.registry.list({ stage }, { first, after }));
  }

  @Authorized(ANY_ROLE)
  @Query(() => ModelVersion)
  modelVersion(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.registry.get(id);
  }

  @Authorized(ANY_ROLE)
  @Query(() => ModelVersion, { nullable: true, description: 'The version classifications use by default' })
  productionModel(@Ctx() ctx: GraphQLContext) {
    return ctx.services.registry.production();
  }

  @Authorized(ADMIN_READERS)
  @Query(() => ModelComparison)
  compareModelVersions(@Arg('a', () => ID) a: string, @Arg('b', () => ID) b: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.comparison.compare(a, b);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => PromotionRequest, { description: 'Asks for a CANDIDATE to become production; a different admin must approve it' })
  requestPromotion(@Arg('modelVersionId', () => ID) modelVersionId: string, @Arg('reason', () => String, { description: textLimit('reason') }) reason: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.promotions.request(principalOf(ctx), modelVersionId, reason);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => PromotionRequest, {
    description:
      'Approves another admin\'s request: compares the candidate with production on the same validation images, refuses one worse beyond the tolerance unless overrideReason is given, then promotes it (the previous production version is ARCHIVED)',
  })
  approvePromotion(
    @Arg('requestId', () => ID) requestId: string,
    @Arg('reason', () => String, { description: textLimit('reason') }) reason: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('overrideReason', () => String, { nullable: true, description: textLimit('reason', 'Required to promote a candidate the metric gate refuses') }) overrideReason?: string,
  ) {
    return ctx.services.promotions.approve(principalOf(ctx), requestId, reason, overrideReason);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => PromotionRequest, { description: "Rejects another admin's promotion request" })
  rejectPromotion(@Arg('requestId', () => ID) requestId: string, @Arg('reason', () => String, { description: textLimit('reason') }) reason: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.promotions.reject(principalOf(ctx), requestId, reason);
  }

  @Authorized(ADMIN_READERS)
  @Query(() => PromotionRequestConnection, { description: 'Promotion requests, newest first' })
  async promotionRequests(
    @Ctx() ctx: GraphQLContext,
    @Arg('status', () => PromotionStatus, { nullable: true }) status?: PromotionStatus,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.promotions.list({ status }, { first, after }));
  }

  @Authorized(ADMIN_READERS)
  @Query(() => PromotionRequest)
  promotionRequest(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.promotions.get(id);
  }

  @Authorized(ANY_ROLE)
  @FieldResolver(() => ModelCard, { description: 'What it is, how it was validated, and the limits of its decisions' })
  modelCard(@Root() mv: ModelVersion) {
    return modelCardOf(mv as Parameters<typeof modelCardOf>[0]);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => ModelVersion, { description: 'Returns production to the version that held it before the current one' })
  rollbackProduction(@Arg('reason', () => String, { description: textLimit('reason') }) reason: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.registry.rollback(principalOf(ctx), reason);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => ModelVersion)
  archiveModelVersion(@Arg('id', () => ID) id: string, @Arg('reason', () => String, { description: textLimit('reason') }) reason: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.registry.archive(principalOf(ctx), id, reason);
  }

  @Authorized(ANY_ROLE)
  @FieldResolver(() => ModelMetrics, { nullable: true })
  metrics(@Root() mv: ModelVersion) {
    return metricsOf(mv);
  }

  @Authorized(ANY_ROLE)
  @FieldResolver(() => ModelGuard, { nullable: true, description: 'The out-of-distribution guard; null for models without one (bundle format 1)' })
  guard(@Root() mv: ModelVersion) {
    return guardOf(mv);
  }

  @Authorized(ANY_ROLE)
  @FieldResolver(() => [ModelStageChange], { description: 'Every stage change, oldest first' })
  stageChanges(@Root() mv: ModelVersion, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.stageChangesByModelVersion.load(mv.id);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => TrainingRun, { nullable: true, description: 'Null for the bundled baseline (trained by the command line)' })
  trainingRun(@Root() mv: ModelVersion, @Ctx() ctx: GraphQLContext) {
    return mv.trainingRunId ? ctx.loaders.trainingRun.load(mv.trainingRunId) : null;
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => DatasetVersion, { nullable: true, description: 'The frozen dataset version it was trained on' })
  async datasetVersion(@Root() mv: ModelVersion, @Ctx() ctx: GraphQLContext) {
    if (!mv.trainingRunId) return null;
    const run = await ctx.loaders.trainingRun.load(mv.trainingRunId);
    return ctx.loaders.datasetVersion.load(run.datasetVersionId);
  }
}

@Resolver(() => ModelStageChange)
export class ModelStageChangeResolver {
  // Admins' key names are theirs and auditors' to read, not investigators'.
  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey, { nullable: true, description: 'Null when the system made the change (first start, worker). Admins and auditors only' })
  changedBy(@Root() change: ModelStageChange, @Ctx() ctx: GraphQLContext) {
    return change.changedById ? ctx.loaders.apiKey.load(change.changedById) : null;
  }
}

@Resolver(() => PromotionRequest)
export class PromotionRequestResolver {
  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ModelVersion)
  modelVersion(@Root() r: PromotionRequest, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.modelVersion.load(r.modelVersionId);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey, { description: 'The admin who asked' })
  requestedBy(@Root() r: PromotionRequest, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(r.requestedById);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey, { nullable: true, description: 'The (different) admin who approved or rejected it' })
  decidedBy(@Root() r: PromotionRequest, @Ctx() ctx: GraphQLContext) {
    return r.decidedById ? ctx.loaders.apiKey.load(r.decidedById) : null;
  }
}
