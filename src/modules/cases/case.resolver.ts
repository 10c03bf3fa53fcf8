import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { toConnection } from '../../graphql/connection.js';
import { type GraphQLContext, principalOf, recordRead } from '../../graphql/context.js';
import { parseSeq, toAuditEventConnection } from '../audit/audit.resolver.js';
import { AuditEventConnection } from '../audit/audit.types.js';
import { ApiKey } from '../auth/api-key.types.js';
import { ANY_ROLE, CASE_READERS, CASEWORK, type RoleName } from '../auth/roles.js';
import { EvidenceConnection } from '../evidence/evidence.types.js';
import { Case, CaseConnection, CaseFilterInput, CaseMember, CreateCaseInput, UpdateCaseInput } from './case.types.js';

/** Membership is managed by the case's members and by admins (who never see the case's contents). */
const MEMBERSHIP_MANAGERS: RoleName[] = ['INVESTIGATOR', 'ADMIN'];

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
    return toConnection(await ctx.services.cases.list(principalOf(ctx), filter ?? {}, { first, after }));
  }

  @Authorized(CASE_READERS)
  @Query(() => Case)
  async case(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    const found = await ctx.services.cases.get(principalOf(ctx), id);
    await recordRead(ctx, { action: 'case.view', entityType: 'Case', entityId: found.id });
    return found;
  }

  @Authorized(CASE_READERS)
  @Query(() => Case)
  async caseByReference(@Arg('reference', () => String, { description: textLimit('reference') }) reference: string, @Ctx() ctx: GraphQLContext) {
    const found = await ctx.services.cases.getByReference(principalOf(ctx), reference);
    await recordRead(ctx, { action: 'case.view', entityType: 'Case', entityId: found.id, details: { byReference: true } });
    return found;
  }

  @Authorized(CASE_READERS)
  @Query(() => AuditEventConnection, { description: 'Everything that happened to the case, its evidence and its predictions (reads included), oldest first' })
  async caseTimeline(
    @Arg('caseId', () => ID) caseId: string,
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor', 'endCursor of the previous page') }) after?: string,
  ): Promise<AuditEventConnection> {
    const page = await ctx.services.cases.timeline(principalOf(ctx), caseId, { first, after: parseSeq(after) });
    await recordRead(ctx, { action: 'case.timeline', entityType: 'Case', entityId: caseId });
    return toAuditEventConnection(page);
  }

  @Authorized(ANY_ROLE)
  @Query(() => [CaseMember], { description: "The case's members (for its members, admins and auditors)" })
  caseMembers(@Arg('caseId', () => ID) caseId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.members(principalOf(ctx), caseId);
  }

  @Authorized(MEMBERSHIP_MANAGERS)
  @Mutation(() => [CaseMember], { description: 'Lets an investigator key see the case (by a member or an admin); returns the members' })
  addCaseMember(@Arg('caseId', () => ID) caseId: string, @Arg('apiKeyId', () => ID) apiKeyId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.addMember(principalOf(ctx), caseId, apiKeyId);
  }

  @Authorized(MEMBERSHIP_MANAGERS)
  @Mutation(() => [CaseMember], { description: 'Takes a key off the case (a case keeps at least one member); returns the members' })
  removeCaseMember(@Arg('caseId', () => ID) caseId: string, @Arg('apiKeyId', () => ID) apiKeyId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.cases.removeMember(principalOf(ctx), caseId, apiKeyId);
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

@Resolver(() => CaseMember)
export class CaseMemberResolver {
  @Authorized(ANY_ROLE)
  @FieldResolver(() => ApiKey, { description: 'The member' })
  member(@Root() m: CaseMember, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(m.apiKeyId);
  }

  @Authorized(ANY_ROLE)
  @FieldResolver(() => ApiKey, { nullable: true, description: 'Who added it' })
  addedBy(@Root() m: CaseMember, @Ctx() ctx: GraphQLContext) {
    return m.addedById ? ctx.loaders.apiKey.load(m.addedById) : null;
  }
}
