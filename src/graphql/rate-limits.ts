// Per-key rate limits on the expensive mutations (rate-limiter-flexible, in process memory: with
// several API processes each one counts its own calls). A call over the limit is refused before
// it does any work, with RATE_LIMITED and the seconds after which a retry will be accepted.
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { createMethodMiddlewareDecorator } from 'type-graphql';
import type { RateLimits } from '../config.js';
import { AppError, ErrorCode } from '../errors.js';
import type { GraphQLContext } from './context.js';

export type RateLimited = 'classify' | 'explain' | 'upload' | 'training';

const PER_MINUTE: Record<RateLimited, keyof RateLimits> = {
  classify: 'classifyPerMinute',
  explain: 'explainPerMinute',
  upload: 'uploadPerMinute',
  training: 'trainingPerMinute',
};

/** One set of limiters per configuration (so per app instance, and per test app). */
const limiters = new WeakMap<RateLimits, Map<RateLimited, RateLimiterMemory | null>>();

function limiterFor(limits: RateLimits, kind: RateLimited): RateLimiterMemory | null {
  let byKind = limiters.get(limits);
  if (!byKind) limiters.set(limits, (byKind = new Map()));
  if (!byKind.has(kind)) {
    const points = limits[PER_MINUTE[kind]];
    byKind.set(kind, points > 0 ? new RateLimiterMemory({ keyPrefix: kind, points, duration: 60 }) : null);
  }
  return byKind.get(kind)!;
}

/** Counts one call of `kind` for the caller's key; RATE_LIMITED once the minute's budget is spent. */
export async function consumeRateLimit(ctx: GraphQLContext, kind: RateLimited): Promise<void> {
  const limiter = limiterFor(ctx.services.config.rateLimits, kind);
  const keyId = ctx.principal?.keyId;
  if (!limiter || !keyId) return;
  try {
    await limiter.consume(keyId);
  } catch (res) {
    if (!(res instanceof RateLimiterRes)) throw res;
    const retryAfterSeconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    throw new AppError(ErrorCode.RATE_LIMITED, `Too many ${kind} requests for this API key (at most ${limiter.points} a minute); retry in ${retryAfterSeconds} s`, {
      limit: kind,
      perMinute: limiter.points,
      retryAfterSeconds,
    });
  }
}

/** Put on a resolver (below @Authorized) to count its calls against the key's `kind` budget. */
export const RateLimit = (kind: RateLimited) =>
  createMethodMiddlewareDecorator<GraphQLContext>(async ({ context }, next) => {
    await consumeRateLimit(context, kind);
    return next();
  });
