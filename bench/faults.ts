// Fault injection against a running stack (API server, S3 server and PostgreSQL in processes of
// their own, loopback only), under concurrent classifyImage traffic. For each fault it prints what
// the clients saw (answers by code and HTTP status), whether the API process stayed up, the
// recovery time (from the end of the fault to the first successful request), and a consistency
// check: after clients retried their failed requests with the same Idempotency-Key, every image
// is recorded exactly once (evidence, prediction, two audit events), every stored image row has
// its object, the audit chain verifies, and no object is orphaned.
//
//   npm run bench:faults -- [--database-url URL] [--port 4490] [--concurrency 4] [--fault-seconds 4]
//
// PostgreSQL itself is shared (the tests' local server): the benchmark never stops it. "Database
// unreachable" is a TCP proxy between the API and PostgreSQL taken down; "sessions terminated" is
// pg_terminate_backend on the benchmark database's sessions only.
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { openDatabase } from '../src/db/connections.js';
import type { SqlDatabase } from '../src/db/sql.js';
import { silentLogger } from '../src/logger.js';
import { OrphanSweeper } from '../src/modules/orphans/orphan-sweeper.js';
import { OBJECT_KINDS, referencedKeys } from '../src/modules/orphans/orphan.store.js';
import { ObjectStore } from '../src/storage/object-store.js';
import { arg, restartServer, serverOutput, type Stack, startS3, startStack } from './support/stack.js';
import { startTcpProxy, type TcpProxy, viaProxy } from './support/tcp-proxy.js';

const databaseUrl = arg('database-url', process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/eyecase_bench_faults');
const port = Number(arg('port', '4490'));
const concurrency = Number(arg('concurrency', '4'));
const faultMs = Number(arg('fault-seconds', '4')) * 1000;
/** Bounds: traffic before the fault, requests per phase, time allowed to recover. */
const WARM_MS = 1500;
const MAX_REQUESTS_PER_FAULT = 400;
const RECOVERY_LIMIT_MS = 30_000;

const QUERY = 'mutation($caseId: ID!, $file: Upload!) { classifyImage(caseId: $caseId, file: $file) { evidence { id } prediction { id } } }';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let benchSql: SqlDatabase;

interface Outcome {
  label: string;
  status: number | null;
  ms: number;
}

interface Request {
  image: Buffer;
  key: string;
  first?: Outcome;
  final?: Outcome;
}

let seed = 0;
/** A distinct small JPEG per call (random pixels: the same image twice in a case is a CONFLICT). */
async function uniqueImage(): Promise<Buffer> {
  const pixels = Buffer.alloc(48 * 48 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 131 + seed * 7919 + ((i * seed) % 253)) & 0xff;
  seed++;
  return sharp(pixels, { raw: { width: 48, height: 48, channels: 3 } }).jpeg().toBuffer();
}

async function classify(stack: Stack, apiKey: string, caseId: string, r: Request): Promise<Outcome> {
  const started = Date.now();
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: QUERY, variables: { caseId, file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([r.image], { type: 'image/jpeg' }), 'eye.jpg');
  try {
    const res = await fetch(stack.api, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'apollo-require-preflight': 'true', 'idempotency-key': r.key },
      body: form,
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json().catch(() => ({}))) as { errors?: Array<{ extensions?: { code?: string; dependency?: string } }> };
    const e = body.errors?.[0]?.extensions;
    const label = !body.errors ? 'ok' : `${e?.code ?? 'no code'}${e?.dependency ? `:${e.dependency}` : ''}`;
    return { label, status: res.status, ms: Date.now() - started };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    return { label: `network error (${cause})`, status: null, ms: Date.now() - started };
  }
}

