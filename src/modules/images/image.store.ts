// Database access of the images module: one Image row per SHA-256, written inside the caller's
// transaction (plain SQL: uploads are a hot path).
import type { Db } from '../../db/prisma.js';
import * as col from '../../db/rows.js';
import type { Row } from '../../db/rows.js';
import { advisoryXactLock, newId, type Sql } from '../../db/sql.js';
import type { Image } from '../../generated/prisma/client.js';

/** The columns imageFromRow reads, of the image aliased `i`. */
export const IMAGE_COLUMNS = 'i.id, i.sha256, i."byteSize", i."mediaType", i.width, i.height, i."objectKey", i."createdAt"';

/** `prefix` reads the columns from `<prefix>id`, `<prefix>sha256`, ... (an image joined under a prefix). */
export function imageFromRow(row: Row, prefix = ''): Image {
  return {
    id: col.text(row, `${prefix}id`),
    sha256: col.text(row, `${prefix}sha256`),
    byteSize: col.int(row, `${prefix}byteSize`),
    mediaType: col.text(row, `${prefix}mediaType`),
    width: col.int(row, `${prefix}width`),
    height: col.int(row, `${prefix}height`),
    objectKey: col.text(row, `${prefix}objectKey`),
    createdAt: col.date(row, `${prefix}createdAt`),
  };
}

/** IMAGE_COLUMNS renamed with a prefix, for joins (see imageFromRow). */
export const prefixedImageColumns = (prefix: string) =>
  ['id', 'sha256', 'byteSize', 'mediaType', 'width', 'height', 'objectKey', 'createdAt'].map((c) => `i."${c}" AS "${prefix}${c}"`).join(', ');

export async function imageExists(sql: Sql, sha256: string): Promise<boolean> {
  return (await sql.query('SELECT 1 FROM "Image" WHERE sha256 = $1', [sha256])).length > 0;
}

/**
 * Before storing bytes: whether their row exists, and the discard mark, the newest ImageDiscard id
 * (read before the PUT; lockAndInsertImage compares it). One statement.
 */
export async function stagingState(sql: Sql, sha256: string): Promise<{ known: boolean; discardMark: string }> {
  const [row] = await sql.query(
    'SELECT EXISTS (SELECT 1 FROM "Image" WHERE sha256 = $1) AS known, COALESCE((SELECT max(id) FROM "ImageDiscard"), 0)::text AS mark',
    [sha256],
  );
  return { known: col.boolean(row, 'known'), discardMark: col.text(row, 'mark') };
}

/**
 * Records that the image's object was deleted: after the deletion, under the image's lock. A writer
 * whose mark predates it stores its bytes again (lockAndInsertImage).
 */
export async function recordImageDiscard(sql: Sql, sha256: string): Promise<void> {
  await sql.query('INSERT INTO "ImageDiscard" (sha256) VALUES ($1)', [sha256]);
}

/** Deletes the discard records older than `before`; returns how many. */
export async function pruneImageDiscards(sql: Sql, before: Date): Promise<number> {
  return (await sql.query('DELETE FROM "ImageDiscard" WHERE "discardedAt" < $1 RETURNING id', [before])).length;
}

export async function imageBySha256(sql: Sql, sha256: string): Promise<Image | undefined> {
  const [row] = await sql.query(`SELECT ${IMAGE_COLUMNS} FROM "Image" i WHERE i.sha256 = $1`, [sha256]);
  return row && imageFromRow(row);
}

/** The per-hash lock that row writers, the discarder and the orphan sweeper take. */
export const imageLockKey = (sha256: string) => `image:${sha256}`;

export const lockImage = (sql: Sql, sha256: string): Promise<void> => advisoryXactLock(sql, imageLockKey(sha256));

/**
 * Takes the image's lock (held until the transaction ends), then inserts the row: undefined if a
 * row with this SHA-256 exists. One statement: the insert reads from the lock, so it runs once the
 * lock is held, and ON CONFLICT sees rows committed while it waited (unlike a plain read, which
 * would see the statement's older snapshot). `discardedSince` says whether the object was deleted
 * after `discardMark` (see stagingState): the lock function reads that in a snapshot of its own.
 */
export async function lockAndInsertImage(sql: Sql, image: Omit<Image, 'id' | 'createdAt'>, discardMark: string): Promise<{ image: Image; discardedSince: boolean } | undefined> {
  const [row] = await sql.query(
    `WITH lock AS (SELECT lock_image_discarded_since(hashtextextended($8, 0), $2, $9::bigint) AS discarded)
     INSERT INTO "Image" AS i (id, sha256, "byteSize", "mediaType", width, height, "objectKey")
     SELECT $1::uuid, $2, $3, $4, $5, $6, $7 FROM lock
     ON CONFLICT (sha256) DO NOTHING RETURNING ${IMAGE_COLUMNS}, (SELECT discarded FROM lock) AS "discardedSince"`,
    [newId(), image.sha256, image.byteSize, image.mediaType, image.width, image.height, image.objectKey, imageLockKey(image.sha256), discardMark],
  );
  return row && { image: imageFromRow(row), discardedSince: col.boolean(row, 'discardedSince') };
}

/** Images by id, for the per-request loader. */
export function imagesByIds(db: Db, ids: string[]): Promise<Image[]> {
  return db.image.findMany({ where: { id: { in: ids } } });
}
