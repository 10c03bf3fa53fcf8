// The audit chain's head is anchored outside the AuditEvent table (a signed row in AuditAnchor and
// a copy in the object store), so that tampering with the tail, which the hash chain alone cannot
// show, is detected; and verification reports every break it finds, not only the first.
import { eventHash } from '../../src/modules/audit/audit.service.js';
import { adminQuery } from '../support/db.js';
import { ok, startTestApp, type TestApp } from '../support/harness.js';
import { waitFor } from '../support/training.js';

const VERIFY = `{ verifyAuditChain { ok checked examined firstBrokenSeq reason breakCount breaks { seq kind reason } anchor { seq hash } anchorsChecked } }`;
const ANCHOR = `mutation { anchorAuditChain { seq hash createdAt keyId signature publicKey objectKey reason } }`;

/** Runs SQL as the superuser with the append-only triggers off, as an attacker with database access could. */
const tamper = (t: TestApp, sql: string) =>
  adminQuery(
    `ALTER TABLE "AuditEvent" DISABLE TRIGGER "AuditEvent_append_only"; ALTER TABLE "AuditAnchor" DISABLE TRIGGER "AuditAnchor_append_only";
     ${sql};
     ALTER TABLE "AuditEvent" ENABLE TRIGGER "AuditEvent_append_only"; ALTER TABLE "AuditAnchor" ENABLE TRIGGER "AuditAnchor_append_only";`,
    t.db.name,
  );

async function withEvents(t: TestApp, n: number) {
  for (let i = 0; i < n; i++) ok(await t.gql(`mutation($t: String!) { createCase(input: { title: $t }) { id } }`, { t: `anchored ${i}` }));
}
const verify = async (t: TestApp) => ok(await t.gql(VERIFY, {}, t.keys.AUDITOR)).verifyAuditChain;
const newest = async (t: TestApp) => (await adminQuery(`SELECT seq::text, hash FROM "AuditEvent" ORDER BY "AuditEvent".seq DESC LIMIT 1`, t.db.name)).rows[0] as { seq: string; hash: string };

