import { RateLimit } from '../../graphql/rate-limits.js';
import { textLimit } from '../../graphql/text-limits.js';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { toConnection } from '../../graphql/connection.js';
import { type GraphQLContext, principalOf } from '../../graphql/context.js';
import { type FileUpload, GraphQLUpload } from '../../graphql/upload.js';
import { ApiKey } from '../auth/api-key.types.js';
import { ADMIN_ONLY, ADMIN_READERS } from '../auth/roles.js';
import {
  ClassCounts,
  CreateDatasetInput,
  Dataset,
  DatasetConnection,
  DatasetImportResult,
  DatasetItem,
  DatasetItemConnection,
  DatasetItemFilterInput,
  DatasetVersion,
  Sex,
} from './dataset.types.js';
import { receivedUpload, uploadedFiles } from './sources.js';

@Resolver(() => Dataset)
export class DatasetResolver {
  @Authorized(ADMIN_READERS)
  @Query(() => DatasetConnection, { description: 'Datasets, newest first' })
  async datasets(
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.datasets.list({ first, after }));
  }

  @Authorized(ADMIN_READERS)
  @Query(() => Dataset)
  dataset(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasets.get(id);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => Dataset)
  createDataset(@Arg('input', () => CreateDatasetInput) input: CreateDatasetInput, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasets.create(principalOf(ctx), input);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => DatasetImportResult, {
    description:
      'Adds JPEG, PNG or WebP images with one label. At most MAX_DATASET_FILES_PER_REQUEST files (else PAYLOAD_TOO_LARGE); ' +
      'files already in the dataset (same SHA-256) are reported as DUPLICATE, files that fail validation as SKIPPED with a reason',
  })
  @RateLimit('upload')
  addDatasetImages(
    @Arg('datasetId', () => ID) datasetId: string,
    @Arg('label', () => Sex) label: Sex,
    @Arg('files', () => [GraphQLUpload]) files: Array<Promise<FileUpload>>,
    @Ctx() ctx: GraphQLContext,
    @Arg('groupKeys', () => [String], {
      nullable: 'itemsAndList',
      description: 'One group key per file, in order (null for none): the person in the image, so that no training/validation split divides them',
    })
    groupKeys?: Array<string | null> | null,
  ) {
    const { datasetImports, config } = ctx.services;
    const groups = datasetImports.checkGroupKeys(groupKeys, files.length);
    return datasetImports.addImages(principalOf(ctx), datasetId, files.length, uploadedFiles(files, label, config.uploads.maxFileBytes, groups));
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => DatasetItem, { description: 'Sets (or clears, with null) the group (person) of a dataset item; versions taken before keep the old group' })
  setDatasetItemGroup(@Arg('id', () => ID) id: string, @Arg('groupKey', () => String, { nullable: true }) groupKey: string | null, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasets.setItemGroup(principalOf(ctx), id, groupKey ?? null);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => DatasetImportResult, {
    description:
      'Imports a ZIP archive with female/ and male/ folders (optionally under one top-level folder). Limits: MAX_ARCHIVE_BYTES, ' +
      'MAX_ARCHIVE_ENTRIES and MAX_ARCHIVE_UNCOMPRESSED_BYTES (PAYLOAD_TOO_LARGE, nothing imported); other entries are SKIPPED with a reason',
  })
  @RateLimit('upload')
  async importDatasetArchive(@Arg('datasetId', () => ID) datasetId: string, @Arg('archive', () => GraphQLUpload) archive: Promise<FileUpload>, @Ctx() ctx: GraphQLContext) {
    const { datasets, datasetImports, config } = ctx.services;
    await datasets.get(datasetId);
    const upload = await receivedUpload(archive, config.archive.maxBytes);
    return datasetImports.importArchive(principalOf(ctx), datasetId, upload.createReadStream());
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => Dataset, { description: 'Removes an item from its dataset; versions taken before keep it' })
  removeDatasetItem(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasets.removeItem(principalOf(ctx), id);
  }

  @Authorized(ADMIN_ONLY)
  @Mutation(() => DatasetVersion, { description: 'Freezes the current items into a new immutable version (1, 2, 3, ...) with a manifest' })
  snapshotDataset(@Arg('datasetId', () => ID) datasetId: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasetVersions.snapshot(principalOf(ctx), datasetId);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ClassCounts, { description: 'Items per label, now' })
  counts(@Root() dataset: Dataset, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasets.counts(dataset.id);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => DatasetItemConnection, { description: 'Items, newest first' })
  async items(
    @Root() dataset: Dataset,
    @Ctx() ctx: GraphQLContext,
    @Arg('filter', () => DatasetItemFilterInput, { nullable: true }) filter?: DatasetItemFilterInput,
    @Arg('first', () => Int, { nullable: true }) first?: number,
    @Arg('after', () => String, { nullable: true, description: textLimit('cursor') }) after?: string,
  ) {
    return toConnection(await ctx.services.datasets.listItems(dataset.id, filter ?? {}, { first, after }));
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => [DatasetVersion], { description: 'Frozen versions, newest first' })
  versions(@Root() dataset: Dataset, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasetVersions.listVersions(dataset.id);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey)
  createdBy(@Root() dataset: Dataset, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(dataset.createdById);
  }
}

@Resolver(() => DatasetVersion)
export class DatasetVersionResolver {
  @Authorized(ADMIN_READERS)
  @Query(() => DatasetVersion)
  datasetVersion(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasetVersions.getVersion(id);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ClassCounts, { description: 'Items per label, frozen' })
  counts(@Root() version: DatasetVersion, @Ctx() ctx: GraphQLContext): ClassCounts {
    return ctx.services.datasetVersions.counts(version);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => String, { description: 'Presigned GET URL of the manifest; expires after PRESIGNED_URL_SECONDS' })
  manifestUrl(@Root() version: DatasetVersion, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasetVersions.manifestUrl(version);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => Dataset)
  dataset(@Root() version: DatasetVersion, @Ctx() ctx: GraphQLContext) {
    return ctx.services.datasets.get(version.datasetId);
  }

  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey)
  createdBy(@Root() version: DatasetVersion, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(version.createdById);
  }
}

@Resolver(() => DatasetItem)
export class DatasetItemResolver {
  @Authorized(ADMIN_READERS)
  @FieldResolver(() => ApiKey)
  addedBy(@Root() item: DatasetItem, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.apiKey.load(item.addedById);
  }
}
