import { TEXT_LIMITS, textLimit } from '../../graphql/text-limits.js';
import { MaxLength } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
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
  @Field(() => String, { nullable: true, description: textLimit('filter') }) @MaxLength(TEXT_LIMITS.filter) entityType?: string;
  @Field(() => String, { nullable: true, description: textLimit('filter') }) @MaxLength(TEXT_LIMITS.filter) entityId?: string;
  @Field(() => String, { nullable: true, description: textLimit('filter') }) @MaxLength(TEXT_LIMITS.filter) action?: string;
  @Field(() => Date, { nullable: true, description: 'Inclusive' }) from?: Date;
  @Field(() => Date, { nullable: true, description: 'Exclusive' }) to?: Date;
}

export enum AuditChainBreakKind {
  UNLINKED = 'UNLINKED',
  ALTERED = 'ALTERED',
  ANCHOR_MISMATCH = 'ANCHOR_MISMATCH',
  ANCHORED_EVENT_MISSING = 'ANCHORED_EVENT_MISSING',
  ANCHOR_SIGNATURE_INVALID = 'ANCHOR_SIGNATURE_INVALID',
}
registerEnumType(AuditChainBreakKind, {
  name: 'AuditChainBreakKind',
  valuesConfig: {
    UNLINKED: { description: 'The event does not link to the one before it: an event was removed or reordered' },
    ALTERED: { description: 'The event does not match its own hash: it was edited' },
    ANCHOR_MISMATCH: { description: 'The event differs from its signed anchor: it (or the chain before it) was rewritten and rehashed' },
    ANCHORED_EVENT_MISSING: { description: 'An anchored event is gone: the tail was cut or the event deleted' },
    ANCHOR_SIGNATURE_INVALID: { description: 'An anchor is not signed by this server\'s key' },
  },
});

@ObjectType({ description: 'One break of the audit chain' })
export class AuditChainBreak {
  @Field(() => ID) seq!: string;
  @Field(() => AuditChainBreakKind) kind!: AuditChainBreakKind;
  @Field(() => String) reason!: string;
}

@ObjectType({ description: 'A signed checkpoint of the audit chain\'s head, kept outside the audit table (and in the object store)' })
export class AuditAnchor {
  @Field(() => ID, { description: 'Seq of the newest event at the time' }) seq!: string;
  @Field(() => String, { description: 'Hash of that event' }) hash!: string;
  @Field(() => Date) createdAt!: Date;
  @Field(() => String, { nullable: true, description: 'Why it was taken (interval, on demand, ...)' }) reason!: string | null;
  @Field(() => String, { description: 'SHA-256 of the signing public key' }) keyId!: string;
  @Field(() => String, { nullable: true, description: 'Ed25519 signature (base64) of {seq, hash, createdAt, keyId} as canonical JSON' }) signature!: string | null;
  @Field(() => String, { nullable: true, description: 'The signing public key (PEM)' }) publicKey!: string | null;
  @Field(() => String, { nullable: true, description: 'Key of its copy in the object store' }) objectKey!: string | null;
}

@ObjectType()
export class AuditChainVerification {
  @Field(() => Boolean) ok!: boolean;
  @Field(() => Int, { description: 'Events verified before the first broken link (or all of them)' }) checked!: number;
  @Field(() => Int, { description: 'Events read in all' }) examined!: number;
  @Field(() => ID, { nullable: true }) firstBrokenSeq!: string | null;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => [AuditChainBreak], { description: 'Every break found, in chain order (at most 100; breakCount has the total)' }) breaks!: AuditChainBreak[];
  @Field(() => Int) breakCount!: number;
  @Field(() => AuditAnchor, { nullable: true, description: 'The newest validly signed anchor: the chain up to it is vouched for; events after it are not yet' })
  anchor!: AuditAnchor | null;
  @Field(() => Int, { description: 'Anchors compared (table rows and the object store copy)' }) anchorsChecked!: number;
}
