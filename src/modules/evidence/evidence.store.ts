// Database access of the evidence module. Adding and reading evidence for classification are hot
// paths (plain SQL); listings and the duplicate report use Prisma.
import type { Db } from '../../db/prisma.js';
import * as col from '../../db/rows.js';
import type { Row } from '../../db/rows.js';
import { newId, type Sql } from '../../db/sql.js';
import type { CaseStatus, Evidence, Image } from '../../generated/prisma/client.js';
import { afterCursorWhere, NEWEST_FIRST } from '../../shared/pagination.js';
import { visibleToKeySql } from '../cases/case.store.js';
import { imageFromRow, prefixedImageColumns } from '../images/image.store.js';

export type EvidenceWithImage = Evidence & { image: Image };

const EVIDENCE_COLUMNS = 'e.id, e."caseId", e."imageId", e.note, e."addedById", e."createdAt"';

export function evidenceFromRow(row: Row): Evidence {
  return {
    id: col.text(row, 'id'),
    caseId: col.text(row, 'caseId'),
    imageId: col.text(row, 'imageId'),
    note: col.textOrNull(row, 'note'),
    addedById: col.text(row, 'addedById'),
    createdAt: col.date(row, 'createdAt'),
  };
}

export async function insertEvidence(sql: Sql, evidence: { caseId: string; imageId: string; note: string | null; addedById: string }): Promise<Evidence> {
  const [row] = await sql.query(
    `INSERT INTO "Evidence" AS e (id, "caseId", "imageId", note, "addedById") VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid) RETURNING ${EVIDENCE_COLUMNS}`,
    [newId(), evidence.caseId, evidence.imageId, evidence.note, evidence.addedById],
  );
  return evidenceFromRow(row);
}

/** Evidence with its image and the state of its case, as the access check and classification need them. */
export interface VisibleEvidence {
  evidence: EvidenceWithImage;
  caseReference: string;
  caseStatus: CaseStatus;
}

/** The evidence with its image and case state, if the key may see its case (see visibleCase); one statement. */
export async function visibleEvidence(sql: Sql, id: string, keyId: string, everyCase: boolean): Promise<VisibleEvidence | undefined> {
  const [row] = await sql.query(
    `SELECT ${EVIDENCE_COLUMNS}, ${prefixedImageColumns('image_')}, c.reference AS "caseReference", c.status AS "caseStatus"
       FROM "Evidence" e JOIN "Image" i ON i.id = e."imageId" JOIN "Case" c ON c.id = e."caseId"
      WHERE e.id = $1::uuid AND ${visibleToKeySql('c', '$2', '$3')}`,
    [id, keyId, everyCase],
  );
  if (!row) return undefined;
  return {
    evidence: { ...evidenceFromRow(row), image: imageFromRow(row, 'image_') },
    caseReference: col.text(row, 'caseReference'),
    caseStatus: col.oneOf(row, 'caseStatus', ['OPEN', 'CLOSED'] as const),
  };
}

/** The evidence of the case with this image, and the case's reference (what a duplicate upload collided with). */
export async function evidenceOfImage(sql: Sql, caseId: string, sha256: string): Promise<{ id: string; caseReference: string } | undefined> {
  const [row] = await sql.query(
    'SELECT e.id, c.reference FROM "Evidence" e JOIN "Image" i ON i.id = e."imageId" JOIN "Case" c ON c.id = e."caseId" WHERE e."caseId" = $1::uuid AND i.sha256 = $2',
    [caseId, sha256],
  );
  return row && { id: col.text(row, 'id'), caseReference: col.text(row, 'reference') };
}

/** A page of the case's evidence, newest first. */
export const evidencePage = (db: Db, caseId: string, after: string | null | undefined, take: number): Promise<EvidenceWithImage[]> =>
  db.evidence.findMany({ where: { AND: [{ caseId }, afterCursorWhere(after)] }, orderBy: NEWEST_FIRST, take, include: { image: true } });

/** Evidence with its image by id, for the per-request loader. */
export function evidenceByIds(db: Db, ids: string[]) {
  return db.evidence.findMany({ where: { id: { in: ids } }, include: { image: true } });
}