/** Concurrent clients send new requests until `until()` says stop (bounded by MAX_REQUESTS_PER_FAULT). */
async function traffic(stack: Stack, apiKey: string, caseId: string, requests: Request[], until: () => boolean): Promise<void> {
  const client = async () => {
    while (!until() && requests.length < MAX_REQUESTS_PER_FAULT) {
      const r: Request = { image: await uniqueImage(), key: randomUUID() };
      requests.push(r);
      r.first = await classify(stack, apiKey, caseId, r);
      r.final = r.first;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
}

/** Time from `since` until a new request succeeds (probing every 100 ms), or null past the limit. */
async function recoveryMs(stack: Stack, apiKey: string, caseId: string, since: number, requests: Request[]): Promise<number | null> {
  while (Date.now() - since < RECOVERY_LIMIT_MS) {
    const r: Request = { image: await uniqueImage(), key: randomUUID() };
    requests.push(r);
    r.first = await classify(stack, apiKey, caseId, r);
    r.final = r.first;
    if (r.first.label === 'ok') return Date.now() - since;
    await sleep(100);
  }
  return null;
}

const tally = (outcomes: Outcome[]) => {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const k = `${o.label} (HTTP ${o.status ?? '-'})`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
};

interface Fault {
  name: string;
  what: string;
  inject(ctx: FaultContext): Promise<void>;
  heal(ctx: FaultContext): Promise<void>;
}

interface FaultContext {
  stack: Stack;
  proxy: TcpProxy;
  admin: pg.Client;
  databaseName: string;
  stop: { terminating: boolean };
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

const FAULTS: Fault[] = [
  {
    name: 'sessions terminated',
    what: 'pg_terminate_backend on every session of the API (pools, LISTEN, queue) every 50 ms',
    inject: async (ctx) => {
      ctx.stop.terminating = true;
      void (async () => {
        while (ctx.stop.terminating) {
          await ctx.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [ctx.databaseName]).catch(() => undefined);
          await sleep(50);
        }
      })();
    },
    heal: async (ctx) => {
      ctx.stop.terminating = false;
    },
  },
  {
    name: 'database unreachable',
    what: 'the TCP path to PostgreSQL refuses connections and open ones are cut',
    inject: (ctx) => ctx.proxy.down(),
    heal: (ctx) => ctx.proxy.up(),
  },
  {
    name: 'object store frozen',
    what: 'the S3 server process is stopped (SIGSTOP: connections hang) and continued afterwards',
    inject: async (ctx) => void ctx.stack.processes.s3.kill('SIGSTOP'),
    heal: async (ctx) => void ctx.stack.processes.s3.kill('SIGCONT'),
  },
  {
    name: 'API killed',
    what: 'the API server is killed (SIGKILL) mid-traffic and started again',
    inject: async (ctx) => {
      ctx.stack.processes.api.kill('SIGKILL');
      await new Promise((r) => ctx.stack.processes.api.once('exit', r));
    },
    heal: async (ctx) => {
      ctx.stack.processes.api = await restartServer(ctx.stack.env, port);
    },
  },
  {
    name: 'object store killed',
    // Last: after a kill -9, s3rver (the test S3 server) has answered listings with HTTP 500 in
    // every run here (the orphans are then counted from its directory).
    what: 'the S3 server process is killed (SIGKILL) and started again afterwards',
    inject: async (ctx) => {
      ctx.stack.processes.s3.kill('SIGKILL');
      await new Promise((r) => ctx.stack.processes.s3.once('exit', r));
    },
    heal: async (ctx) => {
      ctx.stack.processes.s3 = await startS3(ctx.stack.s3.port, ctx.stack.s3.directory);
    },
  },
];

/** The S3 test server may answer 500 for a moment after a fault: the check itself retries. */
async function settled<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 10) throw err;
      await sleep(500);
    }
  }
}

/** Orphans counted from s3rver's directory (`<bucket>/<key>._S3rver_object` files) when it cannot list them. */
async function orphansOnDisk(directory: string): Promise<string> {
  const root = path.join(directory, 'eyecase');
  const keys: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('._S3rver_object')) keys.push(path.relative(root, full).slice(0, -'._S3rver_object'.length));
    }
  };
  walk(root);
  let orphans = 0;
  for (const kind of OBJECT_KINDS) {
    const ofKind = keys.filter((k) => k.startsWith(kind.prefix));
    const referenced = await referencedKeys(benchSql, kind, ofKind);
    orphans += ofKind.filter((k) => !referenced.has(k)).length;
  }
  return `${orphans} (counted on disk: the S3 test server's listing answers HTTP 500)`;
}

