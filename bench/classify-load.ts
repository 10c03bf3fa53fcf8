// Load benchmark of classifyImage end to end (multipart upload, hash, decode, store, infer,
// persist, audit) against a real server process, with autocannon. Prints latency percentiles and
// throughput, then checks in the database that every successful request left exactly one evidence
// row, one prediction and their two audit events.
//
//   npm run bench:classify -- [--connections 16] [--requests 3000] [--database-url URL]
//
// The server runs as a child process (`dist/src/server.js`) on PostgreSQL (default: a fresh
// database `eyecase_bench` on 127.0.0.1:5432), an S3 server in a third process, and the bundled
// model (or BASELINE_MODEL_PATH).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { datasetDir } from '../src/ml/index.js';
import { arg, type Stack, startStack } from './support/stack.js';

const connections = Number(arg('connections', '16'));
const requests = Number(arg('requests', '3000'));
const warmup = Number(arg('warmup', '200'));
const databaseUrl = arg('database-url', 'postgresql://postgres@127.0.0.1:5432/eyecase_bench');
const port = Number(arg('port', '4480'));

const QUERY = 'mutation($caseId: ID!, $file: Upload!) { classifyImage(caseId: $caseId, file: $file) { prediction { id decision probFemale } } }';

function multipartBody(caseId: string, file: Buffer, boundary: string): Buffer {
  const operations = JSON.stringify({ query: QUERY, variables: { caseId, file: null } });
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="eye.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), file, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

async function run(stack: Stack, caseId: string, images: Buffer[], key: string, amount: number) {
  const boundary = `----eyecase${randomBytes(8).toString('hex')}`;
  const bodies = images.slice(0, amount).map((img) => multipartBody(caseId, img, boundary));
  let next = 0;
  let graphqlErrors = 0;
  const errorSamples: string[] = [];
  // The run's time is taken to the last response: autocannon notices that `amount` is done only at
  // its next 1-second tick, so its own duration overstates the run by up to a second (4% here).
  const started = performance.now();
  let lastResponse = started;
  const result = await autocannon({
    url: stack.api,
    connections,
    amount,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true', 'content-type': `multipart/form-data; boundary=${boundary}` },
        setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
        onResponse: (status, body) => {
          lastResponse = performance.now();
          if (status !== 200 || body.includes('"errors"')) {
            graphqlErrors++;
            if (errorSamples.length < 3) errorSamples.push(body.slice(0, 300));
          }
        },
      },
    ],
  });
  return { result, seconds: (lastResponse - started) / 1000, graphqlErrors, errorSamples };
}

