// Limits on the shape of every GraphQL operation, from maintained libraries: GraphQL Armor for
// depth, aliases and directives (and masked field suggestions), graphql-js's parser for tokens,
// graphql-query-complexity for a weighted cost, where heavy fields cost what they cost and lists
// cost per requested item.
// Every limit that trips is a GraphQL validation error (GRAPHQL_VALIDATION_FAILED, HTTP 400) that
// names the limit in `extensions.limit`, before anything runs.
import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { type DocumentNode, GraphQLError, type GraphQLSchema, type OperationDefinitionNode, visit, type ValidationContext } from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import { type ComplexityEstimator, fieldExtensionsEstimator, getComplexity } from 'graphql-query-complexity';
import type { GraphQLLimits } from '../config.js';
import { ErrorCode } from '../errors.js';
import { DEFAULT_PAGE_SIZE } from '../shared/pagination.js';
import type { Principal } from '../modules/auth/roles.js';
import type { GraphQLContext } from './context.js';

/**
 * What one field costs beyond its children, for fields that do far more work than reading a row.
 * verifyAuditChain rereads and rehashes the whole log; comparisons and batch classifications run
 * inference over many images. Any field not listed costs 1.
 */
export const FIELD_COST: Record<string, number> = {
  'Query.verifyAuditChain': 2400,
  'Query.compareModelVersions': 1000,
  'Query.caseReport': 200,
  'Mutation.classifyCaseEvidence': 1000,
  'Mutation.classifyEvidence': 50,
  'Mutation.classifyImage': 50,
  'Mutation.explainPrediction': 200,
  'Mutation.importDatasetArchive': 1000,
  'Mutation.addDatasetImages': 500,
  'Mutation.snapshotDataset': 200,
  'Mutation.startTrainingRun': 100,
};

/** The table above, then a field's own `complexity` (type-graphql's option), then lists by `first`. */
const tableEstimator: ComplexityEstimator = ({ type, field, childComplexity }) => {
  const own = FIELD_COST[`${type.name}.${field.name}`];
  return own === undefined ? undefined : own + childComplexity;
};

/** A page of `first` items (default page size when absent) costs its items' selections that many times. */
const pageEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  if (!field.args.some((a) => a.name === 'first')) return 1 + childComplexity;
  const first = typeof args.first === 'number' && args.first > 0 ? args.first : DEFAULT_PAGE_SIZE;
  return 1 + childComplexity * first;
};

export function limitError(limit: string, message: string, max: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit, max, http: { status: 400 } } });
}

/** Armor's rejections become one reported error per limit, with the limit named. */
const reportAs = (limit: string, max: number) => [
  (ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(limitError(limit, error.message.replace(/^Syntax Error: /, ''), max)),
];

const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);

function usesIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (INTROSPECTION_FIELDS.has(node.name.value)) found = true;
    },
  });
  return found;
}

export interface OperationToCheck {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  variables: Record<string, unknown>;
  operationName?: string;
  principal: Principal | null;
  transport: 'http' | 'websocket';
}

export interface OperationLimits {
  /** For Apollo Server: validation rules, plugins and parse options. */
  validationRules: Array<(ctx: ValidationContext) => unknown>;
  plugins: ApolloServerPlugin<GraphQLContext>[];
  parseOptions: { maxTokens: number };
  /** The checks after validation (transport, introspection, variables, cost); throws a GraphQLError. */
  check(op: OperationToCheck): void;
}

/** The limits for both transports: Apollo over HTTP, graphql-ws over WebSocket (app.ts). */
export function operationLimits(schema: GraphQLSchema, limits: GraphQLLimits): OperationLimits {
  const armor = new ApolloArmor({
    costLimit: { enabled: false }, // the weighted cost below replaces Armor's uniform one
    maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, propagateOnRejection: false, onReject: reportAs('depth', limits.maxDepth) },
    maxAliases: { n: limits.maxAliases, propagateOnRejection: false, onReject: reportAs('aliases', limits.maxAliases) },
    maxDirectives: { n: limits.maxDirectives, propagateOnRejection: false, onReject: reportAs('directives', limits.maxDirectives) },
    // Armor's Apollo token plugin throws from parsingDidStart, which Apollo answers with HTTP 500;
    // graphql-js's own parser limit (parseOptions below) gives a 400 GRAPHQL_PARSE_FAILED instead.
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: true, mask: '' },
  }).protect();

  const estimators = [tableEstimator, fieldExtensionsEstimator(), pageEstimator];
  const check = ({ document, operation, variables, operationName, principal, transport }: OperationToCheck) => {
    // Subscriptions are served over WebSocket only; over HTTP they would never send events.
    if (transport === 'http' && operation.operation === 'subscription') {
      throw new GraphQLError('Subscriptions are served over WebSocket (graphql-ws) at this path, not over HTTP POST', {
        extensions: { code: ErrorCode.BAD_REQUEST, http: { status: 400 } },
      });
    }
    // The schema is for callers with a key; anonymous callers learn nothing from it.
    if (!principal && usesIntrospection(document)) {
      throw new GraphQLError('Introspection needs an API key: send "Authorization: Bearer <key>"', {
        extensions: { code: ErrorCode.UNAUTHENTICATED, http: { status: 401 } },
      });
    }
    // Variables that do not fit the operation are refused here, at their first error: both
    // getComplexity (no error limit) and execution (50 errors) would print the whole value
    // into every message, which for 40,000 unknown input keys took minutes and megabytes.
    const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: 1 });
    if (coerced.errors) {
      throw new GraphQLError(coerced.errors[0].message, { extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } } });
    }
    const cost = getComplexity({ schema, query: document, variables, operationName, estimators });
    if (cost > limits.maxCost) {
      throw limitError('cost', `The operation costs ${cost}, above the limit of ${limits.maxCost}; ask for fewer or smaller pages, or split it`, limits.maxCost);
    }
  };
  const checkPlugin: ApolloServerPlugin<GraphQLContext> = {
    requestDidStart: async () => ({
      didResolveOperation: async ({ request, document, operation, contextValue }) => {
        if (!operation) return;
        check({ document, operation, variables: request.variables ?? {}, operationName: request.operationName ?? undefined, principal: contextValue.principal, transport: 'http' });
      },
    }),
  };
  return {
    validationRules: armor.validationRules,
    plugins: [...armor.plugins, checkPlugin] as ApolloServerPlugin<GraphQLContext>[],
    parseOptions: { maxTokens: limits.maxTokens },
    check,
  };
}
