import { Field, ID, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'One stored image, content-addressed by SHA-256 and shared by evidence and dataset items' })
export class Image {
  @Field(() => ID) id!: string;
  @Field(() => String) sha256!: string;
  @Field(() => Int) byteSize!: number;
  @Field(() => String, { description: 'Detected from the bytes, not the file name' }) mediaType!: string;
  @Field(() => Int) width!: number;
  @Field(() => Int) height!: number;
  objectKey!: string;
  /** Set when the image is reached as evidence: its URL is then a read of that case's evidence. */
  custody?: { evidenceId: string; caseId: string };
}
