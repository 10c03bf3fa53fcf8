import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { toConnection } from '../../graphql/connection.js';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { ApiKey } from '../auth/api-key.types.js';
import { CASE_READERS, CASEWORK } from '../auth/roles.js';
import { EvidenceConnection } from '../evidence/evidence.types.js';
import { Case, CaseConnection, CaseFilterInput, CreateCaseInput, UpdateCaseInput } from './case.types.js';

@Resolver(() => Case)
export class CaseResolver {
  @Authorized(CASE_READERS)
  @Query(() => CaseConnection, { description: 'Cases, newest first' })
  async cases(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => CaseFilterInput, { nullable: true }) filter?: CaseFilterInput,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.cases.list(filter ?? {}, { first, after }));
  }

  @Authorized(CASE_READERS)
  @Query(() => Case)
  case(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.get(id);
  }

  @Authorized(CASE_READERS)
  @Query(() => Case)
  caseByReference(@Arg('reference', () => String, { description: textLimit('reference') }) reference: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.getByReference(reference);
  }

  @Authorized(CASEWORK)
  @Mutation(() => Case)
  createCase(@Arg('input', () => CreateCaseInput) input: CreateCaseInput, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.create(principalOf(ctx), input);
  }

  @Authorized(CASEWORK)
  @Mutation(() => Case)
  updateCase(@Arg('id', () => ID) id: string, @Arg('input', () => UpdateCaseInput) input: UpdateCaseInput, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.update(principalOf(ctx), id, input);
  }

  @Authorized(CASEWORK)
  @Mutation(() => Case, { description: 'Closes a case; a closed case takes no more evidence or classifications' })
  closeCase(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext, @Arg('reason', () => String, { nullable: true, description: textLimit('reason') }) reason?: string) {
    return ctx.services.cases.close(principalOf(ctx), id, reason);
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => EvidenceConnection)
  async evidence(
    @Root() kase: Case,
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.evidence.listForCase(kase.id, { first, after }));
  }

  @Authorized(CASE_READERS)
  @FieldResolver(() => ApiKey, { description: 'The key that opened the case' })
  createdBy(@Root() kase: Case, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(kase.createdById);
  }
}