async function consistency(ctx: FaultContext, caseId: string, requests: Request[], sweeper: OrphanSweeper) {
  const one = async (sql: string, values: unknown[] = [caseId]) => Number((await ctx.admin.query(sql, values)).rows[0].n);
  const evidence = await one(`SELECT count(*) AS n FROM "Evidence" WHERE "caseId" = $1`);
  const predictions = await one(`SELECT count(*) AS n FROM "Prediction" WHERE "caseId" = $1`);
  const events = await one(`SELECT count(*) AS n FROM "AuditEvent" WHERE action IN ('evidence.add', 'prediction.create') AND details->>'caseId' = $1::text`);
  const withoutPrediction = await one(`SELECT count(*) AS n FROM "Evidence" e WHERE e."caseId" = $1 AND NOT EXISTS (SELECT 1 FROM "Prediction" p WHERE p."evidenceId" = e.id)`);
  const keys = (await ctx.admin.query(`SELECT i."objectKey" FROM "Evidence" e JOIN "Image" i ON i.id = e."imageId" WHERE e."caseId" = $1`, [caseId])).rows.map((r) => r.objectKey as string);
  const store = new ObjectStore({ endPoint: '127.0.0.1', port: ctx.stack.s3.port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1', bucket: 'eyecase' });
  let missingObjects = 0;
  for (const k of keys) if (!(await settled(() => store.exists(k)))) missingObjects++;
  // s3rver (the test S3 server) has answered every listing with HTTP 500 after a kill -9 of the API
  // or of itself mid-traffic (cause not established); then the objects are counted from its directory.
  const orphans = await settled(() => sweeper.sweep({ graceMs: 0, dryRun: true })).then(
    (r) => r.orphans.length,
    () => orphansOnDisk(ctx.stack.s3.directory),
  );
  const recorded = requests.filter((r) => r.final?.label === 'ok').length;
  const ok = evidence === recorded && predictions === recorded && events === 2 * recorded && withoutPrediction === 0 && missingObjects === 0 && (orphans === 0 || String(orphans).startsWith('0 '));
  return { requests: requests.length, answeredOk: recorded, evidence, predictions, auditEvents: events, evidenceWithoutPrediction: withoutPrediction, imageRowsWithoutObject: missingObjects, orphanedObjects: orphans, consistent: ok };
}

async function main() {
  const started = Date.now();
  const target = new URL(databaseUrl);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const stack = await startStack({ databaseUrl, port, extraEnv: { DATABASE_URL: viaProxy(databaseUrl, proxy), LOG_LEVEL: 'error', ORPHAN_SWEEP_CRON: '0 0 1 1 *' } });
  const admin = new pg.Client({ connectionString: databaseUrl });
  admin.on('error', () => undefined);
  await admin.connect();
  const database = openDatabase(databaseUrl, 2);
  const sql = database.sql;
  benchSql = sql;
  const sweeper = new OrphanSweeper(sql, new ObjectStore({ endPoint: '127.0.0.1', port: stack.s3.port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1', bucket: 'eyecase' }), silentLogger);
  const ctx: FaultContext = { stack, proxy, admin, databaseName: target.pathname.slice(1), stop: { terminating: false } };
  const results: Array<Record<string, unknown>> = [];
  try {
    const inv = (await stack.gql<{ createApiKey: { secret: string } }>('mutation { createApiKey(input: { name: "bench faults", role: INVESTIGATOR }) { secret } }', {}, stack.adminKey)).createApiKey.secret;
    console.log(`bench:faults — concurrency ${concurrency}, ${faultMs / 1000} s per fault, classifyImage with an Idempotency-Key per request`);
    for (const fault of FAULTS) {
      const caseId = (await stack.gql<{ createCase: { id: string } }>('mutation($t: String!) { createCase(input: { title: $t }) { id } }', { t: `fault: ${fault.name}` }, inv)).createCase.id;
      const requests: Request[] = [];
      let phase: 'warm' | 'fault' | 'done' = 'warm';
      const load = traffic(stack, inv, caseId, requests, () => phase === 'done');
      await sleep(WARM_MS);
      const beforeFault = requests.length;
      await fault.inject(ctx);
      phase = 'fault';
      await sleep(faultMs);
      await fault.heal(ctx);
      const healedAt = Date.now();
      phase = 'done';
      await load;
      const duringFault = requests.slice(beforeFault).map((r) => r.first!).filter(Boolean);
      const apiUp = alive(stack.processes.api);
      if (!apiUp && fault.name !== 'API killed') {
        console.log(`   the API process died (exit ${stack.processes.api.exitCode ?? stack.processes.api.signalCode}); its last output:\n${serverOutput.get(stack.processes.api)?.join('\n')}`);
        throw new Error(`the API process died during "${fault.name}"`);
      }
      const recovery = await recoveryMs(stack, inv, caseId, healedAt, requests);
      // Clients retry what failed, with the same key: a request that committed but lost its answer is replayed, not recorded twice.
      const failed = requests.filter((r) => r.final && r.final.label !== 'ok');
      const evidenceBeforeRetry = Number((await admin.query('SELECT count(*) AS n FROM "Evidence" WHERE "caseId" = $1', [caseId])).rows[0].n);
      for (const r of failed) r.final = await classify(stack, inv, caseId, r);
      const evidenceAfterRetry = Number((await admin.query('SELECT count(*) AS n FROM "Evidence" WHERE "caseId" = $1', [caseId])).rows[0].n);
      const check = await consistency(ctx, caseId, requests, sweeper);
      const chain = await stack.gql<{ verifyAuditChain: { ok: boolean; breakCount: number } }>('{ verifyAuditChain { ok breakCount } }', {}, stack.adminKey);
      const result = {
        fault: fault.name,
        injected: fault.what,
        requestsDuringFault: duringFault.length,
        clientsSaw: tally(duringFault),
        apiProcessStayedUp: fault.name === 'API killed' ? 'killed on purpose (restarted)' : apiUp,
        recoveryMs: recovery,
        retriedWithSameKey: failed.length,
        retriesReplayed: failed.filter((r) => r.final?.label === 'ok').length - (evidenceAfterRetry - evidenceBeforeRetry),
        retriesNewlyRecorded: evidenceAfterRetry - evidenceBeforeRetry,
        retriesStillFailing: failed.filter((r) => r.final?.label !== 'ok').length,
        consistency: { ...check, auditChainOk: chain.verifyAuditChain.ok },
      };
      results.push(result);
      console.log(`\n== ${fault.name}: ${fault.what}`);
      console.log(`   during the fault (${duringFault.length} requests): ${Object.entries(result.clientsSaw).map(([k, v]) => `${v} × ${k}`).join(', ') || 'none'}`);
      console.log(`   API process stayed up: ${result.apiProcessStayedUp}; recovery: ${recovery === null ? `not within ${RECOVERY_LIMIT_MS} ms` : `${recovery} ms`} after the fault ended`);
      console.log(`   retried ${failed.length} failed requests with their key: ${result.retriesReplayed} replayed (had committed), ${result.retriesNewlyRecorded} recorded now, ${result.retriesStillFailing} still failing`);
      console.log(
        `   consistency: ${check.requests} images sent, ${check.evidence} evidence / ${check.predictions} predictions / ${check.auditEvents} audit events for ${check.answeredOk} answered ok; ` +
          `${check.evidenceWithoutPrediction} evidence without prediction, ${check.imageRowsWithoutObject} rows without object, ${check.orphanedObjects} orphaned objects (before the sweeper); chain ${chain.verifyAuditChain.ok ? 'ok' : 'BROKEN'} -> ${check.consistent && chain.verifyAuditChain.ok ? 'CONSISTENT' : 'INCONSISTENT'}`,
      );
    }
    const swept = await settled(() => sweeper.sweep({ graceMs: 0 })).catch((err: Error) => ({ orphans: [] as unknown[], deleted: 0, error: err.message }));
    console.log(`\norphan sweep at the end (grace 0): ${'error' in swept ? `failed: ${swept.error}` : `${swept.orphans.length} orphaned objects found, ${swept.deleted} deleted`}`);
    console.log(`total time ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(JSON.stringify({ concurrency, faultMs, results, sweep: swept }, null, 2));
  } finally {
    ctx.stop.terminating = false;
    await proxy.up().catch(() => undefined);
    await stack.stop().catch((err) => console.error('stack stop failed', err));
    await proxy.close();
    await database.close();
    await admin.end().catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
