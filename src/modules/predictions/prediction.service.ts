// Classification of case evidence. A prediction is evidence itself: written once (the database
// refuses UPDATE and DELETE), with everything needed to reproduce and trace it (image SHA-256,
// model version and artifact SHA-256, backend, preprocessing version, thresholds), and audited.
import type { Db, Tx } from '../../db/prisma.js';
import { advisoryXactLock, isUniqueViolation, newId, type Sql, toSql } from '../../db/sql.js';
import type { Explanation, Prediction } from '../../generated/prisma/client.js';
import { conflict, notFound } from '../../errors.js';
import type { PredictionResult } from '../../ml/index.js';
import { afterCursorWhere, NEWEST_FIRST, paginate, type PageRequest } from '../../shared/pagination.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import type { CaseService } from '../cases/case.service.js';
import type { EvidenceService, EvidenceWithImage } from '../evidence/evidence.service.js';
import type { IdempotencyService, IdempotentRequest } from '../idempotency/idempotency.service.js';
import type { ImageService } from '../images/image.service.js';
import type { ModelServing, ServedModel } from '../registry/model-serving.js';

export const EXPLANATION_PREFIX = 'explanations';

interface Inference {
  model: ServedModel;
  result: PredictionResult;
  /** The caller named this version (rather than taking production). */
  named: boolean;
}

