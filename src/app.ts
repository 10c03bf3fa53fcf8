// The HTTP application: express 5 + Apollo Server 5 + graphql-upload, health endpoints and
// request logging. Used by the server entry point and by the tests (on an ephemeral port).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type NextFunction, type Request, type Response } from 'express';
import graphqlUploadExpress from 'graphql-upload/graphqlUploadExpress.mjs';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { AppError, dependencyUnavailable, ErrorCode, toClientError } from './errors.js';
import { dependencyFault, RETRY_AFTER_SECONDS, withDeadline } from './faults.js';
import type { GraphQLError } from 'graphql';
import type { GraphQLContext } from './graphql/context.js';
import { createLoaders } from './graphql/loaders.js';
import { getSchema } from './graphql/schema.js';
import type { Principal } from './modules/auth/roles.js';
import type { Services } from './services.js';

const PARSER_LIMIT_SLACK = 1024 * 1024;
const READY_CHECK_TIMEOUT_MS = 3_000;

export interface RunningApp {
  url: string;
  wsUrl: string;
  httpServer: http.Server;
  stop(): Promise<void>;
}

declare module 'express-serve-static-core' {
  interface Request {
    requestId?: string;
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
  const contextFor = async (requestId: string, authorization: string | undefined, idempotencyKey?: string): Promise<GraphQLContext> => {
    const requestLogger = logger.child({ requestId });
    try {
      const { principal, authError } = await authenticate(services, authorization);
      return { requestId, principal, authError, services, loaders: createLoaders(services.db), logger: requestLogger, idempotencyKey };
    } catch (err) {
      // The context could not be built (e.g. the key is not cached and the database is down):
      // logged under the request id, and an outage is answered 503 rather than a bare 500.
      const dependency = dependencyFault(err);
      requestLogger.error('could not build the request context', { error: err, dependency });
      if (dependency) throw dependencyUnavailable(dependency);
      throw err;
    }
  };

  // Subscriptions (graphql-ws) on the same port and path; the key goes in connectionParams.
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  // The same error model as over HTTP: codes kept, internal errors masked and logged.
  const clientErrors = (errors: readonly GraphQLError[], context: GraphQLContext | undefined) =>
    errors.map((e) => {
      const { formatted, internal } = toClientError(e.toJSON(), e);
      if (internal === undefined) return formatted;
      (context?.logger ?? logger).error('internal error', { error: internal, path: e.path });
      return { ...formatted, extensions: { ...formatted.extensions, requestId: context?.requestId } };
    });
  const wsCleanup = useServer(
    {
      schema,
      context: (ctx) => {
        const params = (ctx.connectionParams ?? {}) as Record<string, unknown>;
        const header = (params.authorization ?? params.Authorization ?? ctx.extra.request.headers.authorization) as string | undefined;
        return contextFor(randomUUID(), header);
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
    // The entry points own shutdown (HTTP, worker, queue, database, in that order).
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: false,
    plugins: [
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
            const errors = response.body.singleResult.errors ?? [];
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
    formatError: (formatted, error) => toClientError(formatted, error).formatted,
  });
  await apollo.start();

  app.use(
    '/graphql',
    // The parser's limit lies above the largest any field accepts (dataset archives), so that
    // each resolver's own limit, enforced while reading (graphql/upload.ts), always trips first
    // and answers with a clear PAYLOAD_TOO_LARGE; the parser's is only the last line of defence.
    graphqlUploadExpress({ maxFileSize: Math.max(config.uploads.maxFileBytes, config.archive.maxBytes) + PARSER_LIMIT_SLACK, maxFiles: config.uploads.maxFiles }),
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: ({ req }) => contextFor(req.requestId ?? randomUUID(), req.header('authorization'), req.header('idempotency-key')),
    }),
  );

  // Errors raised before GraphQL runs (multipart parsing, too many files, bad JSON) keep the
  // GraphQL error shape and a stable code.
  app.use((err: Error & { status?: number; expose?: boolean }, req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? 500;
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_USER_INPUT';
    if (status >= 500) logger.error('request failed', { requestId: req.requestId, error: err });
    const message = status >= 500 ? 'Internal server error' : err.expose === false ? 'Bad request' : err.message;
    res.status(status).json({ errors: [{ message, extensions: { code, requestId: req.requestId } }] });
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