describe('anchored audit chain', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp();
    await withEvents(t, 6);
  });
  afterEach(() => t.stop());

  it('anchors the head on demand, signed, in the table and in the object store', async () => {
    expect(ok(await t.gql(`{ auditAnchors { seq } }`, {}, t.keys.ADMIN)).auditAnchors).toEqual([]);
    const head = await newest(t);
    const anchor = ok(await t.gql(ANCHOR, {}, t.keys.ADMIN)).anchorAuditChain;
    expect(anchor).toMatchObject({ seq: head.seq, hash: head.hash, keyId: t.services.auditAnchors.signer().keyId, reason: 'on demand by test admin' });
    expect(anchor.publicKey).toMatch(/BEGIN PUBLIC KEY/);
    expect(t.services.auditAnchors.signer().verify(JSON.stringify({ createdAt: anchor.createdAt, hash: anchor.hash, keyId: anchor.keyId, seq: anchor.seq }), anchor.signature)).toBe(true);
    const copy = JSON.parse((await t.services.store.get(anchor.objectKey)).toString('utf8'));
    expect(copy).toMatchObject({ seq: head.seq, hash: head.hash, signature: anchor.signature });
    // Nothing moved: the same anchor comes back; anchoring adds no audit event.
    expect(ok(await t.gql(ANCHOR, {}, t.keys.ADMIN)).anchorAuditChain.createdAt).toBe(anchor.createdAt);
    expect((await newest(t)).seq).toBe(head.seq);
    const v = await verify(t);
    expect(v).toMatchObject({ ok: true, breakCount: 0, breaks: [], anchor: { seq: head.seq, hash: head.hash }, examined: Number(head.seq) });
    // The table is append-only, like the chain.
    await expect(adminQuery(`DELETE FROM "AuditAnchor"`, t.db.name)).rejects.toThrow(/append-only/);
    // Events after the anchor verify too (they are simply not vouched for by an anchor yet).
    await withEvents(t, 2);
    expect((await verify(t)).ok).toBe(true);
  });

  it('detects the newest events deleted, even when new events chain on and the anchor rows are deleted too', async () => {
    const head = await newest(t);
    ok(await t.gql(ANCHOR, {}, t.keys.ADMIN));
    await tamper(t, `DELETE FROM "AuditEvent" WHERE seq > ${Number(head.seq) - 2}`);
    // New events now chain onto whatever is last: the links alone look fine.
    await withEvents(t, 1);
    const v = await verify(t);
    expect(v.ok).toBe(false);
    expect(v.breaks).toEqual([expect.objectContaining({ seq: head.seq, kind: 'ANCHORED_EVENT_MISSING' })]);
    expect(v.breaks[0].reason).toMatch(/missing|gone/);

    // Cutting the anchor table as well leaves the object store's signed copy.
    await tamper(t, `DELETE FROM "AuditAnchor"`);
    const v2 = await verify(t);
    expect(v2.ok).toBe(false);
    expect(v2.breaks).toEqual([expect.objectContaining({ seq: head.seq, kind: 'ANCHORED_EVENT_MISSING' })]);
  });

  it('detects the newest event edited with its hash recomputed', async () => {
    const head = await newest(t);
    ok(await t.gql(ANCHOR, {}, t.keys.ADMIN));
    const [row] = await t.services.db.auditEvent.findMany({ where: { seq: BigInt(head.seq) } });
    const forged = { ...row, details: { forged: true } };
    await tamper(t, `UPDATE "AuditEvent" SET details = '{"forged": true}', hash = '${eventHash(row.prevHash, forged)}' WHERE seq = ${head.seq}`);
    const v = await verify(t);
    expect(v.ok).toBe(false);
    expect(v.breaks).toEqual([expect.objectContaining({ seq: head.seq, kind: 'ANCHOR_MISMATCH' })]);
  });

  it('reports every break, in chain order, not only the first', async () => {
    ok(await t.gql(ANCHOR, {}, t.keys.ADMIN));
    const head = await newest(t);
    await tamper(
      t,
      `UPDATE "AuditEvent" SET details = '{"forged": 1}' WHERE seq = 2;
       DELETE FROM "AuditEvent" WHERE seq = 4;
       DELETE FROM "AuditEvent" WHERE seq = ${head.seq};
       INSERT INTO "AuditAnchor" (id, seq, hash, reason, "keyId", signature, "createdAt") VALUES (gen_random_uuid(), 3, repeat('a', 64), 'forged', 'k', 'AAAA', now())`,
    );
    const v = await verify(t);
    expect(v.ok).toBe(false);
    expect(v.breaks.map((b: { seq: string; kind: string }) => [b.seq, b.kind])).toEqual([
      ['2', 'ALTERED'],
      ['3', 'ANCHOR_SIGNATURE_INVALID'],
      ['5', 'UNLINKED'],
      [head.seq, 'ANCHORED_EVENT_MISSING'],
    ]);
    expect(v).toMatchObject({ breakCount: 4, firstBrokenSeq: '2', checked: 1 });
    expect(v.reason).toMatch(/altered/);
  });

  it('anchors periodically through a pg-boss schedule', async () => {
    const head = await newest(t);
    const { AUDIT_ANCHOR_QUEUE, startMaintenance } = await import('../../src/jobs/maintenance.js');
    const stop = await startMaintenance(t.services);
    try {
      const { rows } = await adminQuery(`SELECT name, cron FROM pgboss.schedule ORDER BY name`, t.db.name);
      expect(rows).toEqual([
        { name: 'audit-anchor', cron: t.services.config.audit.anchorCron },
        { name: 'orphan-sweep', cron: t.services.config.sweeper.cron },
      ]);
      // One tick, as the schedule would send it.
      await t.services.queue.boss.send(AUDIT_ANCHOR_QUEUE, {});
      await waitFor('the scheduled anchor', () => t.services.auditAnchors.latest(), 30_000);
      expect(ok(await t.gql(`{ auditAnchors { seq reason } }`, {}, t.keys.AUDITOR)).auditAnchors).toEqual([{ seq: head.seq, reason: 'interval' }]);
    } finally {
      await stop();
    }
  });
});
