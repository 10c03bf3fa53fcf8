// Classification of case evidence. A prediction is evidence itself: written once (the database
// refuses UPDATE and DELETE), with everything needed to reproduce and trace it (image SHA-256,
// model version and artifact SHA-256, backend, preprocessing version, thresholds), and audited.
import type { Db } from '../../db/prisma.js';
import { isUniqueViolation, type Sql, type SqlDatabase, sqlOfPrisma } from '../../db/sql.js';
import type { Explanation, Prediction, PredictionReview, ReviewVerdict } from '../../generated/prisma/client.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { TEXT_LIMITS } from '../../graphql/text-limits.js';
import type { PredictionResult } from '../../ml/index.js';
import { paginate, type PageRequest } from '../../shared/pagination.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { AuditInput, AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import type { CaseService } from '../cases/case.service.js';
import type { EvidenceService, EvidenceWithImage } from '../evidence/evidence.service.js';
import type { IdempotencyService, IdempotentRequest } from '../idempotency/idempotency.service.js';
import type { ImageService } from '../images/image.service.js';
import { modelCardOf } from '../registry/model-card.js';
import type { ModelServing, ServedModel } from '../registry/model-serving.js';
import * as store from './prediction.store.js';

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
    private readonly sql: SqlDatabase,
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
    const row = await store.modelVersionState(this.sql, modelVersionId);
    if (!row) throw notFound('ModelVersion', modelVersionId);
    if (row.stage === 'ARCHIVED') throw conflict(`Model version ${row.version} is archived (withdrawn) and no longer classifies`);
    return this.serving.byId(modelVersionId);
  }

  /** Classifies stored evidence; with an Idempotency-Key, once per key (a retry gets the same prediction). */
  async classifyEvidence(actor: Principal, evidenceId: string, modelVersionId?: string | null, request?: IdempotentRequest): Promise<Prediction> {
    return this.idempotency.run(
      request,
      (prior) => this.get(actor, prior.predictionId as string),
      async (claim) => {
        const evidence = await this.evidence.getInOpenCase(actor, evidenceId);
        const model = await this.model(modelVersionId);
        const result = await model.classifier.predict(await this.images.get(evidence.image.objectKey));
        return this.sql.transaction(async (sql) => {
          await claim?.claim(sql);
          await this.cases.requireOpen(actor, evidence.caseId, sql);
          const { prediction, audit } = await this.record(sql, actor, evidence, { model, result, named: !!modelVersionId });
          await this.audit.append(sql, actor, audit);
          await claim?.complete(sql, { predictionId: prediction.id });
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
      async (prior) => ({ evidence: await this.evidence.get(actor, prior.evidenceId as string), prediction: await this.get(actor, prior.predictionId as string) }),
      async (claim) => {
        // The model is taken once the case is known to be open and visible (evidence.add checks
        // first), so a caller who may not see the case learns nothing else.
        const { evidence, extra } = await this.evidence.add(actor, input, {
          // The classifier's decode at its input size is also the upload's integrity check (one
          // decode for validation and inference).
          decode: async (bytes) => {
            const model = await this.model(input.modelVersionId);
            return { model, pixels: await model.classifier.decode(bytes) };
          },
          prepare: async (_bytes, { model, pixels }) => ({ model, result: await model.classifier.predictDecoded(pixels), named: !!input.modelVersionId }),
          then: async (sql, ev, inference) => {
            const { prediction, audit } = await this.record(sql, actor, ev, inference);
            return { value: prediction, audit: [audit] };
          },
          idempotency: claim,
        });
        return { evidence, prediction: extra };
      },
    );
  }

  /** Classifies every evidence item of the case that the production model has not classified yet. */
  async classifyCaseEvidence(actor: Principal, caseId: string): Promise<Prediction[]> {
    await this.cases.requireOpen(actor, caseId);
    const model = await this.serving.production();
    const pending = await store.unclassifiedEvidence(this.sql, caseId, model.version.id);
    if (pending.length === 0) return [];
    const results = await model.classifier.predictBatch(await this.images.getMany(pending.map((e) => e.image.objectKey)));
    return this.sql.transaction(async (sql) => {
      await this.cases.requireOpen(actor, caseId, sql);
      // Two calls at once (a double click) must not both record: serialise per case, then skip
      // what the other call recorded meanwhile. Predictions can never be deleted afterwards.
      await store.lockCaseClassification(sql, caseId);
      const done = await store.classifiedEvidenceIds(sql, caseId, model.version.id);
      const out: Prediction[] = [];
      const events: AuditInput[] = [];
      for (let i = 0; i < pending.length; i++) {
        if (done.has(pending[i].id)) continue;
        const { prediction, audit } = await this.record(sql, actor, pending[i], { model, result: results[i], named: false });
        out.push(prediction);
        events.push(audit);
      }
      await this.audit.appendAll(sql, actor, events);
      return out;
    });
  }

  /** Writes the prediction in the caller's transaction; returns it with its audit event (for the caller to append). */
  private async record(sql: Sql, actor: Principal, evidence: EvidenceWithImage, { model, result, named }: Inference): Promise<{ prediction: Prediction; audit: AuditInput }> {
    const mv = model.version;
    const { prediction, modelStage } = await store.insertPrediction(sql, {
      caseId: evidence.caseId,
      evidenceId: evidence.id,
      imageSha256: evidence.image.sha256,
      modelVersionId: mv.id,
      artifactSha256: model.classifier.sha256,
      backend: result.backend,
      preprocessingVersion: String(model.classifier.meta.preprocessingVersion),
      thresholdFemale: result.thresholds.female,
      thresholdMale: result.thresholds.male,
      probFemale: result.pFemale,
      probMale: result.pMale,
      decision: result.decision,
      guardScore: result.guard?.score ?? null,
      guardThreshold: result.guard?.threshold ?? null,
      latencyMs: result.latencyMs,
      requestedById: actor.keyId,
    });
    // The loaded model's row may be stale: its stage now (read by the insert) is what the audit keeps.
    if (named && modelStage === 'ARCHIVED') throw conflict(`Model version ${mv.version} is archived (withdrawn) and no longer classifies`);
    const audit = {
      action: 'prediction.create',
      entityType: 'Prediction',
      entityId: prediction.id,
      details: {
        caseId: evidence.caseId,
        evidenceId: evidence.id,
        imageSha256: evidence.image.sha256,
        modelVersionId: mv.id,
        modelVersion: mv.version,
        modelStage: modelStage ?? mv.stage,
        artifactSha256: prediction.artifactSha256,
        decision: prediction.decision,
        probFemale: prediction.probFemale,
        guardScore: prediction.guardScore,
      },
    };
    return { prediction, audit };
  }

  /** Renders (once) the heatmap of what drove the decision, stores it, and returns the record. */
  async explain(actor: Principal, predictionId: string): Promise<Explanation> {
    const prediction = await this.get(actor, predictionId);
    const existing = await store.explanationOf(this.db, predictionId);
    if (existing) return existing;
    const evidence = await this.evidence.get(actor, prediction.evidenceId);
    const model = await this.serving.byId(prediction.modelVersionId);
    const { png, method } = await model.classifier.explain(await this.images.get(evidence.image.objectKey));
    const stored = await this.store.putContent(EXPLANATION_PREFIX, png, 'image/png');
    try {
      return await this.db.$transaction(async (tx) => {
        const explanation = await store.createExplanation(tx, { predictionId, method, objectKey: stored.key, sha256: stored.sha256 });
        await this.audit.append(sqlOfPrisma(tx), actor, { action: 'prediction.explain', entityType: 'Prediction', entityId: predictionId, details: { method, sha256: stored.sha256 } });
        return explanation;
      });
    } catch (err) {
      // Two requests rendered it at once: keep the first.
      if (isUniqueViolation(err)) {
        const first = await store.explanationOf(this.db, predictionId);
        if (first) return first;
      }
      throw err;
    }
  }

  /** Admins see every prediction (ids and figures, not case contents); others those of cases they may see. */
  async get(actor: Principal, id: string): Promise<Prediction> {
    const prediction = await store.predictionById(this.sql, id);
    if (!prediction || (actor.role !== 'ADMIN' && !(await this.cases.canSee(actor, prediction.caseId)))) throw notFound('Prediction', id);
    return prediction;
  }

  listByModelVersion(actor: Principal, modelVersionId: string, page: PageRequest) {
    // Investigators see only what the version decided in their own cases.
    const visible = actor.role === 'INVESTIGATOR' ? { case: { members: { some: { apiKeyId: actor.keyId } } } } : {};
    return paginate(page, (take) => store.predictionsOfVersion(this.db, modelVersionId, visible, page.after, take));
  }

  /**
   * Records a person's verdict on a machine decision. Reviews are never changed: a later review
   * supersedes the earlier one, and both stay in the record and the audit log.
   */
  async review(actor: Principal, predictionId: string, verdict: ReviewVerdict, reason: string): Promise<PredictionReview> {
    const why = reason?.trim() ?? '';
    if (!why) throw badInput('A review needs a reason (what the reviewer saw or checked)');
    if (why.length > TEXT_LIMITS.reason) throw badInput(`The reason must be at most ${TEXT_LIMITS.reason} characters`);
    const prediction = await this.get(actor, predictionId);
    return this.db.$transaction(async (tx) => {
      await this.cases.requireOpen(actor, prediction.caseId, sqlOfPrisma(tx));
      const previous = await store.latestReview(tx, predictionId);
      const review = await store.createReview(tx, { predictionId, verdict, reason: why, reviewerId: actor.keyId });
      await this.audit.append(sqlOfPrisma(tx), actor, {
        action: 'prediction.review',
        entityType: 'Prediction',
        entityId: predictionId,
        details: { reviewId: review.id, caseId: prediction.caseId, verdict, reason: why, supersedes: previous?.id ?? null, machineDecision: prediction.decision },
      });
      return review;
    });
  }

  /**
   * Everything a printed case report needs, in a constant number of queries: each prediction with
   * its review state (reviewed findings and unreviewed machine decisions apart) and the model
   * card of its version beside it.
   */
  async caseReport(actor: Principal, caseId: string) {
    const kase = await this.cases.get(actor, caseId);
    const { evidence, predictions, reviews, versions } = await store.caseReportRows(this.db, caseId);
    const cards = new Map(versions.map((mv) => [mv.id, modelCardOf(mv)]));
    const latest = new Map<string, PredictionReview>();
    for (const r of reviews) latest.set(r.predictionId, r); // oldest first: the last one wins
    const reported = predictions.map((prediction) => {
      const review = latest.get(prediction.id) ?? null;
      return { prediction, review, reviewState: review?.verdict ?? 'UNREVIEWED', modelCard: cards.get(prediction.modelVersionId)! };
    });
    const auditEvents = await store.reportAuditEvents(this.db, caseId, evidence.map((e) => e.id), predictions.map((p) => p.id));
    return {
      case: kase,
      evidence,
      predictions,
      reviewedPredictions: reported.filter((r) => r.review),
      unreviewedMachineDecisions: reported.filter((r) => !r.review),
      modelCards: [...cards.values()],
      auditEvents,
      generatedAt: new Date(),
    };
  }
}
