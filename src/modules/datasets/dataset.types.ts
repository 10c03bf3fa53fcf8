import { TEXT_LIMITS, textLimit } from '../../graphql/text-limits.js';
import { MaxLength } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Sex } from '../../generated/prisma/enums.js';
import { PageInfo } from '../../graphql/connection.js';
import { Image } from '../images/image.types.js';

export { Sex };
registerEnumType(Sex, { name: 'Sex', description: 'The label of a dataset item' });

export const DatasetFileStatus = { IMPORTED: 'IMPORTED', DUPLICATE: 'DUPLICATE', SKIPPED: 'SKIPPED' } as const;
export type DatasetFileStatus = (typeof DatasetFileStatus)[keyof typeof DatasetFileStatus];
registerEnumType(DatasetFileStatus, {
  name: 'DatasetFileStatus',
  description: 'IMPORTED: a new item; DUPLICATE: the same bytes (SHA-256) are already in the dataset or earlier in the request; SKIPPED: not imported, see reason',
});

@ObjectType({ description: 'How many items carry each label' })
export class ClassCounts {
  @Field(() => Int) female!: number;
  @Field(() => Int) male!: number;
  @Field(() => Int) total!: number;
}

@ObjectType({ description: 'A curated, labelled collection of eye images' })
export class Dataset {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => Date) createdAt!: Date;
  createdById!: string;
}

@ObjectType()
export class DatasetConnection {
  @Field(() => [Dataset]) nodes!: Dataset[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType({ description: 'One labelled image in a dataset' })
export class DatasetItem {
  @Field(() => ID) id!: string;
  @Field(() => ID) datasetId!: string;
  @Field(() => Sex) label!: Sex;
  @Field(() => String, {
    nullable: true,
    description: 'The person (or a proxy) the image belongs to: no split divides a group. Imports of numbered files derive it as the run of consecutive numbers within a folder; null = its own group',
  })
  groupKey!: string | null;
  @Field(() => Date) createdAt!: Date;
  @Field(() => Image) image!: Image;
  addedById!: string;
}

@ObjectType()
export class DatasetItemConnection {
  @Field(() => [DatasetItem]) nodes!: DatasetItem[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType({ description: 'A frozen, immutable snapshot of a dataset; training runs refer to one' })
export class DatasetVersion {
  @Field(() => ID) id!: string;
  @Field(() => ID) datasetId!: string;
  @Field(() => Int, { description: '1, 2, 3, ... per dataset' }) version!: number;
  @Field(() => Int) itemCount!: number;
  @Field(() => Int) femaleCount!: number;
  @Field(() => Int) maleCount!: number;
  @Field(() => String, { description: 'SHA-256 of the manifest bytes (canonical JSON, items sorted by sha256)' }) manifestSha256!: string;
  @Field(() => String, { description: 'Object-store key of the manifest' }) manifestKey!: string;
  @Field(() => Date) createdAt!: Date;
  createdById!: string;
}

@ObjectType({ description: 'What happened to one file of an import' })
export class DatasetFileResult {
  @Field(() => String, { description: 'File name (uploads) or entry path (archives, folders)' }) name!: string;
  @Field(() => DatasetFileStatus) status!: DatasetFileStatus;
  @Field(() => Sex, { nullable: true }) label!: Sex | null;
  @Field(() => String, { nullable: true, description: 'SHA-256 of the bytes, when they were read' }) sha256!: string | null;
  @Field(() => ID, { nullable: true, description: 'The dataset item (new for IMPORTED, existing for DUPLICATE)' }) itemId!: string | null;
  @Field(() => String, { nullable: true, description: 'Why the file was skipped or is a duplicate' }) reason!: string | null;
  @Field(() => String, { nullable: true, description: 'Error code of a skipped file (BAD_USER_INPUT, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE)' }) code!: string | null;
}

@ObjectType({ description: 'The outcome of addDatasetImages or importDatasetArchive' })
export class DatasetImportResult {
  @Field(() => Dataset) dataset!: Dataset;
  @Field(() => Int) imported!: number;
  @Field(() => Int) duplicates!: number;
  @Field(() => Int) skipped!: number;
  @Field(() => [DatasetFileResult], { description: 'One result per file or archive entry (folders are not listed), in order' }) files!: DatasetFileResult[];
}

@InputType()
export class CreateDatasetInput {
  @Field(() => String, { description: textLimit('name', 'Unique name, e.g. eyes-rtte') }) @MaxLength(TEXT_LIMITS.name) name!: string;
  @Field(() => String, { nullable: true, description: textLimit('description') }) @MaxLength(TEXT_LIMITS.description) description?: string;
}

@InputType()
export class DatasetItemFilterInput {
  @Field(() => Sex, { nullable: true }) label?: Sex;
  @Field(() => String, { nullable: true, description: textLimit('filter', 'The image SHA-256 (hex)') }) @MaxLength(TEXT_LIMITS.filter) sha256?: string;
}
