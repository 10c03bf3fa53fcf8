import { Field, ID, ObjectType } from 'type-graphql';
import { PageInfo } from '../../graphql/connection.js';
import type { Image } from '../images/image.types.js';

@ObjectType({ description: 'An image attached to a case' })
export class Evidence {
  @Field(() => ID) id!: string;
  @Field(() => ID) caseId!: string;
  @Field(() => String, { nullable: true }) note!: string | null;
  @Field(() => Date) createdAt!: Date;
  image!: Image;
  addedById!: string;
}

@ObjectType()
export class EvidenceConnection {
  @Field(() => [Evidence]) nodes!: Evidence[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}
