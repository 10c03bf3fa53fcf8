import { TEXT_LIMITS, textLimit } from '../../graphql/text-limits.js';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { MaxLength, MinLength } from 'class-validator';
import { Role } from './roles.js';

registerEnumType(Role, { name: 'Role', description: 'INVESTIGATOR: cases and classification; ADMIN: datasets, training, registry, keys; AUDITOR: reads everything, changes nothing' });

@ObjectType({ description: 'An API key. The secret itself is never stored, only its SHA-256.' })
export class ApiKey {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => Role) role!: Role;
  @Field(() => String, { description: 'First characters of the key, to recognise it' }) prefix!: string;
  @Field(() => Date) createdAt!: Date;
  @Field(() => Date, { nullable: true }) revokedAt!: Date | null;
}

@ObjectType({ description: 'A new key. `secret` is shown this once and cannot be recovered.' })
export class CreatedApiKey {
  @Field(() => ApiKey) key!: ApiKey;
  @Field(() => String) secret!: string;
}

@InputType()
export class CreateApiKeyInput {
  @Field(() => String, { description: textLimit('name') }) @MinLength(1) @MaxLength(TEXT_LIMITS.name) name!: string;
  @Field(() => Role) role!: Role;
}

@ObjectType({ description: 'The caller, as identified by its API key' })
export class Viewer {
  @Field(() => ID) keyId!: string;
  @Field(() => String) name!: string;
  @Field(() => Role) role!: Role;
}
