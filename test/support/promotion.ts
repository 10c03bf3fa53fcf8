// Promotion is a request by one admin and an approval by another (issue 10).
import { ok, type TestApp } from './harness.js';

const REQUEST = `mutation($id: ID!, $reason: String!) { requestPromotion(modelVersionId: $id, reason: $reason) { id } }`;
const APPROVE = `mutation($id: ID!, $reason: String!, $override: String) { approvePromotion(requestId: $id, reason: $reason, overrideReason: $override) { id status modelVersionId } }`;

export const PROMOTION = { REQUEST, APPROVE };

/**
 * Requests (first admin) and approves (second admin) a promotion; the override lets the tiny test
 * models through the metric gate when they happen to be worse than production.
 */
export async function promote(t: TestApp, modelVersionId: string, reason = 'promoted by a test', override: string | null = 'test models are tiny; the gate is tested on its own'): Promise<string> {
  const request = ok(await t.gql(REQUEST, { id: modelVersionId, reason }, t.keys.ADMIN)).requestPromotion;
  ok(await t.gql(APPROVE, { id: request.id, reason: `approved: ${reason}`, override }, t.secondKeys.ADMIN));
  return request.id;
}
