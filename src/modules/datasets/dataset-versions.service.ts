// Frozen dataset versions. A snapshot copies the current items into an immutable DatasetVersion
// and stores its manifest (canonical JSON: sha256, label and group of every item, sorted by
// sha256) content-addressed in the object store. Snapshots take the dataset's writer lock.
import type { Config } from '../../config.js';
import type { Db } from '../../db/prisma.js';
import { isUniqueViolation, sqlOfPrisma } from '../../db/sql.js';
import type { DatasetVersion } from '../../generated/prisma/client.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { sha256Hex } from '../../shared/hash.js';
import type { ObjectStore, StoredObject } from '../../storage/object-store.js';
import { type AuditService, canonicalJson } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import * as store from './dataset.store.js';
import type { VersionItem } from './dataset.store.js';
import { type ClassCounts, lockDataset } from './dataset.service.js';

const TX_OPTIONS = { timeout: 120_000, maxWait: 15_000 };
export const MANIFEST_PREFIX = 'manifests';
/** Version 2 adds each item's group (the person, or null). */
export const MANIFEST_FORMAT = 'eyecase.dataset-manifest/2';

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

export class DatasetVersionService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
    private readonly config: Pick<Config, 'presignedUrlSeconds'>,
  ) {}

  /** Freezes the current items into DatasetVersion n+1, with its manifest in the object store. */
  async snapshot(actor: Principal, datasetId: string): Promise<DatasetVersion> {
    let manifest: StoredObject | undefined;
    try {
      return await this.db.$transaction(async (tx) => {
        await lockDataset(tx, datasetId);
        const dataset = await store.datasetById(tx, datasetId);
        if (!dataset) throw notFound('Dataset', datasetId);
        const items = await store.currentItems(tx, datasetId);
        if (!items.length) throw badInput(`Dataset "${dataset.name}" has no items; add images before taking a snapshot`);
        const version = (await store.lastVersionNumber(tx, datasetId)) + 1;
        const femaleCount = items.filter((i) => i.label === 'FEMALE').length;
        const body: DatasetManifest = {
          format: MANIFEST_FORMAT,
          datasetId,
          datasetName: dataset.name,
          version,
          itemCount: items.length,
          femaleCount,
          maleCount: items.length - femaleCount,
          items: items.map((i) => ({ sha256: i.sha256, label: i.label, group: i.groupKey })),
        };
        manifest = await this.objects.putContent(MANIFEST_PREFIX, Buffer.from(canonicalJson(body), 'utf8'), 'application/json');
        const row = await store.insertVersion(tx, {
          datasetId,
          version,
          manifestKey: manifest.key,
          manifestSha256: manifest.sha256,
          itemCount: body.itemCount,
          femaleCount: body.femaleCount,
          maleCount: body.maleCount,
          createdById: actor.keyId,
        });
        await store.insertVersionItems(tx, row.id, items);
        await this.audit.append(sqlOfPrisma(tx), actor, {
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
        // When in doubt (the database is unreachable), keep the object: the orphan sweep finds it later.
        const referenced = await store.manifestReferenced(this.db, key).catch(() => true);
        if (!referenced) await this.objects.delete(key).catch(() => undefined);
      }
      if (isUniqueViolation(err)) throw conflict('Another snapshot of this dataset was taken at the same moment; try again');
      throw err;
    }
  }

  async getVersion(id: string): Promise<DatasetVersion> {
    const found = await store.versionById(this.db, id);
    if (!found) throw notFound('DatasetVersion', id);
    return found;
  }

  /** Versions of a dataset, newest first. */
  listVersions(datasetId: string): Promise<DatasetVersion[]> {
    return store.listVersions(this.db, datasetId);
  }

  /** Items per label, as frozen in the version. */
  counts(version: Pick<DatasetVersion, 'femaleCount' | 'maleCount' | 'itemCount'>): ClassCounts {
    return { female: version.femaleCount, male: version.maleCount, total: version.itemCount };
  }

  /** Every item of a frozen version, sorted by sha256 (the manifest's order). NOT_FOUND if unknown. */
  async listVersionItems(versionId: string): Promise<VersionItem[]> {
    await this.getVersion(versionId);
    return store.versionItems(this.db, versionId);
  }

  /** The manifest of a version, read back and checked against its recorded SHA-256. */
  async readManifest(versionId: string): Promise<{ bytes: Buffer; manifest: DatasetManifest }> {
    const version = await this.getVersion(versionId);
    const bytes = await this.objects.get(version.manifestKey);
    if (sha256Hex(bytes) !== version.manifestSha256) {
      throw new Error(`The manifest of dataset version ${versionId} does not match its SHA-256 (${version.manifestSha256}); the object store was altered`);
    }
    return { bytes, manifest: JSON.parse(bytes.toString('utf8')) as DatasetManifest };
  }

  manifestUrl(version: Pick<DatasetVersion, 'manifestKey'>): Promise<string> {
    return this.objects.presignedGetUrl(version.manifestKey, this.config.presignedUrlSeconds);
  }
}
