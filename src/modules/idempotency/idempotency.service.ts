// Idempotent writes. A client may send an `Idempotency-Key` header with an upload or a
// classification; the key (per API key) is taken inside the write's own transaction and keeps the
// ids of what it created, so it exists exactly when the write committed. The same key with the
// same request (operation, arguments and file bytes) gets the original result again, instead of
// CONFLICT or a second record; the same key with a different request is IDEMPOTENCY_KEY_REUSED.
// Keys are forgotten after IDEMPOTENCY_TTL_HOURS (by the maintenance sweep).
import { createHash } from 'node:crypto';
import { isUniqueViolation, type Sql, type SqlDatabase } from '../../db/sql.js';
import { AppError, badInput } from '../../errors.js';
import type { Principal } from '../auth/roles.js';
import { claimIdempotency, completeIdempotency, deleteIdempotencyBefore, findIdempotency, IDEMPOTENCY_PRIMARY_KEY } from './idempotency.store.js';

const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

export interface IdempotentRequest {
  apiKeyId: string;
  key: string;
  operation: string;
  requestHash: string;
}

/** Handed to the write: call `claim` first in its transaction and `complete` with the ids it created last. */
export interface IdempotencyClaim {
  claim(sql: Sql): Promise<void>;
  complete(sql: Sql, result: Record<string, unknown>): Promise<void>;
}

/** Hashes the request: the operation, then each argument (buffers by their bytes), unambiguously. */
export function requestHash(operation: string, parts: Array<string | number | boolean | Buffer | null | undefined>): string {
  const hash = createHash('sha256').update(operation);
  for (const part of parts) {
    if (Buffer.isBuffer(part)) hash.update(`\nbytes:${part.length}:`).update(part);
    else hash.update(`\n${JSON.stringify(part ?? null)}`);
  }
  return hash.digest('hex');
}

export class IdempotencyService {
  constructor(private readonly sql: SqlDatabase) {}

  /** The request's identity, or undefined without a header. The key must be 1 to 200 printable ASCII characters. */
  request(principal: Principal, key: string | undefined, operation: string, parts: Parameters<typeof requestHash>[1]): IdempotentRequest | undefined {
    if (key === undefined) return undefined;
    if (!KEY_PATTERN.test(key)) throw badInput('The Idempotency-Key header must be 1 to 200 printable ASCII characters without spaces (a UUID is a good choice)');
    return { apiKeyId: principal.keyId, key, operation, requestHash: requestHash(operation, parts) };
  }

  /**
   * Runs `work` once per key: a key already used for this request gives `replay(result)`; one used
   * for another request is refused; a concurrent duplicate waits for the first and replays it.
   */
  async run<R>(request: IdempotentRequest | undefined, replay: (result: Record<string, unknown>) => Promise<R>, work: (claim?: IdempotencyClaim) => Promise<R>): Promise<R> {
    if (!request) return work(undefined);
    const prior = await this.lookup(request);
    if (prior) return replay(prior);
    const claim: IdempotencyClaim = {
      claim: (sql) => claimIdempotency(sql, request.apiKeyId, request.key, request.operation, request.requestHash),
      complete: (sql, result) => completeIdempotency(sql, request.apiKeyId, request.key, result),
    };
    try {
      return await work(claim);
    } catch (err) {
      if (!isUniqueViolation(err, IDEMPOTENCY_PRIMARY_KEY)) throw err;
      const winner = await this.lookup(request);
      if (!winner) throw err;
      return replay(winner);
    }
  }

  private async lookup(request: IdempotentRequest): Promise<Record<string, unknown> | undefined> {
    const stored = await findIdempotency(this.sql, request.apiKeyId, request.key);
    if (!stored) return undefined;
    if (stored.operation !== request.operation || stored.requestHash !== request.requestHash) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', `The Idempotency-Key "${request.key}" was already used for a different request (${stored.operation}); use a new key for a new request`, {
        operation: stored.operation,
      });
    }
    return stored.result;
  }

  /** Forgets keys older than `ttlMs`; returns how many. */
  expire(ttlMs: number): Promise<number> {
    return deleteIdempotencyBefore(this.sql, new Date(Date.now() - ttlMs));
  }
}
