// Database access of the datasets module: datasets, their items and frozen versions. An admin
// path, so Prisma throughout; `db` is the client or an interactive transaction (`Tx`), whichever
// the calling use case runs on. Transactions are begun by the services, never here.
import type { Db, Tx } from '../../db/prisma.js';
import type { Dataset, DatasetItem, DatasetVersion, Image } from '../../generated/prisma/client.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { afterCursorWhere, NEWEST_FIRST } from '../../shared/pagination.js';

/** Rows per createMany of version items (PostgreSQL allows at most 65535 bind parameters). */
const VERSION_ITEM_CHUNK = 5000;

const bySha256 = <T extends { sha256: string }>(a: T, b: T) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0);

// ---- datasets ----------------------------------------------------------------------------------

export function datasetById(db: Db | Tx, id: string): Promise<Dataset | null> {
  return db.dataset.findUnique({ where: { id } });
}

export function datasetByName(db: Db | Tx, name: string): Promise<Dataset | null> {
  return db.dataset.findUnique({ where: { name } });
}

export function insertDataset(tx: Tx, data: { name: string; description: string | null; createdById: string }): Promise<Dataset> {
  return tx.dataset.create({ data });
}

/** One page of datasets, newest first, after the cursor. */
export function listDatasets(db: Db | Tx, after: string | null | undefined, take: number): Promise<Dataset[]> {
  return db.dataset.findMany({ where: afterCursorWhere(after), orderBy: NEWEST_FIRST, take });
}

/**
 * Locks the dataset's row until the transaction ends: writers of one dataset (imports, removals,
 * group changes, snapshots) serialise on it. False if the dataset does not exist.
 */
