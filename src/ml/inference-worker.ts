/**
 * Worker-thread entry for inference pools: loads one bundle; decodes single uploads (the wasm JPEG
 * decoder, off the API's event loop); answers P(male) and guard scores for batches of decoded
 * pixels, and for batches of encoded images it decodes itself. Scoring goes through onnxruntime
 * when the classifier here has it: its forward pass blocks the thread that calls it, so this keeps
 * it off the API's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeImage } from './data.js';
import { MlError } from './errors.js';
import { loadClassifier, type Classifier, type ClassifierOptions } from './inference.js';

const port = parentPort;
if (!port) throw new Error('inference-worker must run in a worker thread');

const ready: Promise<Classifier> = loadClassifier(workerData.bundle as Uint8Array, {
  workerThreads: 0, foldBatchNorm: workerData.foldBatchNorm as boolean | undefined,
  runtime: workerData.runtime as ClassifierOptions['runtime'], onnxThreads: workerData.onnxThreads as number | undefined,
});
ready.then(() => port.postMessage({ id: 0, result: 'ready' }), (e) => port.postMessage({ id: 0, error: String(e instanceof Error ? e.message : e) }));

type Request =
  | { id: number; pixels: Uint8Array; count: number }
  | { id: number; decode: Uint8Array; size: number }
  | { id: number; images: Uint8Array[]; size: number };

/** The images decoded at `size`, one after the other in one buffer. */
async function decodeAll(images: Uint8Array[], size: number): Promise<Uint8Array> {
  const per = size * size * 3;
  const out = new Uint8Array(images.length * per);
  (await Promise.all(images.map((b) => decodeImage(b, size)))).forEach((px, i) => out.set(px, i * per));
  return out;
}

port.on('message', async (msg: Request) => {
  try {
    if ('decode' in msg) {
      const decoded = await decodeImage(msg.decode, msg.size);
      // Only memory of its own can be handed over (sharp's output may be a view of a shared slab).
      const pixels = decoded.byteLength === decoded.buffer.byteLength ? decoded : decoded.slice();
      port.postMessage({ id: msg.id, result: pixels }, [pixels.buffer as ArrayBuffer]);
      return;
    }
    const [pixels, count] = 'images' in msg ? [await decodeAll(msg.images, msg.size), msg.images.length] : [msg.pixels, msg.count];
    const c = await ready;
    // onnxruntime when this thread's classifier has it, else TF.js here.
    const r = await c.scorePixelsAsync(pixels, count);
    port.postMessage({ id: msg.id, result: r }, [r.pMale.buffer as ArrayBuffer, ...(r.guard ? [r.guard.buffer as ArrayBuffer] : [])]);
  } catch (e) {
    port.postMessage({ id: msg.id, error: e instanceof Error ? e.message : String(e), code: e instanceof MlError ? e.code : undefined });
  }
});
