// Evidence: an image attached to a case. The bytes are validated and stored once per SHA-256;
// the Evidence row, the Image row and the audit event commit together or not at all.
import type { Db } from '../../db/prisma.js';
import { isUniqueViolation, type Sql, type SqlDatabase } from '../../db/sql.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditInput, AuditService } from '../audit/audit.service.js';
import { type Principal, readsEveryCase } from '../auth/roles.js';
import { type CaseService, closedCaseError } from '../cases/case.service.js';
import type { IdempotencyClaim, IdempotencyService, IdempotentRequest } from '../idempotency/idempotency.service.js';
import type { ImageService } from '../images/image.service.js';
import * as store from './evidence.store.js';

export interface EvidenceInput {
  caseId: string;
  bytes: Buffer;
  filename?: string;
  note?: string | null;
}

export type { EvidenceWithImage } from './evidence.store.js';
type EvidenceWithImage = store.EvidenceWithImage;

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
   * transaction, so the prediction commits or rolls back with the evidence, and returns its audit
   * events, appended after the evidence's own in one statement.
   */
  async add<P = undefined, T = undefined, D = undefined>(
    actor: Principal,
    input: EvidenceInput,
    hooks: {
      /** The full decode that validates the bytes (one decode for validation and inference); its result goes to prepare. */
      decode?: (bytes: Buffer) => Promise<D>;
      prepare?: (bytes: Buffer, decoded: D) => Promise<P>;
      then?: (sql: Sql, evidence: EvidenceWithImage, prepared: P) => Promise<{ value: T; audit: AuditInput[] }>;
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
          const evidence = { ...(await store.insertEvidence(sql, { caseId: kase.id, imageId: image.id, note, addedById: actor.keyId })), image };
          const followUp = hooks.then ? await hooks.then(sql, evidence, prepared) : { value: undefined as T, audit: [] };
          const extra = followUp.value;
          // The audit events last: the chain lock they take is held for the rest of the transaction only.
          await this.audit.appendAll(sql, actor, [
            {
              action: 'evidence.add',
              entityType: 'Evidence',
              entityId: evidence.id,
              details: { caseId: kase.id, caseReference: kase.reference, sha256: image.sha256, mediaType: image.mediaType, byteSize: image.byteSize, width: image.width, height: image.height, filename: input.filename ?? null },
            },
            ...followUp.audit,
          ]);
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
    const existing = await store.evidenceOfImage(this.sql, caseId, sha256);
    return conflict(`This image (SHA-256 ${sha256}) is already evidence ${existing?.id ?? ''} of case ${existing?.caseReference ?? caseId}`, { evidenceId: existing?.id ?? null });
  }

  /** The evidence, if the caller may see its case; NOT_FOUND otherwise, as for evidence that does not exist. */
  async get(actor: Principal, id: string): Promise<EvidenceWithImage> {
    return (await this.visible(actor, id)).evidence;
  }

  /** The evidence, for work that adds to its case: as get(), and CONFLICT if the case is closed. */
  async getInOpenCase(actor: Principal, id: string): Promise<EvidenceWithImage> {
    const found = await this.visible(actor, id);
    if (found.caseStatus === 'CLOSED') throw closedCaseError(found.caseReference);
    return found.evidence;
  }

  private async visible(actor: Principal, id: string): Promise<store.VisibleEvidence> {
    const found = await store.visibleEvidence(this.sql, id, actor.keyId, readsEveryCase(actor));
    if (!found) throw notFound('Evidence', id);
    return found;
  }

  listForCase(caseId: string, page: PageRequest) {
    return paginate(page, (take) => store.evidencePage(this.db, caseId, page.after, take));
  }
}
