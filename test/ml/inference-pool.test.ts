// The inference pool survives a dead worker thread: the requests it held fail with a retryable
// error, and a new thread takes its place. A stand-in worker speaks the pool's message protocol and
// dies on request (count 0), so the test needs no compiled build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InferenceUnavailableError } from '../../src/ml/errors.js';
import { InferencePool } from '../../src/ml/inference.js';

const WORKER = `
import { parentPort } from 'node:worker_threads';
parentPort.postMessage({ id: 0, result: 'ready' });
parentPort.on('message', (m) => {
  if (m.count === 0) process.exit(3);
  const out = { pMale: new Float64Array(m.count).fill(0.25), guard: null };
  parentPort.postMessage({ id: m.id, result: out }, [out.pMale.buffer]);
});
`;

let dir: string;
let entry: URL;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eyecase-pool-'));
  fs.writeFileSync(path.join(dir, 'worker.mjs'), WORKER);
  entry = pathToFileURL(path.join(dir, 'worker.mjs'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function until(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a dead worker thread fails its requests with a retryable error and is replaced', async () => {
  const pool = (await InferencePool.start(2, new Uint8Array(4), false, entry))!;
  try {
    expect(pool.size).toBe(2);
    expect(Array.from((await pool.run(new Uint8Array(12), 3)).pMale)).toEqual([0.25, 0.25, 0.25]);

    const doomed = pool.run(new Uint8Array(0), 0); // this thread dies holding the request
    await expect(doomed).rejects.toBeInstanceOf(InferenceUnavailableError);
    await expect(doomed).rejects.toThrow(/worker thread stopped \(exit code 3\); try the request again/);

    await until(() => pool.size === 2); // replaced
    const answers = await Promise.all([pool.run(new Uint8Array(3), 1), pool.run(new Uint8Array(6), 2)]);
    expect(answers.map((a) => a.pMale.length)).toEqual([1, 2]);
    expect(pool.capacity).toBe(2);
  } finally {
    pool.close();
  }
  expect(pool.size).toBe(0);
  await expect(pool.run(new Uint8Array(3), 1)).rejects.toBeInstanceOf(InferenceUnavailableError);
});

test('a worker that cannot load fails the start instead of hanging', async () => {
  fs.writeFileSync(path.join(dir, 'broken.mjs'), `import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ id: 0, error: 'bad bundle' });`);
  await expect(InferencePool.start(1, new Uint8Array(4), false, pathToFileURL(path.join(dir, 'broken.mjs')))).rejects.toThrow('bad bundle');
});
