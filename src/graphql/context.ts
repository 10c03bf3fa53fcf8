import type { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuditInput } from '../modules/audit/audit.service.js';
import type { ReadAudit } from '../modules/audit/read-audit.js';
import type { Principal } from '../modules/auth/roles.js';
import type { Services } from '../services.js';
import type { Loaders } from './loaders.js';

export interface GraphQLContext {
  requestId: string;
  /** Null for anonymous calls and for bad keys (then authError says why). */
  principal: Principal | null;
  authError: AppError | null;
  services: Services;
  loaders: Loaders;
  logger: Logger;
  /** The request's Idempotency-Key header, if any (see modules/idempotency). */
  idempotencyKey?: string;
  /** Records reads of case content (null for anonymous callers, who read nothing). */
  readAudit: ReadAudit | null;
}

/** For resolvers behind @Authorized: the principal is always there. */
export function principalOf(ctx: GraphQLContext): Principal {
  if (!ctx.principal) throw new Error('principalOf() called outside an @Authorized resolver');
  return ctx.principal;
}

/** Appends a read of case content to the audit log before the content is answered. */
export function recordRead(ctx: GraphQLContext, event: AuditInput): Promise<void> {
  if (!ctx.readAudit) throw new Error('recordRead() called outside an @Authorized resolver');
  return ctx.readAudit.record(event);
}
