// One error model for the whole API. Services throw AppError with a stable code; anything else
// that reaches the client is masked as INTERNAL_SERVER_ERROR and logged with the request id.
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
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

/** Codes that GraphQL itself or Apollo produce for a malformed request; safe to show. */
const CLIENT_SAFE_CODES = new Set<string>([
  ...Object.values(ErrorCode),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
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
  // node-postgres (plain SQL paths): invalid_text_representation, e.g. a malformed UUID.
  if (e?.code === '22P02' && e.name !== 'PrismaClientKnownRequestError') return badInput('A value in the request is malformed (ids are UUIDs)');
  if (e?.name !== 'PrismaClientKnownRequestError') return undefined;
  if (e.code === 'P2023' || e.code === 'P2007') return badInput('A value in the request is malformed (ids are UUIDs)');
  if (e.code === 'P2025') return new AppError('NOT_FOUND', 'The record the request refers to does not exist');
  return undefined;
}

/**
 * Apollo formatError: keeps AppErrors and GraphQL's own request errors, masks everything else.
 * `onInternal` logs the original error (with its stack) server side.
 */
export function formatGraphQLError(
  formatted: GraphQLFormattedError,
  error: unknown,
  onInternal: (err: unknown) => void,
): GraphQLFormattedError {
  const original = (error as { originalError?: unknown })?.originalError ?? error;
  if (original instanceof AppError) {
    return { message: original.message, path: formatted.path, locations: formatted.locations, extensions: { ...original.extensions } };
  }
  const prismaMapped = fromPrismaError(original);
  if (prismaMapped) return { message: prismaMapped.message, path: formatted.path, locations: formatted.locations, extensions: { ...prismaMapped.extensions } };
  const validation = validationMessage(original);
  if (validation) return { message: validation, path: formatted.path, locations: formatted.locations, extensions: { code: ErrorCode.BAD_USER_INPUT } };
  const code = formatted.extensions?.code as string | undefined;
  // Errors raised by graphql-js validation/parsing have no originalError and are the client's own.
  if (code && CLIENT_SAFE_CODES.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
    const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  if (!(error as { originalError?: unknown })?.originalError && error instanceof GraphQLError && !code) {
    return { message: formatted.message, locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.BAD_USER_INPUT } };
  }
  onInternal(original);
  return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
}
