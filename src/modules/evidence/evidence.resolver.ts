import { RateLimit } from '../../graphql/rate-limits.js';
import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { type FileUpload, GraphQLUpload, readUpload } from '../../graphql/upload.js';
import { ApiKey } from '../auth/api-key.types.js';
import { CASE_READERS, CASEWORK } from '../auth/roles.js';
import { Case } from '../cases/case.types.js';
import { Image } from '../images/image.types.js';
import { Evidence } from './evidence.types.js';

@Resolver(() => Evidence)
export class EvidenceResolver {
  @Authorized(CASEWORK)
  @Mutation(() => Evidence, { description: 'Attaches a JPEG, PNG or WebP image to an open case. With an Idempotency-Key header, a retry of the same request returns the same evidence' })
  @RateLimit('upload')
  async addEvidence(
    @Arg('caseId', () => ID) caseId: string,
    @Arg('file', () => GraphQLUpload) file: Promise<FileUpload>,
    @Ctx() ctx: GraphQLContext,
    @Arg('note', () => String, { nullable: true, description: textLimit('note') }) note?: string,
  ) {
    const upload = await readUpload(file, ctx.services.config.uploads.maxFileBytes);
    const actor = principalOf(ctx);
    const request = ctx.services.idempotency.request(actor, ctx.idempotencyKey, 'addEvidence', [caseId, note ?? null, upload.bytes]);
    return ctx.services.evidence.addOnce(actor, { caseId, bytes: upload.bytes, filename: upload.filename, note }, request);
  }

  @Authorized(CASE_READERS)
  @Query(() => Evidence)
  evidence(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.evidence.get(principalOf(ctx), id);
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => Image)
  image(@Root() evidence: Evidence): Image {
    return { ...evidence.image, custody: { evidenceId: evidence.id, caseId: evidence.caseId } };
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => Case)
  case(@Root() evidence: Evidence, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.case.load(evidence.caseId);
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => ApiKey)
  addedBy(@Root() evidence: Evidence, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(evidence.addedById);
  }
}
