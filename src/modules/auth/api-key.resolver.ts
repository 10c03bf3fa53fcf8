import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { ADMIN_ONLY, ADMIN_READERS, ANY_ROLE } from './roles.js';
import { ApiKey, CreateApiKeyInput, CreatedApiKey, Viewer } from './api-key.types.js';

@Resolver()
export class ApiKeyResolver {
  @Authorized(ANY_ROLE)
  @Query(() => Viewer, { description: 'Who the API key in this request belongs to' })
  viewer(@Ctx() ctx: GraphQLContext): Viewer {
    return principalOf(ctx);
  }

  @Authorized(ADMIN_READERS)
  @Query(() => [ApiKey])
  apiKeys(@Ctx() ctx: GraphQLContext) {
    return ctx.services.apiKeys.list();
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => CreatedApiKey)
  async createApiKey(@Arg('input', () => CreateApiKeyInput) input: CreateApiKeyInput, @Ctx() ctx: GraphQLContext): Promise<CreatedApiKey> {
    const created = await ctx.services.apiKeys.create(principalOf(ctx), input);
    return { key: { ...created, revokedAt: null }, secret: created.secret };
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => ApiKey)
  revokeApiKey(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.apiKeys.revoke(principalOf(ctx), id);
  }
}
