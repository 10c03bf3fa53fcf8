// The one authorization mechanism: type-graphql's @Authorized(roles) on every query, mutation and
// sensitive field, checked here. Anonymous or bad keys: UNAUTHENTICATED; wrong role: FORBIDDEN.
import type { AuthChecker } from 'type-graphql';
import { forbidden, unauthenticated } from '../errors.js';
import type { GraphQLContext } from './context.js';

export const authChecker: AuthChecker<GraphQLContext> = ({ context, info }, roles) => {
  if (!context.principal) {
    throw context.authError ?? unauthenticated('Send an API key as "Authorization: Bearer <key>"');
  }
  if (roles.length > 0 && !roles.includes(context.principal.role)) {
    throw forbidden(`The ${context.principal.role} role may not use ${info.parentType.name}.${info.fieldName} (allowed: ${roles.join(', ')})`);
  }
  return true;
};
