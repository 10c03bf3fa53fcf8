import { RateLimit } from '../../graphql/rate-limits.js';
import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { toConnection } from '../../graphql/connection.js';
import { type GraphQLContext, principalOf, recordRead } from '../../graphql/context.js';
import { ReviewVerdict } from '../../generated/prisma/enums.js';
import { type FileUpload, GraphQLUpload, readUpload } from '../../graphql/upload.js';
import { toAuditEvent } from '../audit/audit.resolver.js';
import { ApiKey } from '../auth/api-key.types.js';
import { ANY_ROLE, CASE_READERS, CASEWORK } from '../auth/roles.js';
import { Case } from '../cases/case.types.js';
import { Evidence } from '../evidence/evidence.types.js';
import { ModelVersion } from '../registry/registry.types.js';
import { CaseReport, ClassifiedImage, Prediction, PredictionConnection, PredictionExplanation, PredictionReview } from './prediction.types.js';

/** Readers of predictions: case readers, and admins who must see what a model version decided. */
const PREDICTION_READERS = [...CASE_READERS, 'ADMIN' as const];

@Resolver(() => Prediction)
export class PredictionResolver {
  @Authorized(CASEWORK)
  @Mutation(() => Prediction, { description: 'Classifies an evidence image with the production model, or the named version. With an Idempotency-Key header, a retry returns the same prediction' })
  @RateLimit('classify')
  classifyEvidence(
    @Arg('evidenceId', () => ID) evidenceId: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('modelVersionId', () => ID, { nullable: true }) modelVersionId?: string,
  ) {
    const actor = principalOf(ctx);
    const request = ctx.services.idempotency.request(actor, ctx.idempotencyKey, 'classifyEvidence', [evidenceId, modelVersionId ?? null]);
    return ctx.services.predictions.classifyEvidence(actor, evidenceId, modelVersionId, request);
  }

  @Authorized(CASEWORK)
  @Mutation(() => ClassifiedImage, { description: 'Adds an image as evidence and classifies it, in one request. With an Idempotency-Key header, a retry of the same request returns the same result instead of CONFLICT' })
  @RateLimit('classify')
  async classifyImage(
    @Arg('caseId', () => ID) caseId: string,
    @Arg('file', () => GraphQLUpload) file: Promise<FileUpload>,
    @Ctx() ctx: GraphQLContext,
    @Arg('note', () => String, { nullable: true, description: textLimit('note') }) note?: string,
    @Arg('modelVersionId', () => ID, { nullable: true }) modelVersionId?: string,
  ) {
    const upload = await readUpload(file, ctx.services.config.uploads.maxFileBytes);
    const actor = principalOf(ctx);
    const request = ctx.services.idempotency.request(actor, ctx.idempotencyKey, 'classifyImage', [caseId, note ?? null, modelVersionId ?? null, upload.bytes]);
    return ctx.services.predictions.classifyImage(actor, { caseId, bytes: upload.bytes, filename: upload.filename, note, modelVersionId }, request);
  }

  @Authorized(CASEWORK)
  @Mutation(() => [Prediction], { description: 'Classifies every evidence image of the case that the production model has not classified yet' })
  @RateLimit('classify')
  classifyCaseEvidence(@Arg('caseId', () => ID) caseId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.predictions.classifyCaseEvidence(principalOf(ctx), caseId);
  }

  @Authorized(CASEWORK)
  @Mutation(() => PredictionExplanation, { description: 'Renders (once) and stores the heatmap of what drove the decision' })
  @RateLimit('explain')
  explainPrediction(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.predictions.explain(principalOf(ctx), id);
  }

  @Authorized(CASEWORK)
  @Mutation(() => PredictionReview, { description: "Records a member's verdict on a prediction, with a reason; a later review supersedes (never edits) it" })
  reviewPrediction(
    @Arg('predictionId', () => ID) predictionId: string,
    @Arg('verdict', () => ReviewVerdict) verdict: ReviewVerdict,
    @Arg('reason', () => String, { description: textLimit('reason') }) reason: string,
    @Ctx() ctx: GraphQLContext,
  ) {
    return ctx.services.predictions.review(principalOf(ctx), predictionId, verdict, reason);
  }

