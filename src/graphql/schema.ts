// Builds the executable schema from the resolvers of every module. The SDL is also written to
// schema.graphql at the repository root (test/graphql/schema-file.test.ts fails when it is stale).
import 'reflect-metadata';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, type NonEmptyArray } from 'type-graphql';
import { PROJECT_ROOT } from '../shared/project-root.js';
import { ApiKeyResolver } from '../modules/auth/api-key.resolver.js';
import { AuditResolver } from '../modules/audit/audit.resolver.js';
import { CaseMemberResolver, CaseResolver } from '../modules/cases/case.resolver.js';
import { CaseExportResolver } from '../modules/exports/case-export.resolver.js';
import { DatasetItemResolver, DatasetResolver, DatasetVersionResolver } from '../modules/datasets/dataset.resolver.js';
import { EvidenceResolver } from '../modules/evidence/evidence.resolver.js';
import { ImageResolver } from '../modules/images/image.resolver.js';
import { EvidencePredictionsResolver, PredictionExplanationResolver, PredictionResolver, PredictionReviewResolver } from '../modules/predictions/prediction.resolver.js';
import { ModelStageChangeResolver, PromotionRequestResolver, RegistryResolver } from '../modules/registry/registry.resolver.js';
import { TrainingResolver } from '../modules/training/training.resolver.js';
import { authChecker } from './auth-checker.js';
import { textArgumentLimits } from './text-limits.js';

export const SCHEMA_FILE = path.join(PROJECT_ROOT, 'schema.graphql');

const resolvers: NonEmptyArray<Function> = [ApiKeyResolver, AuditResolver, CaseResolver, CaseMemberResolver, CaseExportResolver, DatasetResolver, DatasetVersionResolver, DatasetItemResolver, EvidenceResolver, ImageResolver, PredictionResolver, PredictionExplanationResolver, PredictionReviewResolver, EvidencePredictionsResolver, RegistryResolver, ModelStageChangeResolver, PromotionRequestResolver, TrainingResolver];

/**
 * Every subscription here has its own `subscribe` function over the process's EventBus (which
 * also carries events from other processes), so type-graphql's topic-based PubSub is never used.
 */
const noTopicPubSub = {
  publish: () => undefined,
  subscribe: (): never => {
    throw new Error('topic subscriptions are not used; give @Subscription a subscribe function');
  },
};

let built: Promise<GraphQLSchema> | undefined;

/** The schema is the same for every app instance in a process, so it is built once. */
export function getSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({ resolvers, authChecker, authMode: 'error', validate: { forbidUnknownValues: false }, pubSub: noTopicPubSub, globalMiddlewares: [textArgumentLimits] });
  return built;
}

export async function printSchemaSdl(): Promise<string> {
  const header = '# Generated from the type-graphql resolvers by `npm run schema:emit`. Do not edit by hand.\n\n';
  return header + printSchema(lexicographicSortSchema(await getSchema())) + '\n';
}

export async function emitSchemaFile(file = SCHEMA_FILE): Promise<void> {
  await fs.writeFile(file, await printSchemaSdl());
}
