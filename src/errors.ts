// One error model for the whole API. Services throw AppError with a stable code; anything else
// that reaches the client is masked as INTERNAL_SERVER_ERROR and logged with the request id.
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { type Dependency, DEPENDENCY_NAMES, dependencyFault, RETRY_AFTER_SECONDS } from './faults.js';
import { ImageDecodeError } from './ml/errors.js';

export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  /** A malformed request as a whole (multipart protocol, persisted queries, subscriptions over HTTP). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** Too many calls of an expensive operation; `extensions.retryAfterSeconds` says when to retry. */
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class AppError extends GraphQLError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message, { extensions: { code, ...(details ?? {}) } });
    this.code = code;
  }
}

export const badInput = (message: string, details?: Record<string, unknown>) => new AppError('BAD_USER_INPUT', message, details);
export const notFound = (what: string, id: string) => new AppError('NOT_FOUND', `${what} ${id} does not exist`, { entity: what, id });
export const conflict = (message: string, details?: Record<string, unknown>) => new AppError('CONFLICT', message, details);
export const forbidden = (message: string) => new AppError('FORBIDDEN', message);
export const unauthenticated = (message: string) => new AppError('UNAUTHENTICATED', message);
export const unavailable = (message: string) => new AppError('SERVICE_UNAVAILABLE', message);
export const badRequest = (message: string) => new AppError('BAD_REQUEST', message);

/** Error messages may quote a caller's input: they are cut to `max` characters. */
export function boundMessage(message: string, max: number): string {
  return message.length <= max ? message : `${message.slice(0, max - 30)}… (${message.length - max + 30} more characters)`;
}

/**
 * An outage of a dependency, as the client sees it: SERVICE_UNAVAILABLE naming the dependency,
 * with how long to wait; the HTTP layer answers 503 with Retry-After (app.ts). `http` is read by
 * Apollo where an error ends a request before execution (context creation).
 */
export function dependencyUnavailable(dependency: Dependency): AppError {
  const error = new AppError('SERVICE_UNAVAILABLE', `The ${DEPENDENCY_NAMES[dependency]} is unavailable at the moment; retry in a few seconds`, {
    dependency,
    retryAfterSeconds: RETRY_AFTER_SECONDS,
  });
  error.extensions.http = { status: 503, headers: new Map([['retry-after', String(RETRY_AFTER_SECONDS)]]) };
  return error;
}

/** An AppError's extensions as a client sees them (without Apollo's `http` instructions). */
const publicExtensions = (error: AppError) => {
  const { http: _http, ...extensions } = error.extensions;
  return extensions;
};

