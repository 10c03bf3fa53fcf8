// The HTTP application: express 5 + Apollo Server 5 + graphql-upload, health endpoints and
// request logging. Used by the server entry point and by the tests (on an ephemeral port).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type NextFunction, type Request, type Response } from 'express';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { AppError, boundMessage, dependencyUnavailable, ErrorCode, toClientError } from './errors.js';
import { dependencyFault, RETRY_AFTER_SECONDS, withDeadline } from './faults.js';
import { getOperationAST, GraphQLError, type GraphQLFormattedError, parse, specifiedRules, validate, type ValidationRule } from 'graphql';
import type { GraphQLContext } from './graphql/context.js';
import { operationLimits } from './graphql/limits.js';
import { createLoaders } from './graphql/loaders.js';
import { MultipartError, parseMultipart, uploadCeiling } from './graphql/multipart.js';
import { getSchema } from './graphql/schema.js';
import { ReadAudit } from './modules/audit/read-audit.js';
import { NO_KEY_MESSAGE } from './modules/auth/authorize.js';
import type { Principal } from './modules/auth/roles.js';
import type { Services } from './services.js';

const READY_CHECK_TIMEOUT_MS = 3_000;
/** Apollo's CSRF prevention accepts multipart requests only with one of these headers. */
const PREFLIGHT_HEADERS = ['apollo-require-preflight', 'x-apollo-operation-name'];

export interface RunningApp {
  url: string;
  wsUrl: string;
  httpServer: http.Server;
  stop(): Promise<void>;
}

declare module 'express-serve-static-core' {
  interface Request {
    requestId?: string;
    /** The caller, authenticated once per HTTP request before its body is read. */
    auth?: { principal: Principal | null; authError: AppError | null };
  }
}

async function authenticate(services: Services, header: string | undefined): Promise<{ principal: Principal | null; authError: AppError | null }> {
  if (!header) return { principal: null, authError: null };
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) return { principal: null, authError: new AppError('UNAUTHENTICATED', 'The Authorization header must be "Bearer <API key>"') };
  try {
    return { principal: await services.apiKeys.authenticate(match[1]), authError: null };
  } catch (err) {
    if (err instanceof AppError) return { principal: null, authError: err };
    throw err;
  }
}

