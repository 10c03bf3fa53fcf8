// Two admins for a promotion: one asks (with a reason), another approves or rejects (with a
// reason). The key that asked can never decide, so a deployment with a single admin key cannot
// promote at all. Before an approval the candidate is compared with production on the same
// validation images; a candidate worse beyond the configured tolerance is refused unless the
// approver overrides with a reason. The comparison is stored with the decision. Rollback stays a
// one-step emergency brake (RegistryService.rollback).
import type { Db } from '../../db/prisma.js';
import { isUniqueViolation, sqlOfPrisma } from '../../db/sql.js';
import type { Prisma } from '../../db/prisma.js';
import type { PromotionRequest, PromotionStatus } from '../../generated/prisma/client.js';
import { AppError, badInput, conflict, notFound } from '../../errors.js';
import { paginate, type PageRequest } from '../../shared/pagination.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import type { GateComparison, GateTolerance, ModelComparisonService } from './model-comparison.js';
import { cleanReason, type RegistryService } from './registry.service.js';
import * as store from './registry.store.js';

export class PromotionService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly registry: RegistryService,
    private readonly comparison: ModelComparisonService,
    private readonly tolerance: GateTolerance,
  ) {}

  async request(actor: Principal, modelVersionId: string, reason: string): Promise<PromotionRequest> {
    const why = cleanReason(reason);
    try {
      return await this.db.$transaction(async (tx) => {
        const mv = await store.modelVersionById(tx, modelVersionId);
        if (!mv) throw notFound('ModelVersion', modelVersionId);
        if (mv.stage !== 'CANDIDATE') throw conflict(`Only CANDIDATE versions can be promoted; version ${mv.version} is ${mv.stage}`);
        if (!mv.evaluation) throw conflict(`Version ${mv.version} has no evaluation and cannot be promoted`);
        const request = await store.insertPromotionRequest(tx, { modelVersionId, reason: why, requestedById: actor.keyId });
        await this.audit.append(sqlOfPrisma(tx), actor, { action: 'promotion.request', entityType: 'ModelVersion', entityId: modelVersionId, details: { promotionRequestId: request.id, version: mv.version, reason: why } });
        return request;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('A promotion request for this version is already pending: approve or reject it first');
      throw err;
    }
  }

  async approve(actor: Principal, requestId: string, reason: string, overrideReason?: string | null): Promise<PromotionRequest> {
    const why = cleanReason(reason);
    const override = overrideReason?.trim() || null;
    if (override && override.length > 1000) throw badInput('The override reason must be at most 1000 characters');
    const request = await this.pending(actor, requestId);
    const candidate = await this.registry.get(request.modelVersionId);
    if (candidate.stage === 'ARCHIVED') {
      throw conflict(`Version ${candidate.version} was archived after this request was made; reject the request and ask for another candidate`, { reason: 'CANDIDATE_ARCHIVED' });
    }
    const production = await this.registry.production();
    // The comparison runs inference on the validation images: outside any transaction.
    const gate: GateComparison = production
      ? await this.comparison.gate(candidate, production, this.tolerance)
      : { productionVersionId: null, productionVersion: null, comparedOn: 'nothing: no version is in production', n: 0, tolerance: this.tolerance, candidate: null, production: null, passed: true, failures: [] };
    if (!gate.passed && !override) {
      throw conflict(
        `Version ${candidate.version} is worse than production (version ${gate.productionVersion}) on ${gate.comparedOn}: ${gate.failures.join('; ')}. ` +
          'Approve with an overrideReason to promote it anyway.',
        { reason: 'METRIC_GATE', comparison: gate },
      );
    }
    await this.registry.promote(actor, candidate.id, `approved promotion request ${requestId}: ${why}`, async (tx) => {
      const current = await store.productionVersion(tx);
      if ((current?.id ?? null) !== gate.productionVersionId) throw conflict('Production changed while the comparison ran; approve again to compare with the new production version');
      const decided = await store.decidePromotionRequest(tx, requestId, {
        status: 'APPROVED', decidedById: actor.keyId, decisionReason: why, overrideReason: gate.passed ? null : override, comparison: gate as unknown as Prisma.InputJsonValue,
      });
      if (!decided) throw conflict('This request was decided by someone else meanwhile');
      await this.audit.append(sqlOfPrisma(tx), actor, {
        action: 'promotion.approve',
        entityType: 'ModelVersion',
        entityId: candidate.id,
        details: { promotionRequestId: requestId, version: candidate.version, reason: why, overrideReason: gate.passed ? null : override, gatePassed: gate.passed, failures: gate.failures, productionVersionId: gate.productionVersionId },
      });
    });
    return this.get(requestId);
  }

  async reject(actor: Principal, requestId: string, reason: string): Promise<PromotionRequest> {
    const why = cleanReason(reason);
    const request = await this.pending(actor, requestId);
    return this.db.$transaction(async (tx) => {
      const decided = await store.decidePromotionRequest(tx, requestId, { status: 'REJECTED', decidedById: actor.keyId, decisionReason: why });
      if (!decided) throw conflict('This request was decided by someone else meanwhile');
      await this.audit.append(sqlOfPrisma(tx), actor, { action: 'promotion.reject', entityType: 'ModelVersion', entityId: request.modelVersionId, details: { promotionRequestId: requestId, reason: why } });
      const rejected = await store.promotionRequestById(tx, requestId);
      if (!rejected) throw notFound('PromotionRequest', requestId);
      return rejected;
    });
  }

  async get(id: string): Promise<PromotionRequest> {
    const found = await store.promotionRequestById(this.db, id);
    if (!found) throw notFound('PromotionRequest', id);
    return found;
  }

  list(filter: { status?: PromotionStatus | null }, page: PageRequest) {
    return paginate(page, (take) => store.listPromotionRequests(this.db, filter.status ?? undefined, page.after, take));
  }

  /** A request still open, which the caller (not its requester) may decide. */
  private async pending(actor: Principal, requestId: string): Promise<PromotionRequest> {
    const request = await this.get(requestId);
    if (request.status !== 'PENDING') throw conflict(`This request was already ${request.status.toLowerCase()}`);
    if (request.requestedById === actor.keyId) {
      throw new AppError(
        'FORBIDDEN',
        'A promotion needs two admins: the key that requested it cannot approve or reject it. Another ADMIN key must decide; ' +
          'a deployment with a single admin key cannot promote (create a second admin key with createApiKey).',
      );
    }
    return request;
  }
}
