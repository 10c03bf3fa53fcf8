// API keys: random secrets shown once; only their SHA-256 is stored. A high-entropy key needs no
// slow hash, and a plain digest lets us find the row with one indexed lookup per request.
import { randomBytes } from 'node:crypto';
import type { Db } from '../../db/prisma.js';
import { sqlOfPrisma } from '../../db/sql.js';
import { badInput, conflict, notFound, unauthenticated } from '../../errors.js';
import { sha256Hex } from '../../shared/hash.js';
import { CHANNELS, type EventBus } from '../../events/event-bus.js';
import type { AuditService } from '../audit/audit.service.js';
import { allKeys, countActiveAdmins, findKey, insertKey, keyBySecretHash, markRevoked, recordKeyUse } from './api-key.store.js';
import { type Actor, actorKeyId, type Principal, Role, type RoleName } from './roles.js';

const KEY_PREFIX = 'eyk_';

export const hashSecret = (secret: string): string => sha256Hex(secret);

export function generateKey(): { secret: string; prefix: string; secretHash: string } {
  const secret = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { secret, prefix: secret.slice(0, 12), secretHash: hashSecret(secret) };
}

export interface CreatedKey {
  id: string;
  name: string;
  role: RoleName;
  prefix: string;
  createdAt: Date;
  /** The only time the secret exists outside the caller's hands. */
  secret: string;
}

export class ApiKeyService {
  /**
   * Valid keys seen recently, so that a request does not cost a database read for its key.
   * Revoking evicts the key here and, through the event bus, in every other process; the TTL
   * bounds the delay should a notification be lost.
   */
  private readonly recent = new Map<string, { principal: Principal; until: number }>();
  /** Bumped whenever the cache is cleared, so a lookup that raced a revocation is not cached. */
  private generation = 0;

  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly events: EventBus,
    private readonly cacheMs = 10_000,
  ) {
    events.subscribe(CHANNELS.apiKeyRevoked, () => this.forgetAll());
  }

  /** Resolves a bearer token to its principal; unknown and revoked keys are UNAUTHENTICATED. */
  async authenticate(secret: string): Promise<Principal> {
    const secretHash = hashSecret(secret);
    const cached = this.recent.get(secretHash);
    if (cached && cached.until > Date.now()) return cached.principal;
    const generation = this.generation;
    const key = await keyBySecretHash(this.db, secretHash);
    if (!key) throw unauthenticated('The API key is not valid');
    if (key.revokedAt) throw unauthenticated('The API key has been revoked');
    const principal: Principal = { keyId: key.id, name: key.name, role: key.role };
    if (generation === this.generation) this.recent.set(secretHash, { principal, until: Date.now() + this.cacheMs });
    // Last use is kept to the cache's granularity: one write per key per window, off the request path.
    void recordKeyUse(this.db, key.id, new Date()).catch(() => undefined);
    return principal;
  }

  private forgetAll(): void {
    this.generation++;
    this.recent.clear();
  }

  async create(actor: Actor, input: { name: string; role: RoleName }): Promise<CreatedKey> {
    const name = input.name.trim();
    if (!name) throw badInput('A key needs a name, e.g. the person or front end that will use it');
    if (!(input.role in Role)) throw badInput(`Unknown role ${input.role}`);
    const generated = generateKey();
    return this.db.$transaction(async (tx) => {
      const key = await insertKey(tx, { name, role: input.role, prefix: generated.prefix, secretHash: generated.secretHash, createdById: actorKeyId(actor) });
      await this.audit.append(sqlOfPrisma(tx), actor, { action: 'apiKey.create', entityType: 'ApiKey', entityId: key.id, details: { name, role: key.role, prefix: key.prefix } });
      return { id: key.id, name: key.name, role: key.role, prefix: key.prefix, createdAt: key.createdAt, secret: generated.secret };
    });
  }

  async revoke(actor: Actor, id: string) {
    const revoked = await this.db.$transaction(async (tx) => {
      const key = await findKey(tx, id);
      if (!key) throw notFound('ApiKey', id);
      if (key.revokedAt) throw conflict(`API key ${id} is already revoked`);
      if ('keyId' in actor && actor.keyId === id) throw badInput('You cannot revoke the key you are using; use another admin key');
      const updated = await markRevoked(tx, id, new Date());
      await this.audit.append(sqlOfPrisma(tx), actor, { action: 'apiKey.revoke', entityType: 'ApiKey', entityId: id, details: { name: key.name, role: key.role } });
      return updated;
    });
    this.forgetAll();
    await this.events.publish(CHANNELS.apiKeyRevoked, { keyId: id });
    return revoked;
  }

  list() {
    return allKeys(this.db);
  }

  async hasActiveAdmin(): Promise<boolean> {
    return (await countActiveAdmins(this.db)) > 0;
  }
}
