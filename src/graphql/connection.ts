// Relay-style connections: each list type is `nodes` + `pageInfo`, declared per node type as a small
// class. (type-graphql 2 can build them from one generic class factory instead; not done yet.)
import { Field, ObjectType } from 'type-graphql';
import type { Page } from '../shared/pagination.js';

@ObjectType()
export class PageInfo {
  @Field(() => String, { nullable: true, description: 'Pass as `after` to get the next page' })
  endCursor!: string | null;

  @Field(() => Boolean)
  hasNextPage!: boolean;
}

export const toConnection = <T>(page: Page<T>) => ({ nodes: page.nodes, pageInfo: { endCursor: page.endCursor, hasNextPage: page.hasNextPage } });
