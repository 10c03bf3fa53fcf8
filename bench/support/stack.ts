// The platform as separate processes for benchmarks: a fresh PostgreSQL database, an S3 server in a
// process of its own (as MinIO would be), and the API server (`dist/src/server.js`).
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function recreateDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const c = new pg.Client({ connectionString: maintenance.toString() });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await c.query(`CREATE DATABASE "${name}"`);
  await c.end();
}

export function startS3(port: number, directory: string): Promise<ChildProcess> {
  const script = `import S3rver from '@20minutes/s3rver';
    const server = new S3rver({ address: '127.0.0.1', port: ${port}, directory: ${JSON.stringify(directory)}, silent: true });
    await server.run(); console.log('s3 ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`S3 server exited with ${code}`)));
  });
}

/**
 * Keeps reading a server's output after start-up (an unread pipe fills and blocks the server),
 * the last lines in memory for the benchmark to show if the process dies.
 */
export const serverOutput = new WeakMap<ChildProcess, string[]>();
function keepTail(child: ChildProcess): void {
  const lines: string[] = [];
  serverOutput.set(child, lines);
  const add = (d: Buffer) => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
}

/** Starts the API server again on an initialised database (no key banner then): resolves when /readyz answers 200. */
export function restartServer(env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'src', 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  keepTail(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${serverOutput.get(child)?.join('\n')}`)));
    void (async () => {
      for (let i = 0; i < 300; i++) {
        if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok) return resolve(child);
        await new Promise((r) => setTimeout(r, 100));
      }
      reject(new Error('server not ready after 30 s'));
    })();
  });
}

function startServer(env: NodeJS.ProcessEnv, port: number): Promise<{ child: ChildProcess; adminKey: string }> {
  // BENCH_SERVER_NODE_ARGS, e.g. --cpu-prof, profiles the server under load.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(PROJECT_ROOT, 'dist', 'src', 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const key = /eyk_[A-Za-z0-9_-]{20,}/.exec(output)?.[0];
      if (!key) return;
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      keepTail(child);
      void (async () => {
        for (let i = 0; i < 150; i++) {
          if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok) return resolve({ child, adminKey: key });
          await new Promise((r) => setTimeout(r, 200));
        }
        reject(new Error(`server not ready:\n${output}`));
      })();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
}

/** A GraphQL multipart request (graphql-upload) through fetch. */
export async function upload(api: string, key: string, query: string, variables: Record<string, unknown>, files: Array<{ field: string; name: string; bytes: Buffer }>) {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables }));
  form.append('map', JSON.stringify(Object.fromEntries(files.map((f, i) => [String(i), [`variables.${f.field}`]]))));
  files.forEach((f, i) => form.append(String(i), new Blob([f.bytes]), f.name));
  const res = await fetch(api, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'apollo-require-preflight': 'true' }, body: form });
  const body = (await res.json()) as { data?: Record<string, any>; errors?: unknown };
  if (body.errors || !body.data) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

export interface Stack {
  api: string;
  adminKey: string;
  databaseUrl: string;
  /** The processes, for fault injection (replace them when restarting one). */
  processes: { api: ChildProcess; s3: ChildProcess };
  /** The API server's environment and the S3 server's port and directory, to restart them. */
  env: NodeJS.ProcessEnv;
  s3: { port: number; directory: string };
  gql<T>(query: string, variables: Record<string, unknown>, key: string): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Starts database, S3 server and API server; `extraEnv` reaches the API server (e.g. a
 * DATABASE_URL through a proxy, while `databaseUrl` is the one the benchmark recreates).
 */
export async function startStack(options: { databaseUrl: string; port: number; extraEnv?: NodeJS.ProcessEnv }): Promise<Stack> {
  const { databaseUrl, port } = options;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eyecase-bench-'));
  await recreateDatabase(databaseUrl);
  const s3 = await startS3(port + 1, path.join(dataDir, 's3'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    S3_ENDPOINT: `http://127.0.0.1:${port + 1}`,
    S3_ACCESS_KEY: 'S3RVER',
    S3_SECRET_KEY: 'S3RVER',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    IN_PROCESS_WORKER: 'false',
    LOG_LEVEL: 'warn',
    ...options.extraEnv,
  };
  const { child, adminKey } = await startServer(env, port).catch((err) => {
    s3.kill('SIGTERM');
    throw err;
  });
  const api = `http://127.0.0.1:${port}/graphql`;
  const processes = { api: child, s3 };
  return {
    api,
    adminKey,
    databaseUrl,
    processes,
    env,
    s3: { port: port + 1, directory: path.join(dataDir, 's3') },
    gql: async <T>(query: string, variables: Record<string, unknown>, key: string) => {
      const res = await fetch(api, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
      const body = (await res.json()) as { data?: T; errors?: unknown };
      if (body.errors || !body.data) throw new Error(JSON.stringify(body.errors));
      return body.data;
    },
    stop: async () => {
      const { api: apiProcess, s3: s3Process } = processes;
      if (apiProcess.exitCode === null && apiProcess.signalCode === null) {
        apiProcess.kill('SIGTERM');
        await new Promise((r) => apiProcess.once('exit', r));
      }
      s3Process.kill('SIGCONT');
      s3Process.kill('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
