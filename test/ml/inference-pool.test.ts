// The inference pool survives a dead worker thread: the requests it held fail with a retryable
// error, and a new thread takes its place. A stand-in worker speaks the pool's message protocol and
// dies on request (count 0), so those tests need no compiled build; the decode test runs the real one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { decodeImage } from '../../src/ml/data.js';
import { ImageDecodeError, InferenceUnavailableError } from '../../src/ml/errors.js';
import { InferencePool } from '../../src/ml/inference.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { fixtureFiles, syntheticImage } from '../support/images.js';

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

test('decodes uploads and scores encoded batches in a pool thread (the compiled worker): the same pixels and scores, the upload left intact, bad bytes an ImageDecodeError', async () => {
  // `npm test` compiles to dist/ first; the API's pool runs that build.
  const compiled = pathToFileURL(path.join(PROJECT_ROOT, 'dist', 'src', 'ml', 'inference-worker.js'));
  const pool = (await InferencePool.start(1, fs.readFileSync(loadConfig({}).baselineModelPath), undefined, compiled))!;
  try {
    // Uploads arrive as Buffers that may share their memory with other data: a view into a larger
    // one, too large for Node's small-buffer pool (whose memory is never handed over, only copied).
    const jpeg = fs.readFileSync(fixtureFiles('female')[0]);
    const shared = Buffer.alloc(64 * 1024);
    shared.write('prefix');
    jpeg.copy(shared, 6);
    const upload = shared.subarray(6, 6 + jpeg.length);
    for (const bytes of [upload, await syntheticImage(7, 'png', 64)]) {
      const before = sha256Hex(bytes);
      expect(Array.from(await pool.decode(bytes, 48))).toEqual(Array.from(await decodeImage(bytes, 48)));
      expect(sha256Hex(bytes)).toBe(before);
    }
    expect(shared.subarray(0, 6).toString()).toBe('prefix');
    await expect(pool.decode(Buffer.from('not an image'), 48)).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(pool.decode(jpeg.subarray(0, jpeg.length >> 1), 48)).rejects.toBeInstanceOf(ImageDecodeError);

    // A batch of encoded images decoded and scored in the thread: the scores of its decoded pixels.
    const batch = [upload, ...fixtureFiles('male').slice(0, 3).map((f) => fs.readFileSync(f))];
    const pixels = new Uint8Array(batch.length * 48 * 48 * 3);
    (await Promise.all(batch.map((b) => decodeImage(b, 48)))).forEach((px, i) => pixels.set(px, i * 48 * 48 * 3));
    const [scored, reference] = await Promise.all([pool.decodeAndScore(batch, 48), pool.run(pixels, batch.length)]);
    expect(scored.pMale).toHaveLength(batch.length);
    expect(Array.from(scored.pMale)).toEqual(Array.from(reference.pMale));
    expect(scored.guard && Array.from(scored.guard)).toEqual(reference.guard && Array.from(reference.guard));
    await expect(pool.decodeAndScore([batch[1], Buffer.from('not an image')], 48)).rejects.toBeInstanceOf(ImageDecodeError);
  } finally {
    pool.close();
  }
}, 60_000);
