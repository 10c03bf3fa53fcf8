// Datasets: labelled eye images curated by admins, and their frozen versions.
//
// Imports (uploads, ZIP archives, folders on disk) all run through importFiles(): files are read
// one by one, de-duplicated by SHA-256 (within the request and against the dataset), validated
// and stored through ImageService.stage(), and committed in batches of IMPORT_BATCH_SIZE items.
// Each batch is one transaction with its own audit event; a failed batch leaves no unreferenced
// new objects (ImageService.withStaged). Batches committed before a later failure stay (they
// are in the audit log), and running the same import again reports them as duplicates.
//
// A snapshot copies the current items into an immutable DatasetVersion and stores its manifest
// (canonical JSON: sha256 and label of every item, sorted by sha256) content-addressed in the
// object store. Writers of one dataset are serialised by a row lock on the Dataset.
import type { Readable } from 'node:stream';
import type { Config } from '../../config.js';
import type { Db, Tx } from '../../db/prisma.js';
import { isUniqueViolation } from '../../db/sql.js';
import type { Dataset, DatasetItem, DatasetVersion, Image } from '../../generated/prisma/client.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { AppError, badInput, conflict, notFound } from '../../errors.js';
import { afterCursorWhere, NEWEST_FIRST, paginate, type PageRequest } from '../../shared/pagination.js';
import { ObjectStore, sha256Hex, type StoredObject } from '../../storage/object-store.js';
import { type AuditService, canonicalJson } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import type { ImageService, StagedImage } from '../images/image.service.js';
import { openLabelledZip, spoolToTempFile, type ArchiveItem } from './archive.js';

/** Items committed per transaction. */
export const IMPORT_BATCH_SIZE = 200;
/** A batch is also committed once it holds this many bytes of images. */
const IMPORT_BATCH_BYTES = 64 * 1024 * 1024;
/** Images validated and stored in parallel. */
const STAGE_CONCURRENCY = 8;
const TX_OPTIONS = { timeout: 120_000, maxWait: 15_000 };
export const MANIFEST_PREFIX = 'manifests';
/** Version 2 adds each item's group (the person, or null). */
export const MANIFEST_FORMAT = 'eyecase.dataset-manifest/2';
/** Longest group key accepted. */
export const MAX_GROUP_KEY_LENGTH = 200;
const VERSION_ITEM_CHUNK = 5000;

/** One file offered to an import: its bytes and label, or why it was skipped before reading. */
export type ImportCandidate = ArchiveItem;
export type ImportSource = 'upload' | 'archive' | 'folder';
export type FileStatus = 'IMPORTED' | 'DUPLICATE' | 'SKIPPED';

export interface FileResult {
  name: string;
  status: FileStatus;
  label: Sex | null;
  sha256: string | null;
  itemId: string | null;
  reason: string | null;
  code: string | null;
}

export interface ImportProgress {
  processed: number;
  total?: number;
  imported: number;
  duplicates: number;
  skipped: number;
}

export interface ImportSummary {
  dataset: Dataset;
  imported: number;
  duplicates: number;
  skipped: number;
  files: FileResult[];
}

