import { Authorized, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { type GraphQLContext, recordRead } from '../../graphql/context.js';
import { ANY_ROLE } from '../auth/roles.js';
import { Image } from './image.types.js';

@Resolver(() => Image)
export class ImageResolver {
  @Authorized(ANY_ROLE)
  @FieldResolver(() => String, { description: 'Presigned GET URL of the bytes; expires after PRESIGNED_URL_SECONDS' })
  async url(@Root() image: Image, @Ctx() ctx: GraphQLContext): Promise<string> {
    const seconds = ctx.services.config.presignedUrlSeconds;
    // Handing out a URL is handing out the bytes: it is recorded before the URL is answered.
    await recordRead(
      ctx,
      image.custody
        ? { action: 'evidence.imageUrl', entityType: 'Evidence', entityId: image.custody.evidenceId, details: { caseId: image.custody.caseId, sha256: image.sha256, expiresInSeconds: seconds } }
        : { action: 'image.url', entityType: 'Image', entityId: image.id, details: { sha256: image.sha256, expiresInSeconds: seconds } },
    );
    return ctx.services.images.presignedUrl(image, seconds);
  }
}
