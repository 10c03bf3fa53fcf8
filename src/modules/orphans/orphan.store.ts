// SQL of the orphan sweeper: which of a list of object keys some row still references.
import { text } from '../../db/rows.js';
import type { Sql } from '../../db/sql.js';

/** The kinds of object the platform stores, by key prefix, and the column that references each. */
export const OBJECT_KINDS = [
  { kind: 'image', prefix: 'images/', table: 'Image', column: 'objectKey' },
  { kind: 'explanation', prefix: 'explanations/', table: 'Explanation', column: 'objectKey' },
  { kind: 'modelBundle', prefix: 'models/', table: 'ModelVersion', column: 'artifactKey' },
  { kind: 'checkpoint', prefix: 'checkpoints/', table: 'TrainingEpoch', column: 'checkpointKey' },
  { kind: 'manifest', prefix: 'manifests/', table: 'DatasetVersion', column: 'manifestKey' },
] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

/** The subset of `keys` that a row of `kind` references. */
export async function referencedKeys(sql: Sql, kind: ObjectKind, keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  // Table and column come from OBJECT_KINDS above, never from input.
  const rows = await sql.query(`SELECT "${kind.column}" AS key FROM "${kind.table}" WHERE "${kind.column}" = ANY($1::text[])`, [keys]);
  return new Set(rows.map((r) => text(r, 'key')));
}