export class PredictionService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly cases: CaseService,
    private readonly evidence: EvidenceService,
    private readonly images: ImageService,
    private readonly store: ObjectStore,
    private readonly serving: ModelServing,
    private readonly idempotency: IdempotencyService,
  ) {}

  /** The production model, or the named version (a candidate may be named, for comparison). */
  async model(modelVersionId?: string | null): Promise<ServedModel> {
    if (!modelVersionId) return this.serving.production();
    // The stage is read fresh: a loaded model may have been archived since.
    const row = await this.db.modelVersion.findUnique({ where: { id: modelVersionId }, select: { stage: true, version: true } });
    if (!row) throw notFound('ModelVersion', modelVersionId);
    if (row.stage === 'ARCHIVED') throw conflict(`Model version ${row.version} is archived (withdrawn) and no longer classifies`);
    return this.serving.byId(modelVersionId);
  }

  /** Classifies stored evidence; with an Idempotency-Key, once per key (a retry gets the same prediction). */
  async classifyEvidence(actor: Principal, evidenceId: string, modelVersionId?: string | null, request?: IdempotentRequest): Promise<Prediction> {
    return this.idempotency.run(
      request,
      (prior) => this.get(prior.predictionId as string),
      async (claim) => {
        const evidence = await this.evidence.get(evidenceId);
        await this.cases.requireOpen(evidence.caseId);
        const model = await this.model(modelVersionId);
        const result = await model.classifier.predict(await this.images.get(evidence.image.objectKey));
        return this.db.$transaction(async (tx) => {
          await claim?.claim(toSql(tx));
          await this.cases.requireOpen(evidence.caseId, tx);
          const prediction = await this.record(tx, actor, evidence, { model, result, named: !!modelVersionId });
          await claim?.complete(toSql(tx), { predictionId: prediction.id });
          return prediction;
        });
      },
    );
  }

  /** Adds the image as evidence and classifies it, in one transaction; with an Idempotency-Key, once per key. */
  async classifyImage(
    actor: Principal,
    input: { caseId: string; bytes: Buffer; filename?: string; note?: string | null; modelVersionId?: string | null },
    request?: IdempotentRequest,
  ): Promise<{ evidence: EvidenceWithImage; prediction: Prediction }> {
    return this.idempotency.run(
      request,
      async (prior) => ({ evidence: await this.evidence.get(prior.evidenceId as string), prediction: await this.get(prior.predictionId as string) }),
      async (claim) => {
        const model = await this.model(input.modelVersionId);
        const { evidence, extra } = await this.evidence.add(actor, input, {
          prepare: async (bytes) => ({ model, result: await model.classifier.predict(bytes), named: !!input.modelVersionId }),
          then: (tx, ev, inference) => this.record(tx, actor, ev, inference),
          idempotency: claim,
        });
        return { evidence, prediction: extra };
      },
    );
  }

  /** Classifies every evidence item of the case that the production model has not classified yet. */
  async classifyCaseEvidence(actor: Principal, caseId: string): Promise<Prediction[]> {
    await this.cases.requireOpen(caseId);
    const model = await this.serving.production();
    const pending = await this.db.evidence.findMany({
      where: { caseId, predictions: { none: { modelVersionId: model.version.id } } },
      include: { image: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    if (pending.length === 0) return [];
    const results = await model.classifier.predictBatch(await this.images.getMany(pending.map((e) => e.image.objectKey)));
    return this.db.$transaction(
      async (tx) => {
        await this.cases.requireOpen(caseId, tx);
        // Two calls at once (a double click) must not both record: serialise per case, then skip
        // what the other call recorded meanwhile. Predictions can never be deleted afterwards.
        const sql = toSql(tx);
        await advisoryXactLock(sql, `classify-case:${caseId}`);
        const done = new Set(
          (await sql.query<{ evidenceId: string }>('SELECT "evidenceId" FROM "Prediction" WHERE "caseId" = $1::uuid AND "modelVersionId" = $2::uuid', [caseId, model.version.id])).map((r) => r.evidenceId),
        );
        const out: Prediction[] = [];
        for (let i = 0; i < pending.length; i++) {
          if (!done.has(pending[i].id)) out.push(await this.record(tx, actor, pending[i], { model, result: results[i], named: false }));
        }
        return out;
      },
      { timeout: 60_000 },
    );
  }

  private async record(tx: Tx | Sql, actor: Principal, evidence: EvidenceWithImage, { model, result, named }: Inference): Promise<Prediction> {
    const mv = model.version;
    const sql = toSql(tx);
    // The loaded model's row may be stale: its stage now is what the record and the audit keep.
    const [current] = await sql.query<{ stage: string }>('SELECT stage FROM "ModelVersion" WHERE id = $1::uuid', [mv.id]);
    if (named && current?.stage === 'ARCHIVED') throw conflict(`Model version ${mv.version} is archived (withdrawn) and no longer classifies`);
    const [prediction] = await sql.query<Prediction>(
      `INSERT INTO "Prediction" (id, "caseId", "evidenceId", "imageSha256", "modelVersionId", "artifactSha256", backend, "preprocessingVersion",
         "thresholdFemale", "thresholdMale", "probFemale", "probMale", decision, "latencyMs", "requestedById")
       VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid, $6, $7, $8, $9, $10, $11, $12, $13::"Decision", $14, $15::uuid) RETURNING *`,
      [
        newId(), evidence.caseId, evidence.id, evidence.image.sha256, mv.id, model.classifier.sha256, result.backend,
        String(model.classifier.meta.preprocessingVersion), result.thresholds.female, result.thresholds.male,
        result.pFemale, result.pMale, result.decision, result.latencyMs, actor.keyId,
      ],
    );
    await this.audit.append(tx, actor, {
      action: 'prediction.create',
      entityType: 'Prediction',
      entityId: prediction.id,
      details: {
        caseId: evidence.caseId,
        evidenceId: evidence.id,
        imageSha256: evidence.image.sha256,
        modelVersionId: mv.id,
        modelVersion: mv.version,
        modelStage: current?.stage ?? mv.stage,
        artifactSha256: prediction.artifactSha256,
        decision: prediction.decision,
        probFemale: prediction.probFemale,
      },
    });
    return prediction;
  }

  /** Renders (once) the heatmap of what drove the decision, stores it, and returns the record. */
  async explain(actor: Principal, predictionId: string): Promise<Explanation> {
    const existing = await this.db.explanation.findUnique({ where: { predictionId } });
    if (existing) return existing;
    const prediction = await this.get(predictionId);
    const evidence = await this.evidence.get(prediction.evidenceId);
    const model = await this.serving.byId(prediction.modelVersionId);
    const { png, method } = await model.classifier.explain(await this.images.get(evidence.image.objectKey));
    const stored = await this.store.putContent(EXPLANATION_PREFIX, png, 'image/png');
    try {
      return await this.db.$transaction(async (tx) => {
        const explanation = await tx.explanation.create({ data: { predictionId, method, objectKey: stored.key, sha256: stored.sha256 } });
        await this.audit.append(tx, actor, { action: 'prediction.explain', entityType: 'Prediction', entityId: predictionId, details: { method, sha256: stored.sha256 } });
        return explanation;
      });
    } catch (err) {
      // Two requests rendered it at once: keep the first.
      if (isUniqueViolation(err)) return this.db.explanation.findUniqueOrThrow({ where: { predictionId } });
      throw err;
    }
  }

  async get(id: string): Promise<Prediction> {
    const prediction = await this.db.prediction.findUnique({ where: { id } });
    if (!prediction) throw notFound('Prediction', id);
    return prediction;
  }

  listByModelVersion(modelVersionId: string, page: PageRequest) {
    return paginate(page, (take) => this.db.prediction.findMany({ where: { AND: [{ modelVersionId }, afterCursorWhere(page.after)] }, orderBy: NEWEST_FIRST, take }));
  }

  /** Everything a printed case report needs, in a constant number of queries. */
  async caseReport(caseId: string) {
    const kase = await this.cases.get(caseId);
    const [evidence, predictions] = await Promise.all([
      this.db.evidence.findMany({ where: { caseId }, include: { image: true }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
      this.db.prediction.findMany({ where: { caseId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
    ]);
    const auditEvents = await this.db.auditEvent.findMany({
      where: {
        OR: [
          { entityType: 'Case', entityId: caseId },
          { entityType: 'Evidence', entityId: { in: evidence.map((e) => e.id) } },
          { entityType: 'Prediction', entityId: { in: predictions.map((p) => p.id) } },
        ],
      },
      orderBy: { seq: 'asc' },
    });
    return { case: kase, evidence, predictions, auditEvents, generatedAt: new Date() };
  }
}
