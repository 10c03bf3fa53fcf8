// The one role check. The GraphQL auth checker (every @Authorized field) and the command-line
// tools that act as an API key (npm run import) both call it, so a key gets the same answer,
// with the same code and message, whichever way it comes in.
import { type AppError, forbidden, unauthenticated } from '../../errors.js';
import type { Principal, RoleName } from './roles.js';

export const NO_KEY_MESSAGE = 'Send an API key as "Authorization: Bearer <key>"';

/**
 * The principal, if one of `allowed` is its role (an empty list allows every role). Otherwise
 * throws: UNAUTHENTICATED without a principal (`authError`, why the key was refused, when there
 * was one), FORBIDDEN naming the key's role, what it tried (`action`) and the roles that may.
 */
export function authorize(principal: Principal | null | undefined, allowed: readonly RoleName[], action: string, authError?: AppError | null): Principal {
  if (!principal) throw authError ?? unauthenticated(NO_KEY_MESSAGE);
  if (allowed.length > 0 && !allowed.includes(principal.role)) {
    throw forbidden(`The API key "${principal.name}" has the ${principal.role} role; ${action} needs a key with the ${allowed.join(' or ')} role`);
  }
  return principal;
}
