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

export async function imageBySha256(sql: Sql, sha256: string): Promise<Image | undefined> {
  const [row] = await sql.query(`SELECT ${IMAGE_COLUMNS} FROM "Image" i WHERE i.sha256 = $1`, [sha256]);
  return row && imageFromRow(row);
}

/** The per-hash lock that row writers, the discarder and the orphan sweeper take. */
export const imageLockKey = (sha256: string) => `image:${sha256}`;

export const lockImage = (sql: Sql, sha256: string): Promise<void> => advisoryXactLock(sql, imageLockKey(sha256));

/**
 * Takes the image's lock (held until the transaction ends), then inserts the row; undefined if a
 * row with this SHA-256 exists. One statement: the insert reads from the lock, so it runs once the
 * lock is held, and ON CONFLICT sees rows committed while it waited (unlike a plain read, which
 * would see the statement's older snapshot).
 */
export async function lockAndInsertImage(sql: Sql, image: Omit<Image, 'id' | 'createdAt'>): Promise<Image | undefined> {
  const [row] = await sql.query(
    `WITH lock AS (SELECT pg_advisory_xact_lock(hashtextextended($8, 0)))
     INSERT INTO "Image" AS i (id, sha256, "byteSize", "mediaType", width, height, "objectKey")
     SELECT $1::uuid, $2, $3, $4, $5, $6, $7 FROM lock
     ON CONFLICT (sha256) DO NOTHING RETURNING ${IMAGE_COLUMNS}`,
    [newId(), image.sha256, image.byteSize, image.mediaType, image.width, image.height, image.objectKey, imageLockKey(image.sha256)],
  );
  return row && imageFromRow(row);
}

/** Images by id, for the per-request loader. */
export function imagesByIds(db: Db, ids: string[]): Promise<Image[]> {
  return db.image.findMany({ where: { id: { in: ids } } });
}
