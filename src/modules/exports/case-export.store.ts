// Database reads of a case export: a case's evidence, predictions and reviews page by page, oldest
// first, and the model versions its predictions used. (Its members and audit slice are the cases
// module's reads, in case.store.ts.)
import type { Db } from '../../db/prisma.js';

/** The last row of the previous page; rows are ordered by (createdAt, id). */
export type PageAfter = { createdAt: Date; id: string } | null;

const afterWhere = (after: PageAfter) => (after ? { OR: [{ createdAt: { gt: after.createdAt } }, { createdAt: after.createdAt, id: { gt: after.id } }] } : {});
const OLDEST_FIRST = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

/** The case's evidence with its images. */
export function evidencePage(db: Db, caseId: string, after: PageAfter, take: number) {
  return db.evidence.findMany({ where: { caseId, ...afterWhere(after) }, include: { image: true }, orderBy: OLDEST_FIRST, take });
}

/** The case's predictions, each with what identifies its model version. */
export function predictionsPage(db: Db, caseId: string, after: PageAfter, take: number) {
  return db.prediction.findMany({
    where: { caseId, ...afterWhere(after) },
    include: { modelVersion: { select: { id: true, name: true, version: true, artifactSha256: true } } },
    orderBy: OLDEST_FIRST,
    take,
  });
}

/** The reviews of the case's predictions. */
export function reviewsPage(db: Db, caseId: string, after: PageAfter, take: number) {
  return db.predictionReview.findMany({ where: { prediction: { caseId }, ...afterWhere(after) }, orderBy: OLDEST_FIRST, take });
}