/** Codes that GraphQL itself or Apollo produce for a malformed request; safe to show. */
const CLIENT_SAFE_CODES = new Set<string>([
  ...Object.values(ErrorCode),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** Turns class-validator's ArgumentValidationError into a readable BAD_USER_INPUT. */
function validationMessage(original: unknown): string | undefined {
  const errors = (original as { validationErrors?: Array<{ property: string; constraints?: Record<string, string>; children?: unknown[] }> })
    ?.validationErrors;
  if (!Array.isArray(errors)) return undefined;
  const parts: string[] = [];
  const walk = (list: typeof errors, prefix: string) => {
    for (const e of list) {
      for (const msg of Object.values(e.constraints ?? {})) parts.push(`${prefix}${msg}`);
      if (Array.isArray(e.children) && e.children.length) walk(e.children as typeof errors, `${prefix}${e.property}.`);
    }
  };
  walk(errors, '');
  return parts.length ? `Invalid input: ${parts.join('; ')}` : 'Invalid input';
}

/**
 * Database errors that only a caller's input can cause, by Prisma or PostgreSQL error code
 * (checked by name so this module does not depend on the generated client).
 */
function fromPrismaError(err: unknown): AppError | undefined {
  const e = err as { name?: string; code?: string; meta?: Record<string, unknown> };
  const pgCode = e?.name === 'PrismaClientKnownRequestError'
    ? ((e.meta?.driverAdapterError as { cause?: { originalCode?: string } } | undefined)?.cause?.originalCode)
    : e?.code;
  // PostgreSQL refuses NUL characters in text (22021) and jsonb (22P05): the caller sent them.
  if (pgCode === '22021' || pgCode === '22P05') return badInput('Text in the request contains characters that cannot be stored (such as NUL)');
  // node-postgres (plain SQL paths): invalid_text_representation, e.g. a malformed UUID.
  if (pgCode === '22P02') return badInput('A value in the request is malformed (ids are UUIDs)');
  // Dates and numbers beyond what PostgreSQL stores (e.g. a hand-made cursor in year -100000).
  if (pgCode === '22008' || pgCode === '22009' || pgCode === '22003') return badInput('A date or number in the request is out of range');
  if (e?.name !== 'PrismaClientKnownRequestError') return undefined;
  if (e.code === 'P2023' || e.code === 'P2007') return badInput('A value in the request is malformed (ids are UUIDs)');
  if (e.code === 'P2025') return new AppError('NOT_FOUND', 'The record the request refers to does not exist');
  return undefined;
}

/**
 * The one mapping from any error to what a client may see: AppErrors and request errors keep
 * their code and message; everything else becomes INTERNAL_SERVER_ERROR ("Internal server
 * error"), and `internal` carries the original for the server log. A dependency outage becomes
 * SERVICE_UNAVAILABLE naming the dependency, and `fault` carries the original for the log.
 */
export function toClientError(formatted: GraphQLFormattedError, error: unknown): { formatted: GraphQLFormattedError; internal?: unknown; fault?: unknown } {
  const original = (error as { originalError?: unknown })?.originalError ?? error;
  const at = { path: formatted.path, locations: formatted.locations };
  if (original instanceof AppError) {
    if (original.code === ErrorCode.INTERNAL_SERVER_ERROR) return { formatted: { message: 'Internal server error', ...at, extensions: { code: original.code } }, internal: original };
    return { formatted: { message: original.message, ...at, extensions: publicExtensions(original) } };
  }
  const dependency = dependencyFault(original);
  if (dependency) {
    const outage = dependencyUnavailable(dependency);
    return { formatted: { message: outage.message, ...at, extensions: publicExtensions(outage) }, fault: original };
  }
  // The engine refusing an image (undecodable, too large) is about the caller's image, not a fault.
  if (original instanceof ImageDecodeError) return { formatted: { message: `The image cannot be classified: ${original.message}`, ...at, extensions: { code: ErrorCode.BAD_USER_INPUT } } };
  const dbMapped = fromPrismaError(original);
  if (dbMapped) return { formatted: { message: dbMapped.message, ...at, extensions: { ...dbMapped.extensions } } };
  const validation = validationMessage(original);
  if (validation) return { formatted: { message: validation, ...at, extensions: { code: ErrorCode.BAD_USER_INPUT } } };
  const code = formatted.extensions?.code as string | undefined;
  // Errors raised by graphql-js validation/parsing have no originalError and are the client's own.
  if (code && CLIENT_SAFE_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
    const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    return { formatted: { ...formatted, extensions } };
  }
  if (!(error as { originalError?: unknown })?.originalError && error instanceof GraphQLError && !code) {
    return { formatted: { message: formatted.message, ...at, extensions: { code: ErrorCode.BAD_USER_INPUT } } };
  }
  // Apollo's own request errors (persisted-query misuse and the like) carry an HTTP 4xx but no code.
  const status = (original as GraphQLError | undefined)?.extensions?.http as { status?: number } | undefined;
  if (original instanceof GraphQLError && !original.originalError && status?.status && status.status >= 400 && status.status < 500) {
    return { formatted: { message: formatted.message, ...at, extensions: { code: ErrorCode.BAD_REQUEST } } };
  }
  return { formatted: { message: 'Internal server error', ...at, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } }, internal: original };
}
