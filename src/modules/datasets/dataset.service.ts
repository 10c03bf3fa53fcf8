// Datasets: labelled eye images curated by admins. This service creates and reads datasets and
// changes single items; imports live in dataset-import.service.ts, frozen versions in
// dataset-versions.service.ts. Writers of one dataset are serialised by a row lock on the Dataset
// (lockDataset below, taken by all three).
import type { Db, Tx } from '../../db/prisma.js';
import { isUniqueViolation, sqlOfPrisma } from '../../db/sql.js';
import type { Dataset } from '../../generated/prisma/client.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import * as store from './dataset.store.js';
import type { DatasetItemWithImage } from './dataset.store.js';

/** Longest group key accepted. */
export const MAX_GROUP_KEY_LENGTH = 200;

export interface ClassCounts {
  female: number;
  male: number;
  total: number;
}

/** A group key as stored: trimmed; empty means none; too long is BAD_USER_INPUT. */
export function normaliseGroupKey(raw: string | null | undefined, what: string): string | null {
  const key = raw?.trim() ?? '';
  if (!key) return null;
  if (key.length > MAX_GROUP_KEY_LENGTH) throw badInput(`${what} is ${key.length} characters long; the limit is ${MAX_GROUP_KEY_LENGTH}`);
  return key;
}

/** Takes the dataset's writer lock for the rest of the transaction; NOT_FOUND if it is gone. */
export async function lockDataset(tx: Tx, datasetId: string): Promise<void> {
  if (!(await store.lockDataset(tx, datasetId))) throw notFound('Dataset', datasetId);
}

export class DatasetService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  async create(actor: Principal, input: { name: string; description?: string | null }): Promise<Dataset> {
    const name = input.name.trim();
    if (!name) throw badInput('A dataset needs a name, e.g. eyes-rtte');
    if (name.length > 100) throw badInput('The dataset name must be at most 100 characters');
    if (/[\u0000-\u001f\u007f]/.test(name)) throw badInput('The dataset name must not contain control characters');
    const description = input.description?.trim() || null;
    const taken = () => conflict(`A dataset named "${name}" already exists`, { name });
    if (await store.datasetByName(this.db, name)) throw taken();
    try {
      return await this.db.$transaction(async (tx) => {
        const dataset = await store.insertDataset(tx, { name, description, createdById: actor.keyId });
        await this.audit.append(sqlOfPrisma(tx), actor, { action: 'dataset.create', entityType: 'Dataset', entityId: dataset.id, details: { name, description } });
        return dataset;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw taken();
      throw err;
    }
  }

  async get(id: string): Promise<Dataset> {
    const found = await store.datasetById(this.db, id);
    if (!found) throw notFound('Dataset', id);
    return found;
  }

  getByName(name: string): Promise<Dataset | null> {
    return store.datasetByName(this.db, name);
  }

  list(page: PageRequest) {
    return paginate(page, (take) => store.listDatasets(this.db, page.after, take));
  }

  async counts(datasetId: string): Promise<ClassCounts> {
    const byLabel = await store.itemCountsByLabel(this.db, datasetId);
    const female = byLabel.get('FEMALE') ?? 0;
    const male = byLabel.get('MALE') ?? 0;
    return { female, male, total: female + male };
  }

  listItems(datasetId: string, filter: { label?: Sex | null; sha256?: string | null }, page: PageRequest) {
    const sha256 = filter.sha256?.trim().toLowerCase();
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw badInput('sha256 must be 64 hexadecimal characters');
    return paginate(page, (take) => store.listItems(this.db, datasetId, { label: filter.label ?? undefined, sha256 }, page.after, take));
  }

  /** Sets or clears (null) the group (person) of an item. Versions taken before keep the old group. */
  async setItemGroup(actor: Principal, itemId: string, groupKey: string | null): Promise<DatasetItemWithImage> {
    const group = normaliseGroupKey(groupKey, 'groupKey');
    return this.db.$transaction(async (tx) => {
      const item = await store.itemById(tx, itemId);
      if (!item) throw notFound('DatasetItem', itemId);
      await lockDataset(tx, item.datasetId);
      const updated = await store.setItemGroup(tx, itemId, group);
      await this.audit.append(sqlOfPrisma(tx), actor, {
        action: 'dataset.item.group',
        entityType: 'DatasetItem',
        entityId: itemId,
        details: { datasetId: item.datasetId, from: item.groupKey, to: group },
      });
      return updated;
    });
  }

  /** Removes an item from the dataset (versions taken before keep it). Returns the dataset. */
  async removeItem(actor: Principal, itemId: string): Promise<Dataset> {
    return this.db.$transaction(async (tx) => {
      const item = await store.itemById(tx, itemId);
      if (!item) throw notFound('DatasetItem', itemId);
      await lockDataset(tx, item.datasetId);
      if (!(await store.deleteItem(tx, itemId))) throw notFound('DatasetItem', itemId);
      await this.audit.append(sqlOfPrisma(tx), actor, {
        action: 'dataset.item.remove',
        entityType: 'DatasetItem',
        entityId: itemId,
        details: { datasetId: item.datasetId, sha256: item.image.sha256, label: item.label },
      });
      const dataset = await store.datasetById(tx, item.datasetId);
      if (!dataset) throw notFound('Dataset', item.datasetId);
      return dataset;
    });
  }
}
