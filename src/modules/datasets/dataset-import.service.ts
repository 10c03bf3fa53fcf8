// Imports into a dataset (uploads, ZIP archives, folders on disk) all run through importFiles():
// files are read one by one, de-duplicated by SHA-256 (within the request and against the
// dataset), validated and stored through ImageService.stage(), and committed in batches of
// IMPORT_BATCH_SIZE items. Each batch is one transaction with its own audit event; a failed batch
// leaves no unreferenced new objects (ImageService.withStaged). Batches committed before a later
// failure stay (they are in the audit log), and running the same import again reports them as
// duplicates. archive.ts reads ZIP archives and sources.ts the other sources.
import type { Readable } from 'node:stream';
import type { Config } from '../../config.js';
import type { Db } from '../../db/prisma.js';
import { sqlOfPrisma } from '../../db/sql.js';
import type { Dataset } from '../../generated/prisma/client.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { AppError, badInput } from '../../errors.js';
import { mapLimit } from '../../shared/concurrency.js';
import { sha256Hex } from '../../shared/hash.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import type { ImageService, StagedImage } from '../images/image.service.js';
import { openLabelledZip, spoolToTempFile, type ArchiveItem } from './archive.js';
import * as store from './dataset.store.js';
import { type DatasetService, lockDataset, normaliseGroupKey } from './dataset.service.js';

/** Items committed per transaction. */
export const IMPORT_BATCH_SIZE = 200;
/** A batch is also committed once it holds this many bytes of images. */
const IMPORT_BATCH_BYTES = 64 * 1024 * 1024;
/** Images validated and stored in parallel. */
const STAGE_CONCURRENCY = 8;
const TX_OPTIONS = { timeout: 120_000, maxWait: 15_000 };

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

interface Pending {
  index: number;
  name: string;
  label: Sex;
  sha256: string;
  bytes: Buffer;
  group: string | null;
}

export class DatasetImportService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly images: ImageService,
    private readonly datasets: DatasetService,
    private readonly config: Pick<Config, 'uploads' | 'archive'>,
  ) {}

  /**
   * Uploaded files, all with one label. Too many files is a request-level PAYLOAD_TOO_LARGE.
   * groupKeys, when given, holds one group key (or null) per file; check it with checkGroupKeys.
   */
  async addImages(actor: Principal, datasetId: string, fileCount: number, files: AsyncIterable<ImportCandidate>): Promise<ImportSummary> {
    const max = this.config.uploads.maxDatasetFilesPerRequest;
    if (fileCount === 0) throw badInput('Send at least one file');
    if (fileCount > max) throw new AppError('PAYLOAD_TOO_LARGE', `${fileCount} files in one request; the limit is ${max} (send them in several requests, or as a ZIP archive)`, { maxFiles: max });
    await this.datasets.get(datasetId);
    return this.importFiles(actor, datasetId, files, { source: 'upload', total: fileCount });
  }

  /**
   * A ZIP archive with female/ and male/ folders, read from a stream: spooled to a temporary file
   * (deleted afterwards, always) and read entry by entry within config.archive limits.
   */
  async importArchive(actor: Principal, datasetId: string, archive: Readable, options: Omit<ImportOptions, 'source' | 'total'> = {}): Promise<ImportSummary> {
    await this.datasets.get(datasetId);
    const spooled = await spoolToTempFile(archive, this.config.archive.maxBytes);
    try {
      return await this.importArchiveFile(actor, datasetId, spooled.file, options);
    } finally {
      await spooled.cleanup();
    }
  }

  /** A ZIP archive already on disk (the file is left in place). */
  async importArchiveFile(actor: Principal, datasetId: string, file: string, options: Omit<ImportOptions, 'source' | 'total'> = {}): Promise<ImportSummary> {
    await this.datasets.get(datasetId);
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
    await this.datasets.get(datasetId);
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
        await lockDataset(tx, datasetId);
        await this.audit.append(sqlOfPrisma(tx), actor, {
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
    return { dataset: await this.datasets.get(datasetId), ...totals, files };
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
    const existing = await store.itemsWithSha256(this.db, datasetId, batch.map((p) => p.sha256));
    const existingBySha = new Map(existing.map((e) => [e.sha256, e]));
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
    const outcomes = await mapLimit(fresh, STAGE_CONCURRENCY, async (p) => {
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
          await lockDataset(tx, datasetId);
          const imageIds = await store.imageIdsBySha256(tx, staged.map((s) => s.p.sha256));
          for (const s of staged) {
            if (!imageIds.has(s.p.sha256)) imageIds.set(s.p.sha256, (await this.images.upsert(sqlOfPrisma(tx), s.staged)).id);
          }
          const alreadyByImage = await store.itemsOfImages(tx, datasetId, [...imageIds.values()]);
          const toCreate = staged.filter((s) => {
            const found = alreadyByImage.get(imageIds.get(s.p.sha256)!);
            if (found) markDuplicate(s.p, found);
            return !found;
          });
          const itemByImage = await store.insertItems(
            tx,
            toCreate.map((s) => ({ datasetId, imageId: imageIds.get(s.p.sha256)!, label: s.p.label, groupKey: s.p.group, addedById: actor.keyId })),
          );
          for (const s of toCreate) files[s.p.index] = { ...files[s.p.index], status: 'IMPORTED', itemId: itemByImage.get(imageIds.get(s.p.sha256)!) ?? null };

          let duplicates = 0;
          let skipped = 0;
          for (let i = meta.windowStart; i < files.length; i++) {
            if (files[i].status === 'DUPLICATE') duplicates++;
            else if (files[i].status === 'SKIPPED') skipped++;
          }
          await this.audit.append(sqlOfPrisma(tx), actor, {
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

  /** Group keys sent with an upload: one per file (null = none), trimmed, at most MAX_GROUP_KEY_LENGTH characters. */
  checkGroupKeys(groupKeys: Array<string | null> | null | undefined, fileCount: number): Array<string | null> | undefined {
    if (groupKeys == null) return undefined;
    if (groupKeys.length !== fileCount) throw badInput(`groupKeys has ${groupKeys.length} entries for ${fileCount} files; give one per file (null for none)`);
    return groupKeys.map((k, i) => normaliseGroupKey(k, `groupKeys[${i}]`));
  }
}
