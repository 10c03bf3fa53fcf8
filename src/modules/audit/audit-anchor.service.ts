// Anchors of the audit chain: its head (seq and hash) checkpointed outside the AuditEvent table,
// signed with the server key, in the AuditAnchor table and as a JSON object in the object store
// (`audit-anchors/<seq>.json`, and `audit-anchors/latest.json`). verify() in audit.service.ts
// checks the chain against them, so that a cut or rewritten tail no longer verifies: whoever edits
// the database alone cannot forge the signature, nor reach the object store's copy.
import type { Config } from '../../config.js';
import type { Db } from '../../db/prisma.js';
import type { Logger } from '../../logger.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { AnchorSigner } from './anchor-signer.js';
import { canonicalJson } from './audit.service.js';
import * as auditStore from './audit.store.js';

export const ANCHOR_PREFIX = 'audit-anchors';
export const LATEST_ANCHOR_KEY = `${ANCHOR_PREFIX}/latest.json`;

export interface AuditAnchorRecord {
  id: string;
  seq: bigint;
  hash: string;
  reason: string;
  keyId: string;
  signature: string;
  objectKey: string | null;
  createdAt: Date;
}

/** An anchor as verification uses it, from either copy, with its signature checked. */
export interface CheckedAnchor {
  seq: bigint;
  hash: string;
  createdAt: Date;
  keyId: string;
  source: 'table' | 'objectStore';
  signatureValid: boolean;
}

/** The signed statement: these fields, as canonical JSON. */
export const anchorMessage = (a: { seq: bigint; hash: string; createdAt: Date; keyId: string }): string =>
  canonicalJson({ seq: a.seq.toString(), hash: a.hash, createdAt: a.createdAt.toISOString(), keyId: a.keyId });

const objectKeyFor = (seq: bigint) => `${ANCHOR_PREFIX}/${seq.toString().padStart(20, '0')}.json`;

export class AuditAnchorService {
  private loaded?: AnchorSigner;

  constructor(
    private readonly db: Db,
    private readonly store: ObjectStore,
    private readonly config: Config['audit'],
    private readonly logger: Logger,
  ) {}

  /** The signing key, loaded (or generated) on first use. */
  signer(): AnchorSigner {
    this.loaded ??= this.config.signingKeyPem ? AnchorSigner.fromPem(this.config.signingKeyPem) : AnchorSigner.fromFile(this.config.signingKeyFile);
    return this.loaded;
  }

  /**
   * Checkpoints the current head (what is committed now). Returns the latest anchor unchanged if
   * the head has not moved since, and null while the chain is empty. The object-store copy is
   * best effort: if the store is down, the anchor is kept in the table alone (logged).
   */
  async anchor(reason: string): Promise<AuditAnchorRecord | null> {
    const signer = this.signer();
    return this.db.$transaction(async (tx) => {
      await auditStore.lockAnchors(tx);
      const head = await auditStore.chainHead(tx);
      if (!head) return null;
      const last = await auditStore.latestAnchor(tx);
      if (last && last.seq === head.seq && last.hash === head.hash) return last;
      const createdAt = new Date();
      const statement = { seq: head.seq, hash: head.hash, createdAt, keyId: signer.keyId };
      const signature = signer.sign(anchorMessage(statement));
      const body = Buffer.from(JSON.stringify({ ...statement, seq: head.seq.toString(), reason, signature, publicKey: signer.publicKeyPem }, null, 2));
      let objectKey: string | null = objectKeyFor(head.seq);
      try {
        await this.store.put(objectKey, body, 'application/json');
        await this.store.put(LATEST_ANCHOR_KEY, body, 'application/json');
      } catch (err) {
        this.logger.warn('audit anchor not copied to the object store', { seq: head.seq.toString(), error: err });
        objectKey = null;
      }
      const anchor = await auditStore.createAnchor(tx, { seq: head.seq, hash: head.hash, reason, keyId: signer.keyId, signature, objectKey, createdAt });
      this.logger.info('audit chain anchored', { seq: head.seq.toString(), hash: head.hash, reason });
      return anchor;
    });
  }

  /** The newest anchor in the table (null before the first). */
  latest(): Promise<AuditAnchorRecord | null> {
    return auditStore.latestAnchor(this.db);
  }

  /** The newest `first` anchors, newest first. */
  list(first: number): Promise<AuditAnchorRecord[]> {
    return auditStore.newestAnchors(this.db, first);
  }

  /**
   * The chain's head as of now, anchored and signed: what a case export or report should carry
   * (a new anchor if the head moved since the last one).
   */
  async currentAnchoredHead(reason = 'export'): Promise<AuditAnchorRecord & { publicKey: string }> {
    const anchor = await this.anchor(reason);
    if (!anchor) throw new Error('the audit chain is empty');
    return { ...anchor, publicKey: this.signer().publicKeyPem };
  }

  /**
   * Every anchor verification can use: all rows of the table, plus the object store's latest copy
   * (which survives the table being cut), each with its signature checked against the server key.
   */
  async checkedAnchors(): Promise<CheckedAnchor[]> {
    const signer = this.signer();
    const check = (a: Omit<CheckedAnchor, 'signatureValid'>, signature: string): CheckedAnchor => ({
      ...a,
      signatureValid: a.keyId === signer.keyId && signer.verify(anchorMessage(a), signature),
    });
    const rows = await auditStore.anchorsInOrder(this.db);
    const anchors = rows.map((r) => check({ seq: r.seq, hash: r.hash, createdAt: r.createdAt, keyId: r.keyId, source: 'table' }, r.signature));
    try {
      if (await this.store.exists(LATEST_ANCHOR_KEY)) {
        const copy = JSON.parse((await this.store.get(LATEST_ANCHOR_KEY)).toString('utf8')) as { seq: string; hash: string; createdAt: string; keyId: string; signature: string };
        const fromStore = check({ seq: BigInt(copy.seq), hash: copy.hash, createdAt: new Date(copy.createdAt), keyId: copy.keyId, source: 'objectStore' }, copy.signature);
        if (!anchors.some((a) => a.seq === fromStore.seq && a.hash === fromStore.hash)) anchors.push(fromStore);
      }
    } catch (err) {
      this.logger.warn('the object store copy of the audit anchor could not be read; verifying against the table only', { error: err });
    }
    return anchors;
  }
}
