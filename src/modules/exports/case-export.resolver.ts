import { Arg, Authorized, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { CASEWORK } from '../auth/roles.js';
import { CaseExport } from './case-export.types.js';

@Resolver()
export class CaseExportResolver {
  @Authorized(CASEWORK)
  @Mutation(() => CaseExport, { description: 'Writes a ZIP of the case to the object store (an audit event) and returns a presigned URL to it' })
  exportCase(@Arg('caseId', () => ID) caseId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.exports.export(principalOf(ctx), caseId);
  }
}
