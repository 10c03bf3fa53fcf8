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
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { PROJECT_ROOT } from '../src/config.js';
import { datasetDir } from '../src/ml/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const connections = Number(arg('connections', '16'));
const requests = Number(arg('requests', '3000'));
const warmup = Number(arg('warmup', '200'));
const adminUrl = arg('database-url', 'postgresql://postgres@127.0.0.1:5432/eyecase_bench');
const port = Number(arg('port', '4480'));
const api = `http://127.0.0.1:${port}/graphql`;

async function recreateDatabase(url: string) {
  const u = new URL(url);
  const name = u.pathname.slice(1);
  const maint = new URL(url);
  maint.pathname = '/postgres';
  const c = new pg.Client({ connectionString: maint.toString() });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await c.query(`CREATE DATABASE "${name}"`);
  await c.end();
}

/**
 * The S3 server runs in a process of its own, as MinIO would in production; inside the API
 * process it would take that process's CPU.
 */
function startS3(dataDir: string): Promise<ChildProcess> {
  const script = `import S3rver from '@20minutes/s3rver';
    const server = new S3rver({ address: '127.0.0.1', port: ${port + 1}, directory: ${JSON.stringify(path.join(dataDir, 's3'))}, silent: true });
    await server.run(); console.log('s3 ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`S3 server exited with ${code}`)));
  });
}

function startServer(dataDir: string): Promise<{ child: ChildProcess; adminKey: string }> {
  // BENCH_SERVER_NODE_ARGS, e.g. --cpu-prof, profiles the server under load.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(PROJECT_ROOT, 'dist', 'src', 'server.js')], {
    env: {
      ...process.env,
      DATABASE_URL: adminUrl,
      S3_ENDPOINT: `http://127.0.0.1:${port + 1}`,
      S3_ACCESS_KEY: 'S3RVER',
      S3_SECRET_KEY: 'S3RVER',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      IN_PROCESS_WORKER: 'false',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const key = /eyk_[A-Za-z0-9_-]{20,}/.exec(output)?.[0];
      if (key) {
        const wait = async () => {
          for (let i = 0; i < 100; i++) {
            if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok) return resolve({ child, adminKey: key });
            await new Promise((r) => setTimeout(r, 200));
          }
          reject(new Error(`server not ready:\n${output}`));
        };
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        void wait();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
}

async function gql<T>(query: string, variables: Record<string, unknown>, key: string): Promise<T> {
  const res = await fetch(api, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: unknown };
  if (body.errors || !body.data) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const QUERY = 'mutation($caseId: ID!, $file: Upload!) { classifyImage(caseId: $caseId, file: $file) { prediction { id decision probFemale } } }';

function multipartBody(caseId: string, file: Buffer, boundary: string): Buffer {
  const operations = JSON.stringify({ query: QUERY, variables: { caseId, file: null } });
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="eye.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), file, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

async function run(caseId: string, images: Buffer[], key: string, amount: number) {
  const boundary = `----eyecase${randomBytes(8).toString('hex')}`;
  const bodies = images.slice(0, amount).map((img) => multipartBody(caseId, img, boundary));
  let next = 0;
  let graphqlErrors = 0;
  const errorSamples: string[] = [];
  const result = await autocannon({
    url: api,
    connections,
    amount,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true', 'content-type': `multipart/form-data; boundary=${boundary}` },
        setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
        onResponse: (status, body) => {
          if (status !== 200 || body.includes('"errors"')) {
            graphqlErrors++;
            if (errorSamples.length < 3) errorSamples.push(body.slice(0, 300));
          }
        },
      },
    ],
  });
  return { result, graphqlErrors, errorSamples };
}

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eyecase-bench-'));
  await recreateDatabase(adminUrl);
  const s3 = await startS3(dataDir);
  const { child, adminKey } = await startServer(dataDir);
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

    await run(await newCase('warm-up'), shuffled.slice(0, warmup), inv, warmup);
    const caseId = await newCase('load');
    const { result, graphqlErrors, errorSamples } = await run(caseId, shuffled.slice(warmup), inv, requests);

    const db = new pg.Client({ connectionString: adminUrl });
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
      durationSeconds: result.duration,
      requestsPerSecond: Number((result.requests.total / result.duration).toFixed(1)),
      latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
      errors: { graphql: graphqlErrors, socket: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, samples: errorSamples },
      countCheck: { successful: ok, evidence, predictions, evidenceAuditEvents: evidenceEvents, predictionAuditEvents: predictionEvents, evidenceWithoutPrediction: orphans, consistent: evidence === ok && predictions === ok && evidenceEvents === ok && predictionEvents === ok && orphans === 0 },
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    };
    console.log(`classifyImage end to end, ${connections} connections, ${summary.requests} requests in ${summary.durationSeconds} s`);
    console.log(`  throughput ${summary.requestsPerSecond} req/s; latency p50 ${summary.latencyMs.p50} ms, p90 ${summary.latencyMs.p90} ms, p99 ${summary.latencyMs.p99} ms`);
    console.log(`  errors ${graphqlErrors + result.errors + result.timeouts}; rows: ${evidence} evidence, ${predictions} predictions, ${evidenceEvents}+${predictionEvents} audit events for ${ok} successful requests -> ${summary.countCheck.consistent ? 'consistent' : 'INCONSISTENT'}`);
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    s3.kill('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
