import { Field, ID, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A ZIP of a case (evidence, predictions, reviews, audit slice, model cards) with a SHA-256 manifest; check it with `npm run verify-export`' })
export class CaseExport {
  @Field(() => ID) caseId!: string;
  @Field(() => String, { description: 'Where the ZIP is kept in the object store' }) objectKey!: string;
  @Field(() => String, { description: 'SHA-256 of the whole ZIP (also in the case.export audit event)' }) sha256!: string;
  @Field(() => Int) byteSize!: number;
  @Field(() => Int, { description: 'Files in the ZIP, the manifest included' }) fileCount!: number;
  @Field(() => ID, { nullable: true, description: 'The last audit event when the export began' }) auditChainHeadSeq!: string | null;
  @Field(() => String, { nullable: true, description: "That event's hash, as written in the manifest" }) auditChainHeadHash!: string | null;
  @Field(() => String, { description: 'Presigned GET URL of the ZIP' }) url!: string;
  @Field(() => Int) expiresInSeconds!: number;
  @Field(() => Date) createdAt!: Date;
}
