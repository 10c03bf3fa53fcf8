/** Worker-thread entry for inference pools: loads one bundle, answers P(male) and guard scores for pixel batches. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadClassifier, type Classifier } from './inference.js';

const port = parentPort;
if (!port) throw new Error('inference-worker must run in a worker thread');

const ready: Promise<Classifier> = loadClassifier(workerData.bundle as Uint8Array, { workerThreads: 0, foldBatchNorm: workerData.foldBatchNorm as boolean | undefined });
ready.then(() => port.postMessage({ id: 0, result: 'ready' }), (e) => port.postMessage({ id: 0, error: String(e instanceof Error ? e.message : e) }));

port.on('message', async (msg: { id: number; pixels: Uint8Array; count: number }) => {
  try {
    const c = await ready;
    const r = c.scorePixels(msg.pixels, msg.count);
    port.postMessage({ id: msg.id, result: r }, [r.pMale.buffer as ArrayBuffer, ...(r.guard ? [r.guard.buffer as ArrayBuffer] : [])]);
  } catch (e) {
    port.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e) });
  }
});
