// The orphan sweeper: deletes objects that no row references and that are older than a grace
// period. Orphans come from requests that stored bytes and then failed (a PUT the S3 server kept
// but did not acknowledge, a process killed between the PUT and the commit, a lost connection).
// Uploads store the object before their row commits, so young objects are never touched; and
// each deletion re-checks, under the same advisory lock the writers take, that no row appeared
// and that the object was not written again meanwhile.
import type { SqlDatabase } from '../../db/sql.js';
import { advisoryXactLock } from '../../db/sql.js';
import type { Logger } from '../../logger.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { imageLockKey, recordImageDiscard } from '../images/image.store.js';
import { OBJECT_KINDS, type ObjectKind, referencedKeys } from './orphan.store.js';

export interface Orphan {
  kind: ObjectKind['kind'];
  key: string;
  size: number;
  lastModified: Date;
}

export interface SweepResult {
  dryRun: boolean;
  /** Objects looked at, per kind. */
  scanned: Record<string, number>;
  orphans: Orphan[];
  deleted: number;
  /** Orphans left because a row or a new write appeared meanwhile. */
  kept: number;
}

const CHUNK = 1000;

/** An image object's key ends with its SHA-256. */
const imageSha256 = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/** The lock a writer of this object takes: the image's per-hash lock, or one per object key. */
const lockFor = (kind: ObjectKind, key: string) => (kind.kind === 'image' ? imageLockKey(imageSha256(key)) : `object:${key}`);

export class OrphanSweeper {
  constructor(private readonly sql: SqlDatabase, private readonly store: ObjectStore, private readonly logger: Logger) {}

  /** Lists (dryRun) or deletes the objects of every kind that no row references and that are older than `graceMs`. */
  async sweep(options: { graceMs: number; dryRun?: boolean; now?: Date }): Promise<SweepResult> {
    const dryRun = options.dryRun ?? false;
    const cutoff = (options.now ?? new Date()).getTime() - options.graceMs;
    const result: SweepResult = { dryRun, scanned: {}, orphans: [], deleted: 0, kept: 0 };
    for (const kind of OBJECT_KINDS) {
      const objects = await this.store.list(kind.prefix);
      result.scanned[kind.kind] = objects.length;
      const old = objects.filter((o) => o.lastModified.getTime() < cutoff);
      for (let i = 0; i < old.length; i += CHUNK) {
        const chunk = old.slice(i, i + CHUNK);
        const referenced = await referencedKeys(this.sql, kind, chunk.map((o) => o.key));
        for (const o of chunk) {
          if (referenced.has(o.key)) continue;
          result.orphans.push({ kind: kind.kind, key: o.key, size: o.size, lastModified: o.lastModified });
          if (dryRun) continue;
          if (await this.deleteIfOrphan(kind, o.key, cutoff)) result.deleted++;
          else result.kept++;
        }
      }
    }
    const byKind = Object.fromEntries(OBJECT_KINDS.map((k) => [k.kind, result.orphans.filter((o) => o.kind === k.kind).length]));
    this.logger.info(dryRun ? 'orphan sweep (dry run)' : 'orphan sweep', { scanned: result.scanned, orphans: byKind, deleted: result.deleted, kept: result.kept, graceMs: options.graceMs });
    return result;
  }

  /** Deletes the object if, under its writers' lock, no row references it and it was not written again since the cutoff. */
  private async deleteIfOrphan(kind: ObjectKind, key: string, cutoff: number): Promise<boolean> {
    return this.sql.transaction(async (sql) => {
      await advisoryXactLock(sql, lockFor(kind, key));
      if ((await referencedKeys(sql, kind, [key])).size > 0) return false;
      const stat = await this.store.stat(key);
      if (!stat || stat.lastModified.getTime() >= cutoff) return false;
      await this.store.delete(key);
      // An upload of the same bytes that stored them before this deletion stores them again.
      if (kind.kind === 'image') await recordImageDiscard(sql, imageSha256(key));
      return true;
    });
  }
}
