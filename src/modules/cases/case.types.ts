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
  @Field(() => String, { nullable: true, description: 'Your own reference; generated when omitted' }) @MaxLength(64) reference?: string;
  @Field(() => String) @MaxLength(200) title!: string;
  @Field(() => String, { nullable: true }) @MaxLength(10000) description?: string;
}

@InputType()
export class UpdateCaseInput {
  @Field(() => String, { nullable: true }) @MaxLength(200) title?: string;
  @Field(() => String, { nullable: true }) @MaxLength(10000) description?: string;
}

@InputType()
export class CaseFilterInput {
  @Field(() => CaseStatus, { nullable: true }) status?: CaseStatus;
  @Field(() => String, { nullable: true, description: 'Matches reference, title or description, case-insensitively' }) text?: string;
}
