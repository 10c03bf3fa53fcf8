// The one authorization mechanism of the API: type-graphql's @Authorized(roles) on every query,
// mutation and sensitive field, checked here by the shared role check (modules/auth/authorize.ts).
// Anonymous or bad keys: UNAUTHENTICATED; wrong role: FORBIDDEN.
import type { AuthChecker } from 'type-graphql';
import { authorize } from '../modules/auth/authorize.js';
import type { RoleName } from '../modules/auth/roles.js';
import type { GraphQLContext } from './context.js';

export const authChecker: AuthChecker<GraphQLContext, RoleName> = ({ context, info }, roles) => {
  authorize(context.principal, roles, `${info.parentType.name}.${info.fieldName}`, context.authError);
  return true;
};
