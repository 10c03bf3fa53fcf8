import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, Int, Mutation, Query, Resolver } from 'type-graphql';
import { badInput, conflict } from '../../errors.js';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { pageSize } from '../../shared/pagination.js';
import { ADMIN_ONLY, ADMIN_READERS } from '../auth/roles.js';
import type { AuditAnchorRecord, CheckedAnchor } from './audit-anchor.service.js';
import { type AuditRecord, redactCaseContent } from './audit.service.js';
import { AuditAnchor, AuditChainBreakKind, AuditChainVerification, AuditEvent, AuditEventConnection, AuditEventFilter } from './audit.types.js';

export const toAuditAnchor = (a: AuditAnchorRecord | CheckedAnchor, publicKey: string | null = null): AuditAnchor => ({
  seq: a.seq.toString(),
  hash: a.hash,
  createdAt: a.createdAt,
  keyId: a.keyId,
  reason: 'reason' in a ? a.reason : null,
  signature: 'signature' in a ? a.signature : null,
  objectKey: 'objectKey' in a ? a.objectKey : null,
  publicKey,
});

export const toAuditEvent = (r: AuditRecord): AuditEvent => ({ ...r, seq: r.seq.toString() });

const MAX_SEQ = 2n ** 63n - 1n; // PostgreSQL bigint

/** A page of audit events as a connection; the cursor is the last event's seq. */
export function toAuditEventConnection(page: { items: AuditRecord[]; hasMore: boolean }): AuditEventConnection {
  const nodes = page.items.map(toAuditEvent);
  return { nodes, pageInfo: { hasNextPage: page.hasMore, endCursor: nodes.length ? nodes[nodes.length - 1].seq : null } };
}

/** An audit cursor (`after`): the seq of the last event of the previous page. */
export function parseSeq(after: string | null | undefined): bigint | undefined {
  if (!after) return undefined;
  const seq = /^\d{1,19}$/.test(after) ? BigInt(after) : undefined;
  if (seq === undefined || seq > MAX_SEQ) throw badInput('after must be the seq of an audit event (endCursor of a previous page)');
  return seq;
}

@Resolver()
export class AuditResolver {
  @Authorized(ADMIN_READERS)
  @Query(() => AuditEventConnection, { description: 'The audit log, oldest first. Admins see only ids and kinds in the details of case work (cases, evidence, predictions, reviews), never titles, notes, reasons or file names' })
  async auditEvents(
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => AuditEventFilter, { nullable: true }) filter?: AuditEventFilter,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ): Promise<AuditEventConnection> {
    const { items, hasMore } = await ctx.services.audit.list(filter ?? {}, { first: pageSize(first), after: parseSeq(after) });
    // Admins never read case content, here neither: their view of case work is ids and kinds.
    return toAuditEventConnection({ items: principalOf(ctx).role === 'ADMIN' ? items.map(redactCaseContent) : items, hasMore });
  }

  @Authorized(ADMIN_READERS)
  @Query(() => AuditChainVerification, { description: 'Recomputes the hash chain, compares it with its signed anchors, and reports every break found' })
  async verifyAuditChain(@Ctx() ctx: GraphQLContext): Promise<AuditChainVerification> {
    const v = await ctx.services.audit.verify();
    return {
      ...v,
      firstBrokenSeq: v.firstBrokenSeq?.toString() ?? null,
      breaks: v.breaks.map((b) => ({ seq: b.seq.toString(), kind: b.kind as AuditChainBreakKind, reason: b.reason })),
      anchor: v.anchor ? toAuditAnchor(v.anchor) : null,
    };
  }

  @Authorized(ADMIN_READERS)
  @Query(() => [AuditAnchor], { description: 'Anchors of the audit chain, newest first' })
  async auditAnchors(@Ctx() ctx: GraphQLContext, @Arg('first', () => Int, { nullable: true }) first?: number): Promise<AuditAnchor[]> {
    const publicKey = ctx.services.auditAnchors.signer().publicKeyPem;
    return (await ctx.services.auditAnchors.list(pageSize(first))).map((a) => toAuditAnchor(a, publicKey));
  }

  // Anchoring adds no audit event and changes no record, but auditors change nothing: admins ask.
  @Authorized(ADMIN_ONLY)
  @Mutation(() => AuditAnchor, { description: 'Checkpoints the audit chain\'s head now (signed; in the table and the object store); returns the latest anchor if the head has not moved' })
  async anchorAuditChain(@Ctx() ctx: GraphQLContext): Promise<AuditAnchor> {
    const anchor = await ctx.services.auditAnchors.anchor(`on demand by ${ctx.principal?.name ?? 'unknown'}`);
    if (!anchor) throw conflict('The audit chain is empty: there is nothing to anchor yet');
    return toAuditAnchor(anchor, ctx.services.auditAnchors.signer().publicKeyPem);
  }
}