/** CPU seconds (user + system) a process has used: all its threads, and its main thread alone (Linux /proc). */
function cpuSeconds(pid: number | undefined): { process: number; mainThread: number } | null {
  if (!pid) return null;
  const ticks = (file: string) => {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = fs.readFileSync(file, 'utf8').replace(/^.*\) /s, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  try {
    return { process: ticks(`/proc/${pid}/stat`), mainThread: ticks(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return null;
  }
}

async function main() {
  // One key sends every request: its per-minute classify budget is raised (the limiter still runs).
  const stack = await startStack({ databaseUrl, port, extraEnv: { RATE_LIMIT_CLASSIFY_PER_MINUTE: process.env.RATE_LIMIT_CLASSIFY_PER_MINUTE ?? '1000000' } });
  const { gql, adminKey } = stack;
  try {
    const inv = (await gql<{ createApiKey: { secret: string } }>('mutation { createApiKey(input: { name: "bench", role: INVESTIGATOR }) { secret } }', {}, adminKey)).createApiKey.secret;
    const newCase = async (title: string) => (await gql<{ createCase: { id: string } }>('mutation($t: String!) { createCase(input: { title: $t }) { id } }', { t: title }, inv)).createCase.id;
    const files = ['female', 'male'].flatMap((l) => fs.readdirSync(path.join(datasetDir(), l)).sort().map((f) => path.join(datasetDir(), l, f)));
    const images = files.map((f) => fs.readFileSync(f));
    // Interleave classes and keep only distinct bytes (the same image twice in a case is a CONFLICT).
    const seen = new Set<string>();
    const distinct = images.filter((b) => { const k = b.toString('base64'); if (seen.has(k)) return false; seen.add(k); return true; });
    const shuffled = distinct.map((b, i) => ({ b, k: (i * 2654435761) % 4294967296 })).sort((a, b) => a.k - b.k).map((x) => x.b);
    if (shuffled.length < warmup + requests) throw new Error(`only ${shuffled.length} distinct images for ${warmup + requests} requests`);

    await run(stack, await newCase('warm-up'), shuffled.slice(0, warmup), inv, warmup);
    const caseId = await newCase('load');
    // PostgreSQL's share: the backends serving this database (the API's pool), when the server runs here.
    const monitor = new pg.Client({ connectionString: databaseUrl });
    await monitor.connect();
    const backends = async () => (await monitor.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')).rows.map((r) => r.pid);
    const backendCpu = (pids: number[]) => new Map(pids.map((pid) => [pid, cpuSeconds(pid)?.process]));
    const pgBefore = backendCpu(await backends());
    const cpuBefore = { api: cpuSeconds(stack.processes.api.pid), s3: cpuSeconds(stack.processes.s3.pid) };
    const { result, seconds, graphqlErrors, errorSamples } = await run(stack, caseId, shuffled.slice(warmup), inv, requests);
    const cpuAfter = { api: cpuSeconds(stack.processes.api.pid), s3: cpuSeconds(stack.processes.s3.pid) };
    const pgAfter = backendCpu(await backends());
    await monitor.end();
    // Backends that lived through the whole run (a pool may replace one; its CPU is then not counted).
    let pgSeconds: number | undefined;
    for (const [pid, after] of pgAfter) {
      const before = pgBefore.get(pid);
      if (after !== undefined && before !== undefined) pgSeconds = (pgSeconds ?? 0) + after - before;
    }
    // Milliseconds of CPU per request (10 ms clock ticks, so about +-0.01 ms over 3,000 requests).
    const perRequest = (after: number | undefined, before: number | undefined) => (after === undefined || before === undefined ? null : Number((((after - before) * 1000) / result.requests.total).toFixed(2)));
    const cpuMsPerRequest = {
      apiProcess: perRequest(cpuAfter.api?.process, cpuBefore.api?.process),
      apiMainThread: perRequest(cpuAfter.api?.mainThread, cpuBefore.api?.mainThread),
      s3Server: perRequest(cpuAfter.s3?.process, cpuBefore.s3?.process),
      postgresBackends: perRequest(pgSeconds, pgSeconds === undefined ? undefined : 0),
    };

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const one = async (sql: string) => Number((await db.query(sql, [caseId])).rows[0].n);
    const evidence = await one(`SELECT count(*) AS n FROM "Evidence" WHERE "caseId" = $1`);
    const predictions = await one(`SELECT count(*) AS n FROM "Prediction" WHERE "caseId" = $1`);
    const evidenceEvents = await one(`SELECT count(*) AS n FROM "AuditEvent" WHERE action = 'evidence.add' AND details->>'caseId' = $1::text`);
    const predictionEvents = await one(`SELECT count(*) AS n FROM "AuditEvent" WHERE action = 'prediction.create' AND details->>'caseId' = $1::text`);
    const orphans = await one(`SELECT count(*) AS n FROM "Evidence" e WHERE e."caseId" = $1 AND NOT EXISTS (SELECT 1 FROM "Prediction" p WHERE p."evidenceId" = e.id)`);
    await db.end();

    const ok = result.requests.total - graphqlErrors - result.errors - result.timeouts;
    const summary = {
      requests: result.requests.total,
      connections,
      durationSeconds: Number(seconds.toFixed(2)),
      requestsPerSecond: Number((result.requests.total / seconds).toFixed(1)),
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
      errors: { graphql: graphqlErrors, socket: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, samples: errorSamples },
      countCheck: { successful: ok, evidence, predictions, evidenceAuditEvents: evidenceEvents, predictionAuditEvents: predictionEvents, evidenceWithoutPrediction: orphans, consistent: evidence === ok && predictions === ok && evidenceEvents === ok && predictionEvents === ok && orphans === 0 },
      cpuMsPerRequest,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverage: os.loadavg().map((x) => Number(x.toFixed(1))) },
    };
    console.log(`classifyImage end to end, ${connections} connections, ${summary.requests} requests in ${summary.durationSeconds} s`);
    console.log(`  throughput ${summary.requestsPerSecond} req/s; latency p50 ${summary.latencyMs.p50} ms, p90 ${summary.latencyMs.p90} ms, p99 ${summary.latencyMs.p99} ms`);
    console.log(`  CPU per request: API process ${cpuMsPerRequest.apiProcess} ms (its main thread ${cpuMsPerRequest.apiMainThread} ms), S3 server ${cpuMsPerRequest.s3Server} ms, PostgreSQL backends ${cpuMsPerRequest.postgresBackends ?? 'n/a'} ms; load average ${summary.machine.loadAverage.join(' ')}`);
    console.log(`  errors ${graphqlErrors + result.errors + result.timeouts}; rows: ${evidence} evidence, ${predictions} predictions, ${evidenceEvents}+${predictionEvents} audit events for ${ok} successful requests -> ${summary.countCheck.consistent ? 'consistent' : 'INCONSISTENT'}`);
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