  @Authorized(PREDICTION_READERS)
  @Query(() => Prediction)
  prediction(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.predictions.get(principalOf(ctx), id);
  }

  @Authorized(PREDICTION_READERS)
  @Query(() => PredictionConnection, { description: 'Everything a model version ever decided, newest first (for withdrawing a model)' })
  async predictionsByModelVersion(
    @Arg('modelVersionId', () => ID) modelVersionId: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    await ctx.services.registry.get(modelVersionId);
    return toConnection(await ctx.services.predictions.listByModelVersion(principalOf(ctx), modelVersionId, { first, after }));
  }

  @Authorized(CASE_READERS)
  @Query(() => CaseReport)
  async caseReport(@Arg('caseId', () => ID) caseId: string, @Ctx() ctx: GraphQLContext) {
    const report = await ctx.services.predictions.caseReport(principalOf(ctx), caseId);
    await recordRead(ctx, { action: 'case.report', entityType: 'Case', entityId: caseId, details: { predictions: report.predictions.length, evidence: report.evidence.length } });
    return { ...report, auditEvents: report.auditEvents.map(toAuditEvent) };
  }

  @Authorized(PREDICTION_READERS)
  @FieldResolver(() => ModelVersion, { description: 'The model version behind it: follow its training run, dataset version and promotions' })
  modelVersion(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.modelVersion.load(p.modelVersionId);
  }

  // Case contents stay with investigators and auditors: admins see ids, not cases or images.
  @Authorized(CASE_READERS)
  @FieldResolver(() => Evidence)
  evidence(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.evidence.load(p.evidenceId);
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => Case)
  case(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.case.load(p.caseId);
  }

  @Authorized(PREDICTION_READERS)
  @FieldResolver(() => ApiKey, { description: 'Who asked for it' })
  requestedBy(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(p.requestedById);
  }

  // Reviews carry a person's reading of case content: case readers only.
  @Authorized(CASE_READERS)
  @FieldResolver(() => PredictionReview, { nullable: true, description: 'The latest review (who, when, verdict, why); null while nobody has reviewed it' })
  async review(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return (await ctx.loaders.reviewsByPrediction.load(p.id)).at(-1) ?? null;
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => [PredictionReview], { description: 'Every review, oldest first (each later one supersedes the one before)' })
  reviews(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.reviewsByPrediction.load(p.id);
  }

  @Authorized(PREDICTION_READERS)
  @FieldResolver(() => PredictionExplanation, { nullable: true, description: 'Null until explainPrediction was called' })
  explanation(@Root() p: Prediction, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.explanationByPrediction.load(p.id);
  }
}

@Resolver(() => PredictionExplanation)
export class PredictionExplanationResolver {
  // The heatmap shows the evidence eye itself: case content, so not for admins.
  @Authorized(CASE_READERS)
  @FieldResolver(() => String, { description: 'Presigned URL of the heatmap PNG (case content: investigators and auditors only)' })
  async url(@Root() e: PredictionExplanation, @Ctx() ctx: GraphQLContext) {
    const seconds = ctx.services.config.presignedUrlSeconds;
    await recordRead(ctx, { action: 'prediction.explanationUrl', entityType: 'Prediction', entityId: e.predictionId, details: { sha256: e.sha256, expiresInSeconds: seconds } });
    return ctx.services.store.presignedGetUrl(e.objectKey, seconds);
  }
}

@Resolver(() => PredictionReview)
export class PredictionReviewResolver {
  @Authorized(CASE_READERS)
  @FieldResolver(() => ApiKey, { description: 'Who reviewed it' })
  reviewer(@Root() r: PredictionReview, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(r.reviewerId);
  }
}

@Resolver(() => Evidence)
export class EvidencePredictionsResolver {
  @Authorized(PREDICTION_READERS)
  @FieldResolver(() => [Prediction], { description: 'Every classification of this image in this case, oldest first' })
  predictions(@Root() evidence: Evidence, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.predictionsByEvidence.load(evidence.id);
  }
}
