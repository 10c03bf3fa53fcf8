// Images are shared by evidence and dataset items: one row and one object per SHA-256.
//
// Storing is two-phase so that nothing is left half-done: the bytes go to the object store first
// (outside any transaction, to keep transactions short), then the row is written inside the
// caller's transaction. If that transaction fails, discardIfUnreferenced() removes an object this
// request created. Both row-writing and discarding take the same per-hash advisory lock. Every
// deletion of an unreferenced image object (here and in the orphan sweeper) is recorded in
// ImageDiscard; a writer whose bytes were deleted after it stored them learns so under the lock and
// stores them again, so a concurrent upload of the same bytes is never left pointing at a deleted
// object. (This replaced a stat of the object under the lock: one S3 request per new image.)
import type { Image } from '../../generated/prisma/client.js';
import type { Sql, SqlDatabase } from '../../db/sql.js';
import { probeImage, type ProbedImage } from '../../images/probe.js';
import { mapLimit } from '../../shared/concurrency.js';
import { sha256Hex } from '../../shared/hash.js';
import { ObjectStore, type StoredObject } from '../../storage/object-store.js';
import * as store from './image.store.js';

export { imageLockKey } from './image.store.js';

export const IMAGE_PREFIX = 'images';

export interface ValidatedImage<D = undefined> {
  probe: ProbedImage;
  bytes: Buffer;
  /** What the caller's decode returned (see validate). */
  decoded: D;
}

export interface StagedImage {
  probe: ProbedImage;
  stored: StoredObject;
  bytes: Buffer;
  /** The newest discard before the PUT (see image.store.ts stagingState). */
  discardMark: string;
}

export class ImageService {
  constructor(private readonly sql: SqlDatabase, private readonly objects: ObjectStore) {}

  /** Validates the bytes (content sniffing + full decode), then stores them content-addressed. */
  async stage(bytes: Buffer, label?: string): Promise<StagedImage> {
    return this.store(await this.validate(bytes, label));
  }

  /**
   * First half of stage(): the bytes must be an image we accept (nothing is stored yet). `decode`,
   * when given, is the full decode that proves the pixels intact (see probeImage).
   */
  async validate<D = undefined>(bytes: Buffer, label?: string, decode?: (bytes: Buffer) => Promise<D>): Promise<ValidatedImage<D>> {
    const { decoded, ...probe } = await probeImage(bytes, label, decode);
    return { probe, bytes, decoded };
  }

  /** Second half of stage(): stores validated bytes, content-addressed. */
  async store(validated: ValidatedImage<unknown>): Promise<StagedImage> {
    const { probe, bytes } = validated;
    const sha256 = sha256Hex(bytes);
    const key = ObjectStore.contentKey(IMAGE_PREFIX, sha256);
    // Known bytes are already stored. New ones are put straight away (one request, no stat first):
    // most uploads are new, and upsert()'s discard check under the lock covers any race.
    const { known, discardMark } = await store.stagingState(this.sql, sha256);
    if (!known) await this.objects.put(key, bytes, probe.mediaType);
    return { probe, stored: { key, sha256, size: bytes.length, created: !known }, bytes, discardMark };
  }

  /** The Image row for staged bytes, created if new, in the caller's transaction `tx`. */
  async upsert(tx: Sql, staged: StagedImage): Promise<Image> {
    const { stored, probe } = staged;
    if (!stored.created) {
      // Known when staged: Image rows are never deleted, and nothing deletes the object of a
      // committed row (the discarder and the sweeper check for it under the lock), so no lock.
      const known = await store.imageBySha256(tx, stored.sha256);
      if (known) return known;
    }
    const inserted = await store.lockAndInsertImage(tx, { sha256: stored.sha256, byteSize: probe.byteSize, mediaType: probe.mediaType, width: probe.width, height: probe.height, objectKey: stored.key }, staged.discardMark);
    if (!inserted) {
      // A concurrent upload of the same bytes committed the row first (we waited for its lock).
      const existing = await store.imageBySha256(tx, stored.sha256);
      if (!existing) throw new Error(`image ${stored.sha256}: the insert conflicted but no row exists`);
      return existing;
    }
    // A failed request with the same bytes (or the sweeper) deleted the object since we stored it.
    // The lock, held until commit, keeps discarders and the sweeper away until the row is visible.
    if (inserted.discardedSince) await this.objects.put(stored.key, staged.bytes, probe.mediaType);
    return inserted.image;
  }

  /** After a failed transaction: removes the object if this request created it and no row uses it. */
  async discardIfUnreferenced(staged: StagedImage): Promise<void> {
    if (!staged.stored.created) return;
    await this.sql.transaction(async (sql) => {
      await store.lockImage(sql, staged.stored.sha256);
      if (await store.imageExists(sql, staged.stored.sha256)) return;
      await this.objects.delete(staged.stored.key);
      await store.recordImageDiscard(sql, staged.stored.sha256);
    });
  }

  /**
   * Drops discard records older than `olderThanMs` (the orphan grace period: no upload in flight can
   * still hold an older mark); returns how many.
   */
  pruneDiscards(olderThanMs: number): Promise<number> {
    return store.pruneImageDiscards(this.sql, new Date(Date.now() - olderThanMs));
  }

  /**
   * Runs `work` with the staged images; if it throws, new objects that ended up unreferenced are
   * removed before the error is passed on.
   */
  async withStaged<T>(staged: StagedImage[], work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      await Promise.allSettled(staged.map((s) => this.discardIfUnreferenced(s)));
      throw err;
    }
  }

  get(objectKey: string): Promise<Buffer> {
    return this.objects.get(objectKey);
  }

  /** Many objects, a bounded number of requests at a time, in the order of `keys`. */
  getMany(keys: string[], concurrency = 16): Promise<Buffer[]> {
    return mapLimit(keys, concurrency, (key) => this.get(key));
  }

  presignedUrl(image: Pick<Image, 'objectKey'>, expirySeconds: number): Promise<string> {
    return this.objects.presignedGetUrl(image.objectKey, expirySeconds);
  }
}
