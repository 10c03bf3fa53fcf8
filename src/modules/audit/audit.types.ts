import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { GraphQLJSON } from 'graphql-scalars';
import { PageInfo } from '../../graphql/connection.js';

@ObjectType({ description: 'One entry of the append-only, hash-chained audit log' })
export class AuditEvent {
  @Field(() => ID, { description: 'Position in the chain (a 64-bit integer, as a string)' }) seq!: string;
  @Field(() => Date) createdAt!: Date;
  @Field(() => ID, { nullable: true }) actorKeyId!: string | null;
  @Field(() => String, { description: 'key:<name> or system:<component>' }) actor!: string;
  @Field(() => String) action!: string;
  @Field(() => String) entityType!: string;
  @Field(() => String) entityId!: string;
  @Field(() => GraphQLJSON) details!: unknown;
  @Field(() => String) prevHash!: string;
  @Field(() => String) hash!: string;
}

@ObjectType()
export class AuditEventConnection {
  @Field(() => [AuditEvent]) nodes!: AuditEvent[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@InputType()
export class AuditEventFilter {
  @Field(() => ID, { nullable: true }) actorKeyId?: string;
  @Field(() => String, { nullable: true }) entityType?: string;
  @Field(() => String, { nullable: true }) entityId?: string;
  @Field(() => String, { nullable: true }) action?: string;
  @Field(() => Date, { nullable: true, description: 'Inclusive' }) from?: Date;
  @Field(() => Date, { nullable: true, description: 'Exclusive' }) to?: Date;
}

@ObjectType()
export class AuditChainVerification {
  @Field(() => Boolean) ok!: boolean;
  @Field(() => Int, { description: 'Events verified before the first broken link (or all of them)' }) checked!: number;
  @Field(() => ID, { nullable: true }) firstBrokenSeq!: string | null;
  @Field(() => String, { nullable: true }) reason!: string | null;
}
