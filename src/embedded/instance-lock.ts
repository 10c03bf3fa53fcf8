// One process owns the embedded servers of a DATA_DIR at a time. Its lock file says which process
// that is and where its S3 server listens, so that side commands (create-admin-key, import) attach
// to a running server's database and object store instead of opening the same folder twice.
import fs from 'node:fs';
import path from 'node:path';
import { isAlive } from './postgres.js';

export interface InstanceInfo {
  pid: number;
  s3Port?: number;
}

export class InstanceLockError extends Error {}

const lockPath = (dataDir: string) => path.join(dataDir, 'eyecase.lock');

/** The live process that owns `dataDir`'s embedded servers, if any (a dead owner's file is stale). */
export function instanceOwner(dataDir: string): InstanceInfo | null {
  try {
    const info = JSON.parse(fs.readFileSync(lockPath(dataDir), 'utf8')) as InstanceInfo;
    return Number.isInteger(info.pid) && info.pid !== process.pid && isAlive(info.pid) ? info : null;
  } catch {
    return null;
  }
}

export interface InstanceLock {
  update(info: Omit<InstanceInfo, 'pid'>): void;
  release(): void;
}

/** Takes `dataDir` for this process, or says which live process holds it. */
export function acquireInstanceLock(dataDir: string): InstanceLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = lockPath(dataDir);
  const write = (info: InstanceInfo) => fs.writeFileSync(file, JSON.stringify(info));
  for (let attempt = 0; ; attempt++) {
    try {
      // Exclusive create: of two processes starting at once, one wins.
      fs.closeSync(fs.openSync(file, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = instanceOwner(dataDir);
      if (owner || attempt > 0) {
        throw new InstanceLockError(`Another eyecase process (pid ${owner?.pid ?? '?'}) runs the embedded database in ${dataDir}. Stop it first, or give this one its own DATA_DIR.`);
      }
      fs.rmSync(file, { force: true }); // left by a process that died
    }
  }
  write({ pid: process.pid });
  return {
    update: (info) => write({ pid: process.pid, ...info }),
    release: () => {
      try {
        if ((JSON.parse(fs.readFileSync(file, 'utf8')) as InstanceInfo).pid === process.pid) fs.rmSync(file, { force: true });
      } catch {
        /* already gone */
      }
    },
  };
}
