import { TEXT_LIMITS, textLimit } from '../../graphql/text-limits.js';
import { MaxLength } from 'class-validator';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { CaseStatus } from '../../generated/prisma/enums.js';
import { PageInfo } from '../../graphql/connection.js';

registerEnumType(CaseStatus, { name: 'CaseStatus' });

@ObjectType()
export class Case {
  @Field(() => ID) id!: string;
  @Field(() => String, { description: 'Unique, human-readable reference, e.g. CASE-2026-7KQ2MX' }) reference!: string;
  @Field(() => String) title!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => CaseStatus) status!: CaseStatus;
  @Field(() => Date) createdAt!: Date;
  @Field(() => Date) updatedAt!: Date;
  @Field(() => Date, { nullable: true }) closedAt!: Date | null;
  createdById!: string;
}

@ObjectType()
export class CaseConnection {
  @Field(() => [Case]) nodes!: Case[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@InputType()
export class CreateCaseInput {
  @Field(() => String, { nullable: true, description: textLimit('reference', 'Your own reference; generated when omitted') }) @MaxLength(TEXT_LIMITS.reference) reference?: string;
  @Field(() => String, { description: textLimit('title') }) @MaxLength(TEXT_LIMITS.title) title!: string;
  @Field(() => String, { nullable: true, description: textLimit('description') }) @MaxLength(TEXT_LIMITS.description) description?: string;
}

@InputType()
export class UpdateCaseInput {
  @Field(() => String, { nullable: true, description: textLimit('title') }) @MaxLength(TEXT_LIMITS.title) title?: string;
  @Field(() => String, { nullable: true, description: textLimit('description') }) @MaxLength(TEXT_LIMITS.description) description?: string;
}

@InputType()
export class CaseFilterInput {
  @Field(() => CaseStatus, { nullable: true }) status?: CaseStatus;
  @Field(() => String, { nullable: true, description: textLimit('filter', 'Matches reference, title or description, case-insensitively; _ and % match themselves') }) @MaxLength(TEXT_LIMITS.filter) text?: string;
}

@ObjectType({ description: 'An investigator who may see a case (its creator, or added by a member or an admin)' })
export class CaseMember {
  @Field(() => ID) caseId!: string;
  @Field(() => ID) apiKeyId!: string;
  @Field(() => Date, { description: 'When the key joined the case' }) createdAt!: Date;
  addedById!: string | null;
}
