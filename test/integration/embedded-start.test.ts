// The zero-config start as a person or a supervisor runs it: `npm start` with nothing set runs an
// embedded PostgreSQL and S3 server under DATA_DIR; side commands attach to them while it runs;
// SIGTERM / SIGINT to the npm process stop everything; a killed server's database is recovered.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { readDatasetImage } from '../support/images.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eyecase-embedded-'));
fs.chmodSync(dataDir, 0o755); // as root, the database runs as "postgres", which must enter it
const env = { ...process.env, DATA_DIR: dataDir, PORT: '0', EMBEDDED_S3_PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: '', S3_ENDPOINT: '', NODE_OPTIONS: '' };

interface Started {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
function npm(args: string[]): ChildProcess {
  const child = spawn('npm', args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function start(): Promise<Started> {
  const child = npm(['start']);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "GraphQL API ready" within 90 s:\n${out}\n${err}`)), 90_000);
    child.stdout!.on('data', (c) => {
      out += c;
      const ready = /"msg":"GraphQL API ready".*?"url":"([^"]+)"/.exec(out);
      if (ready) {
        clearTimeout(timer);
        resolve(ready[1]);
      }
    });
    void exited.then((code) => reject(new Error(`npm start exited with ${code}:\n${out}\n${err}`)));
  });
  return { child, url, stdout: () => out, stderr: () => err, exited };
}

async function gql(url: string, key: string, query: string): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });
  return res.json();
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const postmasterPid = () => Number(fs.readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
const keyIn = (text: string) => /eyk_[\w-]+/.exec(text)?.[0];

afterAll(async () => {
  // A failed assertion must not leave a server (or its database) running.
  for (const child of children) {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

it('starts with nothing set, attaches side commands, stops on signals, and recovers from a killed start', async () => {
  // First start: an admin key is printed once; an investigator uploads evidence.
  let server = await start();
  const admin = keyIn(server.stderr())!;
  expect(admin).toBeDefined();
  expect(server.stdout()).toContain('embedded PostgreSQL started');
  const inv = (await gql(server.url, admin, `mutation { createApiKey(input: { name: "inv", role: INVESTIGATOR }) { secret } }`)).data.createApiKey.secret;
  const created = (await gql(server.url, inv, `mutation { createCase(input: { title: "Embedded", reference: "EMB-1" }) { id } }`)).data.createCase;
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: `mutation($f: Upload!) { addEvidence(caseId: "${created.id}", file: $f) { image { sha256 } } }`, variables: { f: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([readDatasetImage('male', 1)]), 'eye.jpg');
  const uploaded = (await (await fetch(server.url, { method: 'POST', headers: { authorization: `Bearer ${inv}`, 'apollo-require-preflight': '1' }, body: form })).json()) as any;
  expect(uploaded.data.addEvidence.image.sha256).toMatch(/^[0-9a-f]{64}$/);

  // A side command while the server runs uses the server's database: its key works at once.
  const cli = npm(['run', 'create-admin-key', '--', '--name', 'second admin']);
  let cliErr = '';
  cli.stderr!.on('data', (c) => (cliErr += c));
  expect(await new Promise((resolve) => cli.on('exit', resolve))).toBe(0);
  const second = keyIn(cliErr)!;
  expect((await gql(server.url, second, `{ apiKeys { name } }`)).data.apiKeys.map((k: { name: string }) => k.name)).toEqual(['first admin', 'inv', 'second admin']);
  expect((await gql(server.url, second, `{ verifyAuditChain { ok } }`)).data.verifyAuditChain.ok).toBe(true);
  const keyEvents = (await gql(server.url, second, `{ auditEvents(filter: { action: "apiKey.create" }) { nodes { details } } }`)).data.auditEvents.nodes;
  expect(keyEvents.map((e: { details: { name: string } }) => e.details.name)).toEqual(['first admin', 'inv', 'second admin']);

  // SIGTERM to the npm process stops the server and its database; nothing is left running.
  const pgPid = postmasterPid();
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
  expect(server.stdout()).toMatch(/"msg":"stopped"/);
  expect(alive(pgPid)).toBe(false);
  expect(fs.existsSync(path.join(dataDir, 'eyecase.lock'))).toBe(false);

  // Second start: no new key; the data survived. Then the server is killed outright.
  server = await start();
  expect(keyIn(server.stderr())).toBeUndefined();
  expect(server.stdout()).toContain('admin keys exist');
  const again = await gql(server.url, inv, `{ caseByReference(reference: "EMB-1") { evidence { nodes { image { sha256 } } } } }`);
  expect(again.data.caseByReference.evidence.nodes).toEqual([{ image: uploaded.data.addEvidence.image }]);
  const serverPid = JSON.parse(fs.readFileSync(path.join(dataDir, 'eyecase.lock'), 'utf8')).pid as number;
  const orphan = postmasterPid();
  process.kill(serverPid, 'SIGKILL');
  await server.exited;
  expect(alive(orphan)).toBe(true); // the database outlived its killed owner

  // Third start recovers the folder, and SIGINT stops it.
  server = await start();
  expect(server.stdout()).toContain('stopped an embedded PostgreSQL that a killed process had left running');
  expect(alive(orphan)).toBe(false);
  expect((await gql(server.url, second, `{ verifyAuditChain { ok } }`)).data.verifyAuditChain.ok).toBe(true);
  server.child.kill('SIGINT');
  expect(await server.exited).toBe(0);
}, 240_000);