export async function lockDataset(tx: Tx, datasetId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM "Dataset" WHERE id = ${datasetId}::uuid FOR UPDATE`;
  return rows.length > 0;
}

// ---- items -------------------------------------------------------------------------------------

export type DatasetItemWithImage = DatasetItem & { image: Image };

/** Number of current items per label (labels without items are absent). */
export async function itemCountsByLabel(db: Db | Tx, datasetId: string): Promise<Map<Sex, number>> {
  const groups = await db.datasetItem.groupBy({ by: ['label'], where: { datasetId }, _count: { _all: true } });
  return new Map(groups.map((g) => [g.label, g._count._all]));
}

/** One page of items with their images, newest first, optionally of one label or one image hash. */
export function listItems(db: Db | Tx, datasetId: string, filter: { label?: Sex; sha256?: string }, after: string | null | undefined, take: number): Promise<DatasetItemWithImage[]> {
  return db.datasetItem.findMany({
    where: { AND: [{ datasetId, label: filter.label, image: filter.sha256 ? { sha256: filter.sha256 } : undefined }, afterCursorWhere(after)] },
    orderBy: NEWEST_FIRST,
    take,
    include: { image: true },
  });
}

export function itemById(db: Db | Tx, itemId: string): Promise<DatasetItemWithImage | null> {
  return db.datasetItem.findUnique({ where: { id: itemId }, include: { image: true } });
}

/** Items of the dataset whose images have these hashes. */
export async function itemsWithSha256(db: Db | Tx, datasetId: string, sha256s: string[]): Promise<Array<{ id: string; label: Sex; sha256: string }>> {
  const rows = await db.datasetItem.findMany({
    where: { datasetId, image: { sha256: { in: sha256s } } },
    select: { id: true, label: true, image: { select: { sha256: true } } },
  });
  return rows.map((r) => ({ id: r.id, label: r.label, sha256: r.image.sha256 }));
}

/** Ids of the images already stored with these hashes. */
export async function imageIdsBySha256(db: Db | Tx, sha256s: string[]): Promise<Map<string, string>> {
  const rows = await db.image.findMany({ where: { sha256: { in: sha256s } }, select: { id: true, sha256: true } });
  return new Map(rows.map((r) => [r.sha256, r.id]));
}

/** Items of the dataset for these images, by image id. */
export async function itemsOfImages(db: Db | Tx, datasetId: string, imageIds: string[]): Promise<Map<string, { id: string; label: Sex }>> {
  const rows = await db.datasetItem.findMany({ where: { datasetId, imageId: { in: imageIds } }, select: { id: true, imageId: true, label: true } });
  return new Map(rows.map((r) => [r.imageId, { id: r.id, label: r.label }]));
}

/** Inserts items; returns the new item id of each image id. */
export async function insertItems(
  tx: Tx,
  rows: Array<{ datasetId: string; imageId: string; label: Sex; groupKey: string | null; addedById: string }>,
): Promise<Map<string, string>> {
  if (!rows.length) return new Map();
  const created = await tx.datasetItem.createManyAndReturn({ data: rows, select: { id: true, imageId: true } });
  return new Map(created.map((c) => [c.imageId, c.id]));
}

export function setItemGroup(tx: Tx, itemId: string, groupKey: string | null): Promise<DatasetItemWithImage> {
  return tx.datasetItem.update({ where: { id: itemId }, data: { groupKey }, include: { image: true } });
}

/** Deletes an item; false if it was already gone. */
export async function deleteItem(tx: Tx, itemId: string): Promise<boolean> {
  const { count } = await tx.datasetItem.deleteMany({ where: { id: itemId } });
  return count > 0;
}

/** Every current item of the dataset, sorted by image SHA-256 (the manifest's order). */
export async function currentItems(tx: Tx, datasetId: string): Promise<Array<{ imageId: string; sha256: string; label: Sex; groupKey: string | null }>> {
  const rows = await tx.datasetItem.findMany({ where: { datasetId }, select: { imageId: true, label: true, groupKey: true, image: { select: { sha256: true } } } });
  return rows.map((r) => ({ imageId: r.imageId, sha256: r.image.sha256, label: r.label, groupKey: r.groupKey })).sort(bySha256);
}

// ---- versions ----------------------------------------------------------------------------------

export function versionById(db: Db | Tx, id: string): Promise<DatasetVersion | null> {
  return db.datasetVersion.findUnique({ where: { id } });
}

/** Versions of a dataset, newest first. */
export function listVersions(db: Db | Tx, datasetId: string): Promise<DatasetVersion[]> {
  return db.datasetVersion.findMany({ where: { datasetId }, orderBy: { version: 'desc' } });
}

/** The most recently taken version of any dataset, with its dataset's name. */
export function newestVersion(db: Db | Tx): Promise<(DatasetVersion & { dataset: Pick<Dataset, 'name'> }) | null> {
  return db.datasetVersion.findFirst({ orderBy: { createdAt: 'desc' }, include: { dataset: { select: { name: true } } } });
}

/** The highest version number of the dataset, 0 if none. */
export async function lastVersionNumber(tx: Tx, datasetId: string): Promise<number> {
  const last = await tx.datasetVersion.findFirst({ where: { datasetId }, orderBy: { version: 'desc' }, select: { version: true } });
  return last?.version ?? 0;
}

export function insertVersion(
  tx: Tx,
  data: Pick<DatasetVersion, 'datasetId' | 'version' | 'manifestKey' | 'manifestSha256' | 'itemCount' | 'femaleCount' | 'maleCount' | 'createdById'>,
): Promise<DatasetVersion> {
  return tx.datasetVersion.create({ data });
}

/** Copies items into a version, in chunks. */
export async function insertVersionItems(tx: Tx, datasetVersionId: string, items: Array<{ imageId: string; label: Sex; groupKey: string | null }>): Promise<void> {
  for (let i = 0; i < items.length; i += VERSION_ITEM_CHUNK) {
    await tx.datasetVersionItem.createMany({
      data: items.slice(i, i + VERSION_ITEM_CHUNK).map((it) => ({ datasetVersionId, imageId: it.imageId, label: it.label, groupKey: it.groupKey })),
    });
  }
}

/** Whether a version records this manifest object (before deleting an object a failed snapshot stored). */
export async function manifestReferenced(db: Db | Tx, manifestKey: string): Promise<boolean> {
  return (await db.datasetVersion.findFirst({ where: { manifestKey }, select: { id: true } })) !== null;
}

/** What training, the manifest and the model comparison need of each item of a frozen version. */
export interface VersionItem {
  imageId: string;
  sha256: string;
  objectKey: string;
  label: Sex;
  groupKey: string | null;
}

/**
 * Every item of a frozen version, sorted by SHA-256 (the manifest's order): the one query behind
 * listVersionItems, the training worker's data and the registry's comparison images.
 */
export async function versionItems(db: Db | Tx, datasetVersionId: string): Promise<VersionItem[]> {
  const rows = await db.datasetVersionItem.findMany({
    where: { datasetVersionId },
    select: { imageId: true, label: true, groupKey: true, image: { select: { sha256: true, objectKey: true } } },
  });
  return rows.map((r) => ({ imageId: r.imageId, sha256: r.image.sha256, objectKey: r.image.objectKey, label: r.label, groupKey: r.groupKey })).sort(bySha256);
}

/** Dataset versions by id, for the per-request loader. */
export function versionsByIds(db: Db | Tx, ids: string[]): Promise<DatasetVersion[]> {
  return db.datasetVersion.findMany({ where: { id: { in: ids } } });
}
