import { adminQuery } from '../support/db.js';
import { errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { syntheticImage } from '../support/images.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const EVENTS = `query($filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) { nodes { seq actor actorKeyId action entityType entityId details prevHash hash createdAt } pageInfo { endCursor hasNextPage } }
}`;

describe('audit log', () => {
  it('records every mutation with its actor, in the same transaction, hash-chained', async () => {
    const c = ok(await t.gql(`mutation { createCase(input: { title: "Audited" }) { id reference } }`)).createCase;
    await t.gql(`mutation($id: ID!) { updateCase(id: $id, input: { title: "Audited 2" }) { id } }`, { id: c.id });
    const ev = ok(await t.upload(`mutation($f: Upload!, $c: ID!) { addEvidence(caseId: $c, file: $f) { id image { sha256 } } }`, { c: c.id, f: null }, { f: { name: 'a.png', bytes: await syntheticImage(77) } })).addEvidence;
    await t.gql(`mutation($id: ID!) { closeCase(id: $id, reason: "done") { id } }`, { id: c.id });
    // A refused mutation leaves no event.
    expect(errorCode(await t.gql(`mutation($id: ID!) { closeCase(id: $id) { id } }`, { id: c.id }))).toBe('CONFLICT');

    const caseEvents = ok(await t.gql(EVENTS, { filter: { entityType: 'Case', entityId: c.id } }, t.keys.AUDITOR)).auditEvents.nodes;
    expect(caseEvents.map((e: { action: string }) => e.action)).toEqual(['case.create', 'case.update', 'case.close']);
    expect(caseEvents[0]).toMatchObject({ actor: 'key:test investigator', details: { reference: c.reference, title: 'Audited' } });
    expect(caseEvents[1].details).toEqual({ before: { title: 'Audited', description: null }, after: { title: 'Audited 2', description: null }, requestId: expect.any(String) });
    const evEvents = ok(await t.gql(EVENTS, { filter: { entityId: ev.id } }, t.keys.ADMIN)).auditEvents.nodes;
    expect(evEvents).toHaveLength(1);
    expect(evEvents[0]).toMatchObject({ action: 'evidence.add', entityType: 'Evidence', details: { caseId: c.id, sha256: ev.image.sha256 } });

    const all = ok(await t.gql(EVENTS, { first: 100 }, t.keys.AUDITOR)).auditEvents.nodes;
    for (let i = 1; i < all.length; i++) expect(all[i].prevHash).toBe(all[i - 1].hash);
    expect(all[0].prevHash).toBe('0'.repeat(64));
    expect(ok(await t.gql(`{ verifyAuditChain { ok checked firstBrokenSeq reason } }`, {}, t.keys.AUDITOR)).verifyAuditChain).toEqual({ ok: true, checked: all.length, firstBrokenSeq: null, reason: null });
  });

  it('filters by actor and time and pages in order', async () => {
    const viewer = ok(await t.gql(`{ viewer { keyId } }`)).viewer;
    for (let i = 0; i < 3; i++) await t.gql(`mutation { createCase(input: { title: "page ${i}" }) { id } }`);
    const mine = ok(await t.gql(EVENTS, { filter: { actorKeyId: viewer.keyId }, first: 100 }, t.keys.AUDITOR)).auditEvents.nodes;
    expect(mine.length).toBeGreaterThanOrEqual(3);
    expect(mine.every((e: { actorKeyId: string }) => e.actorKeyId === viewer.keyId)).toBe(true);

    const seqs: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = ok(await t.gql(EVENTS, { first: 2, after }, t.keys.AUDITOR)).auditEvents;
      seqs.push(...page.nodes.map((n: { seq: string }) => n.seq));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seqs.map(Number)).toEqual([...seqs.map(Number)].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    const future = ok(await t.gql(EVENTS, { filter: { from: new Date(Date.now() + 3600_000).toISOString() } }, t.keys.AUDITOR)).auditEvents.nodes;
    expect(future).toEqual([]);
    expect(errorCode(await t.gql(EVENTS, { after: 'x' }, t.keys.AUDITOR))).toBe('BAD_USER_INPUT');
  });

  it('keeps the chain linear under concurrent mutations', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => t.gql(`mutation { createCase(input: { title: "concurrent ${i}" }) { id } }`)));
    const ids = results.map((r) => ok(r).createCase.id as string);
    expect(new Set(ids).size).toBe(12);
    // Every case got its own event, and the events form one unbroken sequence of links.
    const events = ok(await t.gql(EVENTS, { filter: { action: 'case.create' }, first: 100 }, t.keys.AUDITOR)).auditEvents.nodes as Array<{ entityId: string }>;
    expect(events.map((e) => e.entityId)).toEqual(expect.arrayContaining(ids));
    const all = ok(await t.gql(`{ auditEvents(first: 100) { nodes { seq prevHash hash } } }`, {}, t.keys.AUDITOR)).auditEvents.nodes as Array<{ seq: string; prevHash: string; hash: string }>;
    expect(all.length).toBeGreaterThanOrEqual(12);
    expect(all.length).toBeLessThan(100); // the whole log fits in one page here
    all.forEach((e, i) => {
      if (i === 0) return;
      expect(BigInt(e.seq)).toBe(BigInt(all[i - 1].seq) + 1n);
      expect(e.prevHash).toBe(all[i - 1].hash);
    });
    expect(ok(await t.gql(`{ verifyAuditChain { ok } }`, {}, t.keys.AUDITOR)).verifyAuditChain.ok).toBe(true);
  });

  it('is refused UPDATE, DELETE and TRUNCATE by the database itself', async () => {
    await expect(adminQuery(`UPDATE "AuditEvent" SET action = 'x'`, t.db.name)).rejects.toThrow(/append-only/);
    await expect(adminQuery(`DELETE FROM "AuditEvent"`, t.db.name)).rejects.toThrow(/append-only/);
    await expect(adminQuery(`TRUNCATE "AuditEvent"`, t.db.name)).rejects.toThrow(/append-only/);
  });

  it('reports the first broken link when a row was edited behind the API', async () => {
    const all = ok(await t.gql(EVENTS, { first: 100 }, t.keys.AUDITOR)).auditEvents.nodes;
    const victim = all[3];
    // Only a superuser who disables the trigger can do this; verifyAuditChain must still notice.
    await adminQuery(
      `ALTER TABLE "AuditEvent" DISABLE TRIGGER "AuditEvent_append_only";
       UPDATE "AuditEvent" SET details = '{"forged": true}' WHERE seq = ${victim.seq};
       ALTER TABLE "AuditEvent" ENABLE TRIGGER "AuditEvent_append_only";`,
      t.db.name,
    );
    const v = ok(await t.gql(`{ verifyAuditChain { ok checked firstBrokenSeq reason } }`, {}, t.keys.ADMIN)).verifyAuditChain;
    expect(v).toMatchObject({ ok: false, checked: 3, firstBrokenSeq: victim.seq });
    expect(v.reason).toMatch(/altered/);

    // Deleting a row instead breaks the back-link of the next one.
    await adminQuery(
      `ALTER TABLE "AuditEvent" DISABLE TRIGGER "AuditEvent_append_only";
       UPDATE "AuditEvent" SET details = '${JSON.stringify(victim.details)}' WHERE seq = ${victim.seq};
       DELETE FROM "AuditEvent" WHERE seq = ${all[5].seq};
       ALTER TABLE "AuditEvent" ENABLE TRIGGER "AuditEvent_append_only";`,
      t.db.name,
    );
    const v2 = ok(await t.gql(`{ verifyAuditChain { ok firstBrokenSeq reason } }`, {}, t.keys.ADMIN)).verifyAuditChain;
    expect(v2).toMatchObject({ ok: false, firstBrokenSeq: all[6].seq });
    expect(v2.reason).toMatch(/does not link/);
  });
});
