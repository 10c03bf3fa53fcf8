import { Authorized, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { ANY_ROLE } from '../auth/roles.js';
import { Image } from './image.types.js';

@Resolver(() => Image)
export class ImageResolver {
  @Authorized(ANY_ROLE)
  @FieldResolver(() => String, { description: 'Presigned GET URL of the bytes; expires after PRESIGNED_URL_SECONDS' })
  url(@Root() image: Image, @Ctx() ctx: GraphQLContext): Promise<string> {
    return ctx.services.images.presignedUrl(image, ctx.services.config.presignedUrlSeconds);
  }
}
