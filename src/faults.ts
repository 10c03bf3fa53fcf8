// Which failures are a dependency outage (the database, the object store or an inference worker
// thread went away, for a moment or for longer) rather than a bug or a caller's mistake. An outage is answered
// SERVICE_UNAVAILABLE (HTTP 503 with Retry-After) naming the dependency, so that a client knows to
// retry; anything else stays INTERNAL_SERVER_ERROR.

import { InferenceUnavailableError } from './ml/errors.js';

export type Dependency = 'database' | 'objectStore' | 'inference';

/** How messages name each dependency. */
export const DEPENDENCY_NAMES: Record<Dependency, string> = { database: 'database', objectStore: 'object store', inference: 'inference service' };

/** Seconds a client is told to wait (Retry-After) before retrying after an outage. */
export const RETRY_AFTER_SECONDS = 5;

/** Thrown by the object store (and usable by any client of a dependency) for a transport failure. */
export class DependencyUnavailableError extends Error {
  constructor(readonly dependency: Dependency, override readonly cause: unknown) {
    super(`${DEPENDENCY_NAMES[dependency]} unavailable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'DependencyUnavailableError';
  }
}

/** Socket-level failures (node's errno codes and undici's), whoever the peer was. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET',
]);

/**
 * PostgreSQL SQLSTATEs of an unavailable server: class 08 (connection exception), 57P01-57P03
 * (terminated by an administrator, crash shutdown, cannot connect now), 53300 (too many connections).
 */
const PG_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;

/** node-postgres messages for a connection that broke or could not be made. */
const PG_CONNECTION_MESSAGES = /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Client was closed and is not queryable|terminating connection due to administrator command/i;

/** Prisma's codes (and its pg adapter's error kinds) for an unreachable or lost database. */
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const ADAPTER_UNAVAILABLE = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);

const isSocketError = (e: { code?: unknown; message?: unknown }) =>
  (typeof e.code === 'string' && SOCKET_CODES.has(e.code)) || (typeof e.message === 'string' && /socket hang up|ECONNREFUSED|ECONNRESET/.test(e.message));

/**
 * The dependency whose outage caused `err`, if it was one. Object-store failures are tagged by the
 * object store itself; any other transport failure comes from the database (the only other peer).
 */
export function dependencyFault(err: unknown, depth = 0): Dependency | undefined {
  if (!err || typeof err !== 'object' || depth > 4) return undefined;
  if (err instanceof DependencyUnavailableError) return err.dependency;
  // The engine's own: a dead inference worker thread (the request may be retried).
  if (err instanceof InferenceUnavailableError) return 'inference';
  const e = err as { name?: string; code?: unknown; message?: unknown; meta?: Record<string, unknown>; cause?: unknown; errors?: unknown[] };
  if (typeof e.code === 'string' && (PRISMA_UNAVAILABLE.has(e.code) || PG_UNAVAILABLE.test(e.code))) return 'database';
  if (e.name === 'PrismaClientInitializationError') return 'database';
  const adapter = e.meta?.driverAdapterError as { cause?: { kind?: string; originalCode?: string } } | undefined;
  if (adapter?.cause?.kind && ADAPTER_UNAVAILABLE.has(adapter.cause.kind)) return 'database';
  if (adapter?.cause?.originalCode && PG_UNAVAILABLE.test(adapter.cause.originalCode)) return 'database';
  if (typeof e.message === 'string' && PG_CONNECTION_MESSAGES.test(e.message)) return 'database';
  if (isSocketError(e)) return 'database';
  // AggregateError (e.g. connecting to both ::1 and 127.0.0.1) and wrapped causes.
  for (const inner of Array.isArray(e.errors) ? e.errors : []) {
    const found = dependencyFault(inner, depth + 1);
    if (found) return found;
  }
  return e.cause ? dependencyFault(e.cause, depth + 1) : undefined;
}

/** Whether an object-store client error is a transport failure or a server-side 5xx (not a 404 or a 403). */
export function isTransportFailure(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; statusCode?: number; cause?: unknown; errors?: unknown[] };
  if (!e || typeof e !== 'object') return false;
  if (isSocketError(e)) return true;
  if (typeof e.code === 'string' && ['InternalError', 'ServiceUnavailable', 'SlowDown', 'RequestTimeout'].includes(e.code)) return true;
  if (typeof e.message === 'string' && /Retryable HTTP status: 5\d\d|deadline exceeded/.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isTransportFailure)) return true;
  return e.cause ? isTransportFailure(e.cause) : false;
}

/** Rejects with `onTimeout()` if `promise` has not settled within `ms` (the work itself carries on). */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