export async function createApp(services: Services, options: { port?: number; host?: string } = {}): Promise<RunningApp> {
  const { config, logger } = services;
  const app = express();
  const httpServer = http.createServer(app);
  app.disable('x-powered-by');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.header('x-request-id');
    req.requestId = incoming && /^[\w.-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('x-request-id', req.requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      logger.info('request', {
        requestId: req.requestId,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    // Each check is bounded, so that a dependency that does not answer at all is reported as down.
    const check = (name: string, probe: Promise<unknown>) =>
      withDeadline(probe, READY_CHECK_TIMEOUT_MS, () => new Error(`no answer within ${READY_CHECK_TIMEOUT_MS} ms`)).then(() => 'ok', (e: Error) => e.message);
    const [database, objectStore] = await Promise.all([check('database', services.db.$queryRaw`SELECT 1`), check('objectStore', services.store.ping())]);
    const checks: Record<string, string> = { database, objectStore };
    const ready = Object.values(checks).every((v) => v === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });

  const schema = await getSchema();
  /**
   * The caller behind the Authorization header. When the key is not cached and the database is
   * down, the failure is logged under the request id and answered as SERVICE_UNAVAILABLE (503).
   */
  const resolveAuth = async (requestId: string, authorization: string | undefined): Promise<NonNullable<Request['auth']>> => {
    try {
      return await authenticate(services, authorization);
    } catch (err) {
      const dependency = dependencyFault(err);
      logger.child({ requestId }).error('could not build the request context', { error: err, dependency });
      if (dependency) throw dependencyUnavailable(dependency);
      throw err;
    }
  };
  const contextFor = async (requestId: string, authorization: string | undefined, known?: Request['auth'], idempotencyKey?: string): Promise<GraphQLContext> => {
    const auth = known ?? (await resolveAuth(requestId, authorization));
    // A copy per request (the key cache shares principals between requests) that carries the
    // request id into every audit event it causes.
    const principal = auth.principal ? { ...auth.principal, requestId } : null;
    const readAudit = principal ? new ReadAudit(services.audit, services.sql, principal) : null;
    return { requestId, principal, authError: auth.authError, services, loaders: createLoaders(services.db), logger: logger.child({ requestId }), idempotencyKey, readAudit };
  };
  const { maxErrors, maxErrorMessageChars } = config.graphql;
  const bounded = (e: GraphQLFormattedError): GraphQLFormattedError => ({ ...e, message: boundMessage(e.message, maxErrorMessageChars) });
  /** At most `maxErrors` errors in a response: the last one says how many more there were. */
  const capErrors = <T extends GraphQLFormattedError>(errors: readonly T[]): T[] => {
    if (errors.length <= maxErrors) return [...errors];
    const kept = errors.slice(0, maxErrors - 1);
    const omitted = errors.length - kept.length;
    return [...kept, { message: `${omitted} more errors were left out`, extensions: { code: errors[maxErrors - 1].extensions?.code ?? ErrorCode.BAD_REQUEST, omittedErrors: omitted } } as unknown as T];
  };

  // Subscriptions (graphql-ws) on the same port and path; the key goes in connectionParams.
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  // The same error model as over HTTP: codes kept, internal errors masked and logged.
  const clientErrors = (errors: readonly GraphQLError[], context: GraphQLContext | undefined) =>
    capErrors(
      errors.map((e) => {
        const { formatted, internal } = toClientError(e.toJSON(), e);
        if (internal === undefined) return bounded(formatted);
        (context?.logger ?? logger).error('internal error', { error: internal, path: e.path });
        return { ...formatted, extensions: { ...formatted.extensions, requestId: context?.requestId } };
      }),
    );
  const limits = operationLimits(schema, config.graphql);
  const validationRules = [...specifiedRules, ...limits.validationRules] as ValidationRule[];
  const wsCleanup = useServer(
    {
      schema,
      // The same limits as over HTTP: tokens, shape rules, introspection, variables and cost.
      onSubscribe: async (ctx, _id, payload) => {
        const params = (ctx.connectionParams ?? {}) as Record<string, unknown>;
        const header = (params.authorization ?? params.Authorization ?? ctx.extra.request.headers.authorization) as string | undefined;
        // Parse and validation errors get the codes Apollo gives them over HTTP.
        const coded = (e: GraphQLError, code: string) => (e.extensions.code ? e : new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code } }));
        try {
          // Inside the try: an outage while authenticating is answered as SERVICE_UNAVAILABLE.
          const contextValue = await contextFor(randomUUID(), header);
          let document;
          try {
            document = parse(payload.query, limits.parseOptions);
          } catch (err) {
            if (err instanceof GraphQLError) return [coded(err, 'GRAPHQL_PARSE_FAILED')];
            throw err;
          }
          const errors = validate(schema, document, validationRules);
          if (errors.length) return errors.map((e) => coded(e, 'GRAPHQL_VALIDATION_FAILED'));
          const operation = getOperationAST(document, payload.operationName);
          if (!operation) return [new GraphQLError('Name the operation to run (operationName)', { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })];
          const variables = (payload.variables ?? {}) as Record<string, unknown>;
          limits.check({ document, operation, variables, operationName: payload.operationName ?? undefined, principal: contextValue.principal, transport: 'websocket' });
          return { schema, document, operationName: payload.operationName, variableValues: variables, contextValue };
        } catch (err) {
          if (err instanceof GraphQLError) return [err];
          throw err;
        }
      },
      onNext: (_ctx, _id, _payload, args, result) =>
        result.errors ? { ...result, errors: clientErrors(result.errors, args.contextValue as GraphQLContext) } : undefined,
      onError: (_ctx, _id, _payload, errors) => clientErrors(errors, undefined),
    },
    wsServer,
  );

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    csrfPrevention: true,
    validationRules: limits.validationRules as never,
    parseOptions: limits.parseOptions,
    allowBatchedHttpRequests: false,
    // The entry points own shutdown (HTTP, worker, queue, database, in that order).
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    plugins: [
      ...limits.plugins,
      ApolloServerPluginDrainHttpServer({ httpServer }),
      { serverWillStart: async () => ({ drainServer: async () => void (await wsCleanup.dispose()) }) },
      {
        // Internal errors are logged with the request's own logger (so with its request id), and
        // the masked error tells the client that id.
        requestDidStart: async () => ({
          didEncounterErrors: async ({ contextValue, errors }) => {
            for (const e of errors) {
              const { internal, fault, formatted } = toClientError(e.toJSON(), e);
              const log = contextValue?.logger ?? logger;
              if (internal !== undefined) log.error('internal error', { error: internal, path: e.path });
              if (fault !== undefined) log.warn('dependency unavailable', { dependency: formatted.extensions?.dependency, error: fault, path: e.path });
            }
          },
          willSendResponse: async ({ contextValue, response }) => {
            if (response.body.kind !== 'single') return;
            const result = response.body.singleResult;
            if (result.errors) result.errors = capErrors(result.errors);
            const errors = result.errors ?? [];
            // An outage is retryable: HTTP 503 with Retry-After, so that clients and proxies can tell.
            const outage = errors.find((e) => e.extensions?.code === ErrorCode.SERVICE_UNAVAILABLE && e.extensions?.dependency);
            if (outage) {
              response.http.status = 503;
              response.http.headers.set('retry-after', String(outage.extensions?.retryAfterSeconds ?? RETRY_AFTER_SECONDS));
            }
            if (!contextValue?.requestId) return;
            for (const e of errors) {
              if (e.extensions?.code === 'INTERNAL_SERVER_ERROR' || outage === e) (e.extensions as Record<string, unknown>).requestId = contextValue.requestId;
            }
          },
        }),
      },
    ],
    formatError: (formatted, error) => bounded(toClientError(formatted, error).formatted),
  });
  await apollo.start();

  // The caller is known before the body is read, so that refused multipart requests spool nothing.
  const authenticateRequest = async (req: Request, _res: Response, next: NextFunction) => {
    req.auth = await resolveAuth(req.requestId ?? randomUUID(), req.header('authorization'));
    next();
  };
  const multipart = async (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('multipart/form-data')) return next();
    if (!PREFLIGHT_HEADERS.some((h) => req.header(h))) {
      throw new MultipartError(400, ErrorCode.BAD_REQUEST, 'Multipart requests need an "Apollo-Require-Preflight" (any value) or "X-Apollo-Operation-Name" header (CSRF prevention)');
    }
    const principal = req.auth?.principal;
    if (!principal) throw new MultipartError(401, ErrorCode.UNAUTHENTICATED, req.auth?.authError?.message ?? NO_KEY_MESSAGE);
    const ceiling = uploadCeiling(principal.role, config);
    if (ceiling === 0) throw new MultipartError(403, ErrorCode.FORBIDDEN, `The ${principal.role} role has no operation that takes files`);
    req.body = await parseMultipart(req, res, { maxFileBytes: ceiling, maxFiles: config.uploads.maxFiles, tempDir: config.uploadTempDir, memoryMaxBytes: config.uploadMemoryMaxBytes });
    next();
  };
  app.use(
    '/graphql',
    authenticateRequest,
    multipart,
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: ({ req }) => contextFor(req.requestId ?? randomUUID(), req.header('authorization'), req.auth, req.header('idempotency-key')),
    }),
  );

  // Errors raised before GraphQL runs (multipart protocol, refused uploads, bad JSON) keep the
  // GraphQL error shape and a stable code. A refused request's unread body is not waited for:
  // the connection closes with the answer.
  app.use((err: Error & { status?: number; expose?: boolean }, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent || res.destroyed) return void res.destroy();
    if (!req.complete) res.setHeader('connection', 'close');
    const send = (status: number, message: string, extensions: Record<string, unknown>) =>
      res.status(status).json({ errors: [{ message: boundMessage(message, maxErrorMessageChars), extensions: { ...extensions, requestId: req.requestId } }] });
    if (err instanceof AppError) {
      // Refused uploads (MultipartError carries its status) and outages found while authenticating.
      const outage = err.code === ErrorCode.SERVICE_UNAVAILABLE;
      if (outage) res.setHeader('retry-after', String(err.extensions.retryAfterSeconds ?? RETRY_AFTER_SECONDS));
      const status = (err as AppError & { status?: number }).status ?? (outage ? 503 : 400);
      return void send(status === 499 ? 400 : status, err.message, err.extensions);
    }
    const status = err.status ?? 500;
    if (status >= 500) {
      logger.error('request failed', { requestId: req.requestId, error: err });
      return void send(500, 'Internal server error', { code: ErrorCode.INTERNAL_SERVER_ERROR });
    }
    const code = status === 413 ? ErrorCode.PAYLOAD_TOO_LARGE : status === 415 ? ErrorCode.UNSUPPORTED_MEDIA_TYPE : ErrorCode.BAD_REQUEST;
    send(status, err.expose === false ? 'Bad request' : err.message, { code });
  });

  await new Promise<void>((resolve) => httpServer.listen(options.port ?? config.port, options.host ?? config.host, resolve));
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    httpServer,
    stop: async () => {
      await apollo.stop();
      if (httpServer.listening) await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
