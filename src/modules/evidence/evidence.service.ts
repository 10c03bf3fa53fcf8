// Evidence: an image attached to a case. The bytes are validated and stored once per SHA-256;
// the Evidence row, the Image row and the audit event commit together or not at all.
import type { Db } from '../../db/prisma.js';
import { isUniqueViolation, newId, type Sql, type SqlDatabase } from '../../db/sql.js';
import type { Evidence, Image } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { afterCursorWhere, NEWEST_FIRST, paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import type { CaseService } from '../cases/case.service.js';
import type { IdempotencyClaim, IdempotencyService, IdempotentRequest } from '../idempotency/idempotency.service.js';
import type { ImageService } from '../images/image.service.js';

export interface EvidenceInput {
  caseId: string;
  bytes: Buffer;
  filename?: string;
  note?: string | null;
}

export type EvidenceWithImage = Evidence & { image: Image };

export class EvidenceService {
  constructor(
    private readonly db: Db,
    private readonly sql: SqlDatabase,
    private readonly audit: AuditService,
    private readonly cases: CaseService,
    private readonly images: ImageService,
    private readonly idempotency: IdempotencyService,
  ) {}

  /** addEvidence: adds the image once per Idempotency-Key (a retry gets the same evidence back). */
  async addOnce(actor: Principal, input: EvidenceInput, request?: IdempotentRequest): Promise<EvidenceWithImage> {
    return this.idempotency.run(
      request,
      (prior) => this.get(actor, prior.evidenceId as string),
      async (claim) => (await this.add(actor, input, { idempotency: claim })).evidence,
    );
  }

  /**
   * Adds evidence. classifyImage hooks in: `prepare` runs once the bytes are validated, alongside
   * their storing and before the transaction (inference, kept out of it); `then` runs inside the
   * transaction, so the prediction commits or rolls back with the evidence.
   */
  async add<P = undefined, T = undefined, D = undefined>(
    actor: Principal,
    input: EvidenceInput,
    hooks: {
      /** The full decode that validates the bytes (one decode for validation and inference); its result goes to prepare. */
      decode?: (bytes: Buffer) => Promise<D>;
      prepare?: (bytes: Buffer, decoded: D) => Promise<P>;
      then?: (sql: Sql, evidence: EvidenceWithImage, prepared: P) => Promise<T>;
      /** Taken first in the transaction, completed with the ids created (see IdempotencyService). */
      idempotency?: IdempotencyClaim;
    } = {},
  ): Promise<{ evidence: EvidenceWithImage; extra: T }> {
    const note = input.note?.trim() || null;
    if (note && note.length > 2000) throw badInput('The note must be at most 2000 characters');
    await this.cases.requireOpen(actor, input.caseId);
    const validated = await this.images.validate(input.bytes, input.filename ? `The file "${input.filename}"` : undefined, hooks.decode);
    // Storing the bytes and the caller's preparation (inference) run side by side.
    const [stored, preparing] = await Promise.allSettled([this.images.store(validated), hooks.prepare ? hooks.prepare(validated.bytes, validated.decoded) : Promise.resolve(undefined as P)]);
    if (stored.status === 'rejected') throw stored.reason;
    const staged = stored.value;
    return this.images.withStaged([staged], async () => {
      if (preparing.status === 'rejected') throw preparing.reason;
      const prepared = preparing.value;
      try {
        return await this.sql.transaction(async (sql) => {
          await hooks.idempotency?.claim(sql);
          const kase = await this.cases.requireOpen(actor, input.caseId, sql);
          const image = await this.images.upsert(sql, staged);
          const [row] = await sql.query<Evidence>(
            'INSERT INTO "Evidence" (id, "caseId", "imageId", note, "addedById") VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid) RETURNING *',
            [newId(), kase.id, image.id, note, actor.keyId],
          );
          const evidence = { ...row, image };
          await this.audit.append(sql, actor, {
            action: 'evidence.add',
            entityType: 'Evidence',
            entityId: evidence.id,
            details: { caseId: kase.id, caseReference: kase.reference, sha256: image.sha256, mediaType: image.mediaType, byteSize: image.byteSize, width: image.width, height: image.height, filename: input.filename ?? null },
          });
          const extra = hooks.then ? await hooks.then(sql, evidence, prepared) : (undefined as T);
          await hooks.idempotency?.complete(sql, { evidenceId: evidence.id, predictionId: (extra as { id?: string } | undefined)?.id ?? null });
          return { evidence, extra };
        });
      } catch (err) {
        if (isUniqueViolation(err, 'Evidence_caseId_imageId_key')) throw await this.duplicateError(input.caseId, staged.stored.sha256);
        throw err;
      }
    });
  }

  private async duplicateError(caseId: string, sha256: string) {
    const existing = await this.db.evidence.findFirst({ where: { caseId, image: { sha256 } }, include: { case: true } });
    return conflict(`This image (SHA-256 ${sha256}) is already evidence ${existing?.id ?? ''} of case ${existing?.case.reference ?? caseId}`, { evidenceId: existing?.id ?? null });
  }

  /** The evidence, if the caller may see its case; NOT_FOUND otherwise, as for evidence that does not exist. */
  async get(actor: Principal, id: string): Promise<EvidenceWithImage> {
    const found = await this.db.evidence.findUnique({ where: { id }, include: { image: true } });
    if (!found || !(await this.cases.canSee(actor, found.caseId))) throw notFound('Evidence', id);
    return found;
  }

  listForCase(caseId: string, page: PageRequest) {
    return paginate(page, (take) =>
      this.db.evidence.findMany({ where: { AND: [{ caseId }, afterCursorWhere(page.after)] }, orderBy: NEWEST_FIRST, take, include: { image: true } }),
    );
  }
}