export interface ImportOptions {
  source: ImportSource;
  /** Number of files expected (for progress reports), if known. */
  total?: number;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ClassCounts {
  female: number;
  male: number;
  total: number;
}

/** What the training worker needs of each item of a frozen version. */
export interface VersionItem {
  imageId: string;
  sha256: string;
  objectKey: string;
  label: Sex;
  groupKey: string | null;
}

export interface DatasetManifest {
  format: typeof MANIFEST_FORMAT;
  datasetId: string;
  datasetName: string;
  version: number;
  itemCount: number;
  femaleCount: number;
  maleCount: number;
  items: Array<{ sha256: string; label: Sex; group: string | null }>;
}

export type DatasetItemWithImage = DatasetItem & { image: Image };

interface Pending {
  index: number;
  name: string;
  label: Sex;
  sha256: string;
  bytes: Buffer;
  group: string | null;
}

/** A group key as stored: trimmed; empty means none; too long is BAD_USER_INPUT. */
export function normaliseGroupKey(raw: string | null | undefined, what: string): string | null {
  const key = raw?.trim() ?? '';
  if (!key) return null;
  if (key.length > MAX_GROUP_KEY_LENGTH) throw badInput(`${what} is ${key.length} characters long; the limit is ${MAX_GROUP_KEY_LENGTH}`);
  return key;
}

/** Runs fn over items with at most `limit` in flight; results in input order. */
async function mapPool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export class DatasetService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly images: ImageService,
    private readonly store: ObjectStore,
    private readonly config: Pick<Config, 'uploads' | 'archive' | 'presignedUrlSeconds'>,
  ) {}

  // ---- datasets ----------------------------------------------------------------------------

  async create(actor: Principal, input: { name: string; description?: string | null }): Promise<Dataset> {
    const name = input.name.trim();
    if (!name) throw badInput('A dataset needs a name, e.g. eyes-rtte');
    if (name.length > 100) throw badInput('The dataset name must be at most 100 characters');
    if (/[\u0000-\u001f\u007f]/.test(name)) throw badInput('The dataset name must not contain control characters');
    const description = input.description?.trim() || null;
    const taken = () => conflict(`A dataset named "${name}" already exists`, { name });
    if (await this.db.dataset.findUnique({ where: { name }, select: { id: true } })) throw taken();
    try {
      return await this.db.$transaction(async (tx) => {
        const dataset = await tx.dataset.create({ data: { name, description, createdById: actor.keyId } });
        await this.audit.append(tx, actor, { action: 'dataset.create', entityType: 'Dataset', entityId: dataset.id, details: { name, description } });
        return dataset;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      throw err;
    }
  }

  async get(id: string): Promise<Dataset> {
    const found = await this.db.dataset.findUnique({ where: { id } });
    if (!found) throw notFound('Dataset', id);
    return found;
  }

  async getByName(name: string): Promise<Dataset | null> {
    return this.db.dataset.findUnique({ where: { name } });
  }

  list(page: PageRequest) {
    return paginate(page, (take) => this.db.dataset.findMany({ where: afterCursorWhere(page.after), orderBy: NEWEST_FIRST, take }));
  }

  async counts(datasetId: string): Promise<ClassCounts> {
    const groups = await this.db.datasetItem.groupBy({ by: ['label'], where: { datasetId }, _count: { _all: true } });
    const of = (label: Sex) => groups.find((g) => g.label === label)?._count._all ?? 0;
    const female = of('FEMALE');
    const male = of('MALE');
    return { female, male, total: female + male };
  }

  listItems(datasetId: string, filter: { label?: Sex | null; sha256?: string | null }, page: PageRequest) {
    const sha256 = filter.sha256?.trim().toLowerCase();
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw badInput('sha256 must be 64 hexadecimal characters');
    return paginate(page, (take) =>
      this.db.datasetItem.findMany({
        where: { AND: [{ datasetId, label: filter.label ?? undefined, image: sha256 ? { sha256 } : undefined }, afterCursorWhere(page.after)] },
        orderBy: NEWEST_FIRST,
        take,
        include: { image: true },
      }),
    );
  }

  // ---- imports -------------------------------------------------------------------------------

  /**
   * Uploaded files, all with one label. Too many files is a request-level PAYLOAD_TOO_LARGE.
   * groupKeys, when given, holds one group key (or null) per file; check it with checkGroupKeys.
   */
  async addImages(actor: Principal, datasetId: string, fileCount: number, files: AsyncIterable<ImportCandidate>): Promise<ImportSummary> {
    const max = this.config.uploads.maxDatasetFilesPerRequest;
    if (fileCount === 0) throw badInput('Send at least one file');
    if (fileCount > max) throw new AppError('PAYLOAD_TOO_LARGE', `${fileCount} files in one request; the limit is ${max} (send them in several requests, or as a ZIP archive)`, { maxFiles: max });
    await this.get(datasetId);
    return this.importFiles(actor, datasetId, files, { source: 'upload', total: fileCount });
  }

  /**
   * A ZIP archive with female/ and male/ folders, read from a stream: spooled to a temporary file
   * (deleted afterwards, always) and read entry by entry within config.archive limits.
   */
  async importArchive(actor: Principal, datasetId: string, archive: Readable, options: Omit<ImportOptions, 'source' | 'total'> = {}): Promise<ImportSummary> {
    await this.get(datasetId);
    const spooled = await spoolToTempFile(archive, this.config.archive.maxBytes);
    try {
      return await this.importArchiveFile(actor, datasetId, spooled.file, options);
    } finally {
      await spooled.cleanup();
    }
  }

  /** A ZIP archive already on disk (the file is left in place). */
  async importArchiveFile(actor: Principal, datasetId: string, file: string, options: Omit<ImportOptions, 'source' | 'total'> = {}): Promise<ImportSummary> {
    await this.get(datasetId);
    const zip = await openLabelledZip(file, {
      maxEntries: this.config.archive.maxEntries,
      maxUncompressedBytes: this.config.archive.maxUncompressedBytes,
      maxEntryBytes: this.config.uploads.maxFileBytes,
    });
    try {
      return await this.importFiles(actor, datasetId, zip.items, { ...options, source: 'archive', total: zip.entryCount });
    } finally {
      zip.close();
    }
  }

  /**
   * The common import pipeline. Per-file problems become SKIPPED results; errors the source
   * throws, and infrastructure errors, fail the request (batches committed before stay).
   */
  async importFiles(actor: Principal, datasetId: string, source: AsyncIterable<ImportCandidate>, options: ImportOptions): Promise<ImportSummary> {
    await this.get(datasetId);
    const files: FileResult[] = [];
    const firstBySha = new Map<string, number>();
    let pending: Pending[] = [];
    let pendingBytes = 0;
    let windowStart = 0;
    let batches = 0;
    const tally = (from = 0) => {
      const t = { imported: 0, duplicates: 0, skipped: 0 };
      for (let i = from; i < files.length; i++) {
        const s = files[i].status;
        if (s === 'IMPORTED') t.imported++;
        else if (s === 'DUPLICATE') t.duplicates++;
        else t.skipped++;
      }
      return t;
    };

    const flush = async () => {
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      if (batch.length) {
        const committed = await this.commitBatch(actor, datasetId, batch, files, { source: options.source, batch: batches + 1, windowStart });
        if (committed) batches++;
      }
      windowStart = files.length;
      options.onProgress?.({ processed: files.length, total: options.total, ...tally() });
    };

    for await (const candidate of source) {
      if ('skip' in candidate) {
        files.push({ name: candidate.name, status: 'SKIPPED', label: candidate.label ?? null, sha256: null, itemId: null, reason: candidate.skip.reason, code: candidate.skip.code });
        continue;
      }
      const sha256 = sha256Hex(candidate.bytes);
      const first = firstBySha.get(sha256);
      if (first !== undefined) {
        const earlier = files[first];
        const other = earlier.label !== candidate.label ? ` (labelled ${earlier.label} there)` : '';
        files.push({ name: candidate.name, status: 'DUPLICATE', label: candidate.label, sha256, itemId: null, reason: `same content as "${earlier.name}" earlier in this request${other}`, code: null });
        continue;
      }
      firstBySha.set(sha256, files.length);
      pending.push({ index: files.length, name: candidate.name, label: candidate.label, sha256, bytes: candidate.bytes, group: candidate.group ?? null });
      pendingBytes += candidate.bytes.length;
      // Placeholder until the batch is committed.
      files.push({ name: candidate.name, status: 'IMPORTED', label: candidate.label, sha256, itemId: null, reason: null, code: null });
      if (pending.length >= IMPORT_BATCH_SIZE || pendingBytes >= IMPORT_BATCH_BYTES) await flush();
    }
    await flush();

    const totals = tally();
    if (batches === 0) {
      // Nothing changed, but the attempt is still on record.
      await this.db.$transaction(async (tx) => {
        await this.lockDataset(tx, datasetId);
        await this.audit.append(tx, actor, {
          action: 'dataset.items.add',
          entityType: 'Dataset',
          entityId: datasetId,
          details: { source: options.source, batch: 0, ...totals, female: [], male: [] },
        });
      });
    }
    // Later items of a duplicate pair point at the item their first copy became.
    for (const f of files) {
      if (f.status === 'DUPLICATE' && !f.itemId && f.sha256) {
        const first = files[firstBySha.get(f.sha256) ?? -1];
        if (first && first !== f) f.itemId = first.itemId;
      }
    }
    return { dataset: await this.get(datasetId), ...totals, files };
  }

  /** Validates, stores and commits one batch; updates `files` in place. True if a transaction ran. */
  private async commitBatch(
    actor: Principal,
    datasetId: string,
    batch: Pending[],
    files: FileResult[],
    meta: { source: ImportSource; batch: number; windowStart: number },
  ): Promise<boolean> {
    // Already in the dataset? (re-checked under the lock below)
    const existing = await this.db.datasetItem.findMany({
      where: { datasetId, image: { sha256: { in: batch.map((p) => p.sha256) } } },
      select: { id: true, label: true, image: { select: { sha256: true } } },
    });
    const existingBySha = new Map(existing.map((e) => [e.image.sha256, e]));
    const markDuplicate = (p: Pending, item: { id: string; label: Sex }) => {
      const other = item.label !== p.label ? `, labelled ${item.label} there` : '';
      files[p.index] = { ...files[p.index], status: 'DUPLICATE', itemId: item.id, reason: `already in the dataset (item ${item.id}${other})` };
    };
    const fresh = batch.filter((p) => {
      const found = existingBySha.get(p.sha256);
      if (found) markDuplicate(p, found);
      return !found;
    });

    // Validate (content sniffing + full decode) and store the bytes, in parallel.
    const outcomes = await mapPool(fresh, STAGE_CONCURRENCY, async (p) => {
      try {
        return { p, staged: await this.images.stage(p.bytes, `The file "${p.name}"`) };
      } catch (err) {
        return { p, err };
      }
    });
    const staged = outcomes.filter((o): o is { p: Pending; staged: StagedImage } => 'staged' in o && !!o.staged);
    const infraError = outcomes.find((o) => 'err' in o && !(o.err instanceof AppError));
    if (infraError) {
      await Promise.allSettled(staged.map((s) => this.images.discardIfUnreferenced(s.staged)));
      throw (infraError as { err: unknown }).err;
    }
    for (const o of outcomes) {
      if ('err' in o) {
        const e = o.err as AppError;
        files[o.p.index] = { ...files[o.p.index], status: 'SKIPPED', reason: e.message, code: e.code };
      }
    }
    if (!staged.length) return false;

    // Same lock order for every writer: dataset row, then image hashes in sha256 order.
    staged.sort((a, b) => (a.p.sha256 < b.p.sha256 ? -1 : a.p.sha256 > b.p.sha256 ? 1 : 0));
    return this.images.withStaged(
      staged.map((s) => s.staged),
      () =>
        this.db.$transaction(async (tx) => {
          await this.lockDataset(tx, datasetId);
          const imageIds = new Map<string, string>();
          const known = await tx.image.findMany({ where: { sha256: { in: staged.map((s) => s.p.sha256) } }, select: { id: true, sha256: true } });
          for (const k of known) imageIds.set(k.sha256, k.id);
          for (const s of staged) {
            if (!imageIds.has(s.p.sha256)) imageIds.set(s.p.sha256, (await this.images.upsert(tx, s.staged)).id);
          }
          const already = await tx.datasetItem.findMany({ where: { datasetId, imageId: { in: [...imageIds.values()] } }, select: { id: true, imageId: true, label: true } });
          const alreadyByImage = new Map(already.map((a) => [a.imageId, a]));
          const toCreate = staged.filter((s) => {
            const found = alreadyByImage.get(imageIds.get(s.p.sha256)!);
            if (found) markDuplicate(s.p, found);
            return !found;
          });
          const created = toCreate.length
            ? await tx.datasetItem.createManyAndReturn({
                data: toCreate.map((s) => ({ datasetId, imageId: imageIds.get(s.p.sha256)!, label: s.p.label, groupKey: s.p.group, addedById: actor.keyId })),
                select: { id: true, imageId: true },
              })
            : [];
          const itemByImage = new Map(created.map((c) => [c.imageId, c.id]));
          for (const s of toCreate) files[s.p.index] = { ...files[s.p.index], status: 'IMPORTED', itemId: itemByImage.get(imageIds.get(s.p.sha256)!) ?? null };

          let duplicates = 0;
          let skipped = 0;
          for (let i = meta.windowStart; i < files.length; i++) {
            if (files[i].status === 'DUPLICATE') duplicates++;
            else if (files[i].status === 'SKIPPED') skipped++;
          }
          await this.audit.append(tx, actor, {
            action: 'dataset.items.add',
            entityType: 'Dataset',
            entityId: datasetId,
            details: {
              source: meta.source,
              batch: meta.batch,
              imported: toCreate.length,
              duplicates,
              skipped,
              female: toCreate.filter((s) => s.p.label === 'FEMALE').map((s) => s.p.sha256),
              male: toCreate.filter((s) => s.p.label === 'MALE').map((s) => s.p.sha256),
            },
          });
          return true;
        }, TX_OPTIONS),
    );
  }

  /** Serialises writers (imports, removals, snapshots) of one dataset; NOT_FOUND if it is gone. */
  private async lockDataset(tx: Tx, datasetId: string): Promise<void> {
    const rows = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM "Dataset" WHERE id = ${datasetId}::uuid FOR UPDATE`;
    if (!rows.length) throw notFound('Dataset', datasetId);
  }

  // ---- groups --------------------------------------------------------------------------------

  /** Group keys sent with an upload: one per file (null = none), trimmed, at most MAX_GROUP_KEY_LENGTH characters. */
  checkGroupKeys(groupKeys: Array<string | null> | null | undefined, fileCount: number): Array<string | null> | undefined {
    if (groupKeys == null) return undefined;
    if (groupKeys.length !== fileCount) throw badInput(`groupKeys has ${groupKeys.length} entries for ${fileCount} files; give one per file (null for none)`);
    return groupKeys.map((k, i) => normaliseGroupKey(k, `groupKeys[${i}]`));
  }

  /** Sets or clears (null) the group (person) of an item. Versions taken before keep the old group. */
  async setItemGroup(actor: Principal, itemId: string, groupKey: string | null): Promise<DatasetItemWithImage> {
    const group = normaliseGroupKey(groupKey, 'groupKey');
    return this.db.$transaction(async (tx) => {
      const item = await tx.datasetItem.findUnique({ where: { id: itemId } });
      if (!item) throw notFound('DatasetItem', itemId);
      await this.lockDataset(tx, item.datasetId);
      const updated = await tx.datasetItem.update({ where: { id: itemId }, data: { groupKey: group }, include: { image: true } });
      await this.audit.append(tx, actor, {
        action: 'dataset.item.group',
        entityType: 'DatasetItem',
        entityId: itemId,
        details: { datasetId: item.datasetId, from: item.groupKey, to: group },
      });
      return updated;
    });
  }

  // ---- removal -------------------------------------------------------------------------------

  /** Removes an item from the dataset (versions taken before keep it). Returns the dataset. */
  async removeItem(actor: Principal, itemId: string): Promise<Dataset> {
    return this.db.$transaction(async (tx) => {
      const item = await tx.datasetItem.findUnique({ where: { id: itemId }, include: { image: { select: { sha256: true } } } });
      if (!item) throw notFound('DatasetItem', itemId);
      await this.lockDataset(tx, item.datasetId);
      const { count } = await tx.datasetItem.deleteMany({ where: { id: itemId } });
      if (count === 0) throw notFound('DatasetItem', itemId);
      await this.audit.append(tx, actor, {
        action: 'dataset.item.remove',
        entityType: 'DatasetItem',
        entityId: itemId,
        details: { datasetId: item.datasetId, sha256: item.image.sha256, label: item.label },
      });
      return tx.dataset.findUniqueOrThrow({ where: { id: item.datasetId } });
    });
  }

  // ---- versions ------------------------------------------------------------------------------

  /** Freezes the current items into DatasetVersion n+1, with its manifest in the object store. */
  async snapshot(actor: Principal, datasetId: string): Promise<DatasetVersion> {
    let manifest: StoredObject | undefined;
    try {
      return await this.db.$transaction(async (tx) => {
        await this.lockDataset(tx, datasetId);
        const dataset = await tx.dataset.findUniqueOrThrow({ where: { id: datasetId } });
        const items = await tx.datasetItem.findMany({ where: { datasetId }, select: { imageId: true, label: true, groupKey: true, image: { select: { sha256: true } } } });
        if (!items.length) throw badInput(`Dataset "${dataset.name}" has no items; add images before taking a snapshot`);
        items.sort((a, b) => (a.image.sha256 < b.image.sha256 ? -1 : a.image.sha256 > b.image.sha256 ? 1 : 0));
        const last = await tx.datasetVersion.findFirst({ where: { datasetId }, orderBy: { version: 'desc' }, select: { version: true } });
        const version = (last?.version ?? 0) + 1;
        const femaleCount = items.filter((i) => i.label === 'FEMALE').length;
        const body: DatasetManifest = {
          format: MANIFEST_FORMAT,
          datasetId,
          datasetName: dataset.name,
          version,
          itemCount: items.length,
          femaleCount,
          maleCount: items.length - femaleCount,
          items: items.map((i) => ({ sha256: i.image.sha256, label: i.label, group: i.groupKey })),
        };
        manifest = await this.store.putContent(MANIFEST_PREFIX, Buffer.from(canonicalJson(body), 'utf8'), 'application/json');
        const row = await tx.datasetVersion.create({
          data: {
            datasetId,
            version,
            manifestKey: manifest.key,
            manifestSha256: manifest.sha256,
            itemCount: body.itemCount,
            femaleCount: body.femaleCount,
            maleCount: body.maleCount,
            createdById: actor.keyId,
          },
        });
        for (let i = 0; i < items.length; i += VERSION_ITEM_CHUNK) {
          await tx.datasetVersionItem.createMany({
            data: items.slice(i, i + VERSION_ITEM_CHUNK).map((it) => ({ datasetVersionId: row.id, imageId: it.imageId, label: it.label, groupKey: it.groupKey })),
          });
        }
        await this.audit.append(tx, actor, {
          action: 'dataset.snapshot',
          entityType: 'DatasetVersion',
          entityId: row.id,
          details: {
            datasetId,
            datasetName: dataset.name,
            version,
            itemCount: body.itemCount,
            femaleCount: body.femaleCount,
            maleCount: body.maleCount,
            manifestKey: manifest.key,
            manifestSha256: manifest.sha256,
          },
        });
        return row;
      }, TX_OPTIONS);
    } catch (err) {
      if (manifest?.created) {
        const key = manifest.key;
        const referenced = await this.db.datasetVersion.findFirst({ where: { manifestKey: key }, select: { id: true } }).catch(() => ({ id: 'unknown' }));
        if (!referenced) await this.store.delete(key).catch(() => undefined);
      }
      if (isUniqueViolation(err)) throw conflict('Another snapshot of this dataset was taken at the same moment; try again');
      throw err;
    }
  }

  async getVersion(id: string): Promise<DatasetVersion> {
    const found = await this.db.datasetVersion.findUnique({ where: { id } });
    if (!found) throw notFound('DatasetVersion', id);
    return found;
  }

  /** Versions of a dataset, newest first. */
  listVersions(datasetId: string): Promise<DatasetVersion[]> {
    return this.db.datasetVersion.findMany({ where: { datasetId }, orderBy: { version: 'desc' } });
  }

  /** Every item of a frozen version, sorted by sha256 (the manifest's order). NOT_FOUND if unknown. */
  async listVersionItems(versionId: string): Promise<VersionItem[]> {
    await this.getVersion(versionId);
    const rows = await this.db.datasetVersionItem.findMany({
      where: { datasetVersionId: versionId },
      select: { imageId: true, label: true, groupKey: true, image: { select: { sha256: true, objectKey: true } } },
    });
    return rows
      .map((r) => ({ imageId: r.imageId, sha256: r.image.sha256, objectKey: r.image.objectKey, label: r.label, groupKey: r.groupKey }))
      .sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
  }

  /** The manifest of a version, read back and checked against its recorded SHA-256. */
  async readManifest(versionId: string): Promise<{ bytes: Buffer; manifest: DatasetManifest }> {
    const version = await this.getVersion(versionId);
    const bytes = await this.store.get(version.manifestKey);
    if (sha256Hex(bytes) !== version.manifestSha256) {
      throw new Error(`The manifest of dataset version ${versionId} does not match its SHA-256 (${version.manifestSha256}); the object store was altered`);
    }
    return { bytes, manifest: JSON.parse(bytes.toString('utf8')) as DatasetManifest };
  }

  manifestUrl(version: Pick<DatasetVersion, 'manifestKey'>): Promise<string> {
    return this.store.presignedGetUrl(version.manifestKey, this.config.presignedUrlSeconds);
  }
}
