// The database layer: one application pool that Prisma and plain SQL share, and the number of
// statements (round trips) the classification hot path sends.
import { openDatabase } from '../../src/db/connections.js';
import { sqlOfPrisma } from '../../src/db/sql.js';
import { silentLogger } from '../../src/logger.js';
import { createServices } from '../../src/services.js';
import { apiDatabase, startTestApp, type TestApp } from '../support/harness.js';
import { readDatasetImage } from '../support/images.js';
import { tinyBundleFile } from '../support/models.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await t.services.registry.ensureBaseline(await tinyBundleFile());
}, 120_000);
afterAll(async () => t.stop());

describe('one application pool', () => {
  it('serves Prisma and plain SQL, transactions of either, from the same connections', async () => {
    const database = openDatabase(t.db.url, 1);
    try {
      const backend = 'SELECT pg_backend_pid() AS pid, current_setting(\'application_name\') AS name';
      const [viaPrisma] = await database.db.$queryRawUnsafe<Array<{ pid: number; name: string }>>(backend);
      const [viaSql] = await database.sql.query(backend);
      expect(viaSql).toEqual(viaPrisma);
      expect(viaPrisma.name).toBe('eyecase');
      // Either kind of transaction on a pool of one: neither driver holds a connection of its own.
      const [inPrismaTx] = await database.db.$transaction((tx) => tx.$queryRawUnsafe<Array<{ pid: number }>>(backend));
      const [inSqlTx] = await database.sql.transaction((tx) => tx.query(backend));
      expect([inPrismaTx.pid, inSqlTx.pid]).toEqual([viaPrisma.pid, viaPrisma.pid]);
      expect(database.pool.totalCount).toBe(1);
    } finally {
      await database.close();
    }
    expect(database.pool.totalCount).toBe(0);
  });
});

describe('the audit chain on plain SQL', () => {
  it('stays linear when transactions of both drivers append at once (lock and head read share a round trip)', async () => {
    const before = (await t.services.audit.verify()).examined;
    const actor = { system: 'test' };
    const event = (i: number) => ({ action: 'test.append', entityType: 'Test', entityId: String(i) });
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        i % 3 === 0
          ? t.services.db.$transaction((tx) => t.services.audit.append(sqlOfPrisma(tx), actor, event(i)), { timeout: 30_000, maxWait: 30_000 })
          : t.services.sql.transaction((tx) => t.services.audit.appendAll(tx, actor, [event(i), event(100 + i)])),
      ),
    );
    const verified = await t.services.audit.verify();
    expect(verified).toMatchObject({ ok: true, breakCount: 0 });
    expect(verified.examined - before).toBe(8 + 16 * 2);
  }, 60_000);
});

describe('round trips of the classification hot path', () => {
  it('classifyImage and classifyEvidence send a fixed, small number of statements, all on node-postgres', async () => {
    let statements: string[] | undefined;
    const database = apiDatabase(t.db.url, { onQuery: (text) => statements?.push(text) });
    // Model polling off: nothing but the use case talks to the database while it is counted.
    const services = createServices({ ...t.services, config: { ...t.services.config, modelPollMs: 600_000 }, db: database.db, sql: database.sql, logger: silentLogger });
    await services.serving.start();
    const actor = await t.services.apiKeys.authenticate(t.keys.INVESTIGATOR);
    const counted = async (work: () => Promise<unknown>) => {
      statements = [];
      await work();
      const sent = statements;
      statements = undefined;
      // Prisma's generated SQL names its tables "public"."…": none of it on the hot path.
      expect(sent.filter((s) => s.includes('"public".'))).toEqual([]);
      return sent.length;
    };
    try {
      const [first, second] = [await services.cases.create(actor, { title: 'round trips 1' }), await services.cases.create(actor, { title: 'round trips 2' })];
      await services.predictions.classifyImage(actor, { caseId: first.id, bytes: readDatasetImage('female', 2) }); // loads the model
      const bytes = readDatasetImage('male', 4);
      let evidenceId = '';
      // Case check, known-image check; BEGIN, case share lock, image lock + insert, evidence,
      // prediction (+ model stage), audit lock + head (one round trip), both audit events, COMMIT.
      expect(await counted(async () => void (evidenceId = (await services.predictions.classifyImage(actor, { caseId: first.id, bytes })).evidence.id))).toBe(10);
      // The same bytes in another case: the image row is read instead of locked and inserted.
      expect(await counted(() => services.predictions.classifyImage(actor, { caseId: second.id, bytes }))).toBe(10);
      // Evidence with its image and case state in one read; BEGIN, case share lock, prediction,
      // audit lock + head, audit event, COMMIT.
      expect(await counted(() => services.predictions.classifyEvidence(actor, evidenceId))).toBe(7);
      // An Idempotency-Key adds its lookup, its claim and its completion.
      const request = services.idempotency.request(actor, 'round-trips-1', 'classifyImage', [first.id]);
      expect(await counted(() => services.predictions.classifyImage(actor, { caseId: first.id, bytes: readDatasetImage('female', 5) }, request))).toBe(13);
    } finally {
      await services.serving.stop();
      await database.close();
    }
  }, 120_000);
});
