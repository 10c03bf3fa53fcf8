import { Arg, Authorized, Ctx, Int, Query, Resolver } from 'type-graphql';
import { badInput } from '../../errors.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { pageSize } from '../../shared/pagination.js';
import { ADMIN_READERS } from '../auth/roles.js';
import type { AuditRecord } from './audit.service.js';
import { AuditChainVerification, AuditEvent, AuditEventConnection, AuditEventFilter } from './audit.types.js';

export const toAuditEvent = (r: AuditRecord): AuditEvent => ({ ...r, seq: r.seq.toString() });

function parseSeq(after: string | null | undefined): bigint | undefined {
  if (!after) return undefined;
  if (!/^\d{1,19}$/.test(after)) throw badInput('after must be the seq of an audit event (endCursor of a previous page)');
  return BigInt(after);
}

@Resolver()
export class AuditResolver {
  @Authorized(ADMIN_READERS)
  @Query(() => AuditEventConnection, { description: 'The audit log, oldest first' })
  async auditEvents(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => AuditEventFilter, { nullable: true }) filter?: AuditEventFilter,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
  ): Promise<AuditEventConnection> {
    const { items, hasMore } = await ctx.services.audit.list(filter ?? {}, { first: pageSize(first), after: parseSeq(after) });
    const nodes = items.map(toAuditEvent);
    return { nodes, pageInfo: { hasNextPage: hasMore, endCursor: nodes.length ? nodes[nodes.length - 1].seq : null } };
  }

  @Authorized(ADMIN_READERS)
  @Query(() => AuditChainVerification, { description: 'Recomputes the hash chain and reports the first broken link, if any' })
  async verifyAuditChain(@Ctx() ctx: GraphQLContext): Promise<AuditChainVerification> {
    const v = await ctx.services.audit.verify();
    return { ...v, firstBrokenSeq: v.firstBrokenSeq?.toString() ?? null };
  }
}
