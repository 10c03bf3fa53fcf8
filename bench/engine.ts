/**
 * Inference engines side by side, in one process, on the same images:
 *   npm run bench:engine [-- <bundle> [n]]
 * TF.js (the bundle's backend, normally wasm; this thread, and a 2-thread worker pool) against
 * onnxruntime-node, on the served network (flip averaging and guard features included, as the
 * bundle asks) and on one plain forward pass of the network (the figure). Prints
 * images/s forward only, end to end with JPEG decoding, single-image latency, the ratios, and a
 * JSON summary. Images: EYES_DATASET_DIR (the full set), else test/fixtures/eyes.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { decodeImage, decodeImageOffThread, setWasmJpegDecoding, decodeImageWithSharp, decodeItems, loadClassifier, readLabelledFolder, type Classifier } from '../src/ml/index.js';
import { exactResize, plainJpegSize } from '../src/ml/resize.js';
import { decodeBundle, encodeBundle } from '../src/ml/bundle.js';
import { foldChain, foldPlan } from '../src/ml/fold.js';
import { createOnnxEngine } from '../src/ml/onnx-engine.js';
import { exportOnnx } from '../src/ml/onnx-export.js';
import { PROJECT_ROOT } from '../src/shared/project-root.js';

const root = PROJECT_ROOT;
const bundlePath = process.argv[2] ?? path.join(root, 'models', 'eyes-compact-v2', 'model.eyemodel');
const n = Number(process.argv[3] ?? 4096);
const dataDir = process.env.EYES_DATASET_DIR ?? path.join(root, 'test', 'fixtures', 'eyes');
const summary: Record<string, number | string> = {};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
function report(key: string, label: string, value: number, unit: string): void {
  summary[key] = +fmt(value);
  console.log(`${label.padEnd(64)} ${fmt(value).padStart(8)} ${unit}`);
}

/** Images per second of `step(k)` over `count` images in chunks of `batch` (after one warm-up chunk). */
async function rate(count: number, batch: number, step: (start: number, k: number) => unknown): Promise<number> {
  await step(0, Math.min(batch, count));
  const t0 = performance.now();
  for (let done = 0; done < count; done += batch) await step(done, Math.min(batch, count - done));
  return count / ((performance.now() - t0) / 1000);
}

/** Median milliseconds of `step(i)` over `times` calls (after 10 warm-up calls). */
async function latency(times: number, step: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 10; i++) await step(i);
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await step(i);
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

const bundle = new Uint8Array(await fs.readFile(bundlePath));
const items = (await readLabelledFolder(dataDir, { limitPerClass: Math.ceil(n / 2) })).slice(0, n);
// onnxruntime with the API's default of one intra-op thread, and with both cores.
const onnx = await loadClassifier(bundle, { runtime: 'onnxruntime', onnxThreads: 1 });
const onnx2 = await loadClassifier(bundle, { runtime: 'onnxruntime', onnxThreads: 2 });
// What the API runs (INFERENCE_THREADS=1): onnxruntime in one worker thread, off the event loop.
const onnxWorker = await loadClassifier(bundle, { runtime: 'onnxruntime', workerThreads: 1 });
// A worker thread per core, one intra-op thread each: batches are decoded and scored in the workers.
const onnxWorkers2 = await loadClassifier(bundle, { runtime: 'onnxruntime', workerThreads: 2, onnxThreads: 1 });
const tfjs = await loadClassifier(bundle, { runtime: 'tfjs' });
const pool = await loadClassifier(bundle, { runtime: 'tfjs', workerThreads: 2 });
const S = onnx.meta.inputSize, per = S * S * 3;
const { set } = await decodeItems(items, S);
const count = set.count;
console.log(`model ${path.relative(root, bundlePath)} (${onnx.meta.architecture}, ${S} px, flip averaging: ${onnx.meta.testTimeAugmentation ?? 'none'}, guard: ${onnx.guard ? 'yes' : 'no'})`);
console.log(`images: ${count} from ${dataDir}; ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(`runtimes: ${onnx.runtime} | ${tfjs.runtime} (${tfjs.backend.device}, engine ${tfjs.engine}) | ${pool.runtime} with ${pool.workerThreads} worker threads`);
Object.assign(summary, { images: count, onnx: onnx.runtime, tfjs: `${tfjs.runtime} (${tfjs.backend.device})` });

// 1. One plain forward pass of the network (no flip, no guard): the table row.
{
  const model = await tf.loadLayersModel(tf.io.fromMemory(decodeBundle(bundle).artifacts));
  const folded = foldChain(model)!;
  const plan = foldPlan(model)!;
  const graph = exportOnnx(plan, S);
  const engine = (await createOnnxEngine(graph, { threads: 1 }))!;
  const engine2 = (await createOnnxEngine(graph, { threads: 2 }))!;
  plan.dispose();
  const floats = new Float32Array(count * per);
  for (let i = 0; i < floats.length; i++) floats[i] = set.pixels[i] / 127.5 - 1;
  const tfjsForward = (s: number, k: number) => tf.tidy(() => folded.forward(tf.tensor4d(floats.subarray(s * per, (s + k) * per), [k, S, S, 3])).dataSync());
  const onnxForward = (s: number, k: number) => engine.run(floats.subarray(s * per, (s + k) * per), k);
  const onnxForward2 = (s: number, k: number) => engine2.run(floats.subarray(s * per, (s + k) * per), k);
  const a = await rate(count, 64, onnxForward), a2 = await rate(count, 64, onnxForward2), b = await rate(count, 64, tfjsForward);
  report('networkForwardOnnxBatch64', 'network forward, batch 64: onnxruntime, 1 thread', a, 'images/s');
  report('networkForwardOnnx2Batch64', 'network forward, batch 64: onnxruntime, 2 threads', a2, 'images/s');
  report('networkForwardTfjsBatch64', 'network forward, batch 64: tfjs (this thread)', b, 'images/s');
  report('networkForwardRatio', '  ratio best onnxruntime / tfjs', Math.max(a, a2) / b, 'x');
  const la = await latency(300, (i) => onnxForward(i % count, 1)), lb = await latency(300, (i) => tfjsForward(i % count, 1));
  report('networkForwardOnnxSingleMs', 'network forward, one image: onnxruntime (median)', la, 'ms');
  report('networkForwardTfjsSingleMs', 'network forward, one image: tfjs (median)', lb, 'ms');
  await engine.release();
  await engine2.release();
  folded.dispose();
  model.dispose();
}

// 2. The served decision from decoded pixels (flip averaging + guard features + guard score).
const served = (c: Classifier) => (s: number, k: number) => c.scorePixelsAsync(set.pixels.subarray(s * per, (s + k) * per), k);
{
  const a = await rate(count, 64, served(onnx)), a2 = await rate(count, 64, served(onnx2));
  const b = await rate(count, 64, (s, k) => tfjs.scorePixels(set.pixels.subarray(s * per, (s + k) * per), k));
  const c = await rate(count, 256, served(pool));
  report('servedForwardOnnxBatch64', 'served forward (decoded pixels), batch 64: onnxruntime, 1 thread', a, 'images/s');
  report('servedForwardOnnx2Batch64', 'served forward (decoded pixels), batch 64: onnxruntime, 2 threads', a2, 'images/s');
  report('servedForwardTfjsBatch64', 'served forward (decoded pixels), batch 64: tfjs (this thread)', b, 'images/s');
  report('servedForwardTfjsPoolBatch256', `served forward, batch 256: tfjs, ${pool.workerThreads} worker threads`, c, 'images/s');
  report('servedForwardRatio', '  ratio best onnxruntime / best tfjs', Math.max(a, a2) / Math.max(b, c), 'x');
  const la = await latency(300, (i) => onnx.scorePixelsAsync(set.pixels.subarray((i % count) * per, (i % count + 1) * per), 1));
  const lb = await latency(300, (i) => tfjs.scorePixels(set.pixels.subarray((i % count) * per, (i % count + 1) * per), 1));
  report('servedForwardOnnxSingleMs', 'served forward, one image: onnxruntime (median)', la, 'ms');
  report('servedForwardTfjsSingleMs', 'served forward, one image: tfjs (median)', lb, 'ms');
}

// 3. Decoding alone, all images in flight at once as the batch paths do: what serves (mozjpeg in wasm
// decodes plain JPEGs, src/ml/jpeg-wasm.ts; JavaScript resizes them, src/ml/resize.ts) against the
// same with sharp's decode (the path before the wasm decoder) and against sharp's own resize,
// alternating runs.
const bytes = items.map((i) => i.bytes);
{
  const served = (s: number, k: number) => Promise.all(bytes.slice(s, s + k).map((b) => decodeImage(b, S)));
  const reference = (s: number, k: number) => Promise.all(bytes.slice(s, s + k).map((b) => decodeImageWithSharp(b, S)));
  const sharpDecode = (s: number, k: number) => Promise.all(bytes.slice(s, s + k).map((b) => decodeImageOffThread(b, S)));
  const plain = bytes.filter((b) => { const p = plainJpegSize(b); return p !== null && exactResize(p.width, p.height, S); }).length;
  // CPU time of the whole process (all threads) per image: steadier than wall time on a shared machine.
  const cpuMs = { served: 0, reference: 0, sharpDecode: 0 };
  const timed = async (which: keyof typeof cpuMs, step: (s: number, k: number) => unknown) => {
    const before = process.cpuUsage();
    const r = await rate(count, 64, step);
    const used = process.cpuUsage(before);
    cpuMs[which] = Math.min(cpuMs[which] || Infinity, (used.user + used.system) / 1000 / (count + Math.min(64, count)));
    return r;
  };
  const d: number[] = [], r: number[] = [], sd: number[] = [];
  for (let round = 0; round < 2; round++) {
    d.push(await timed('served', served));
    sd.push(await timed('sharpDecode', sharpDecode));
    r.push(await timed('reference', reference));
  }
  const where = `concurrency ${sharp.concurrency()}, libuv pool ${process.env.UV_THREADPOOL_SIZE ?? 4}`;
  report('decodeImagesPerSec', `decode + resize as served (wasm decode + JavaScript resize for ${plain}/${count}; ${where})`, Math.max(...d), 'images/s');
  report('decodeSharpDecodeImagesPerSec', 'decode + resize with sharp decoding the plain JPEGs (before the wasm decoder)', Math.max(...sd), 'images/s');
  report('decodeWasmRatio', '  ratio served / sharp decoding', Math.max(...d) / Math.max(...sd), 'x');
  report('decodeSharpResizeImagesPerSec', 'decode + resize by sharp alone (the reference)', Math.max(...r), 'images/s');
  report('decodeRatio', '  ratio served / sharp alone', Math.max(...d) / Math.max(...r), 'x');
  report('decodeCpuMs', 'decode + resize as served: CPU time per image (all threads)', cpuMs.served, 'ms');
  report('decodeSharpCpuMs', 'decode + resize by sharp alone: CPU time per image (all threads)', cpuMs.reference, 'ms');
  report('decodeSharpDecodeCpuMs', 'decode + resize with sharp decoding the plain JPEGs: CPU time per image (all threads)', cpuMs.sharpDecode, 'ms');
  report('decodeCpuRatio', '  ratio of CPU time sharp alone / served', cpuMs.reference / cpuMs.served, 'x');
  report('decodeWasmCpuRatio', '  ratio of CPU time sharp decoding / served (wasm decoding)', cpuMs.sharpDecode / cpuMs.served, 'x');
  let differing = 0;
  for (let i = 0; i < Math.min(count, 512); i++) {
    const [a, b] = await Promise.all([decodeImage(bytes[i], S), decodeImageWithSharp(bytes[i], S)]);
    if (a.some((v, j) => v !== b[j])) differing++;
  }
  report('decodeDifferingFromSharp', '  images (of the first 512) whose pixels differ from sharp\'s', differing, 'images');
  let differingDecode = 0;
  for (let i = 0; i < count; i++) {
    const [a, b] = await Promise.all([decodeImage(bytes[i], S), decodeImageOffThread(bytes[i], S)]);
    if (a.some((v, j) => v !== b[j])) differingDecode++;
  }
  report('decodeDifferingFromSharpDecode', `  images (of all ${count}) whose pixels differ from sharp decoding`, differingDecode, 'images');
  report('decodeSingleMs', 'decode + resize as served, one image (median)', await latency(300, (i) => decodeImage(bytes[i % count], S)), 'ms');
  report('decodeSharpDecodeSingleMs', 'decode + resize with sharp decoding, one image (median)', await latency(300, (i) => decodeImageOffThread(bytes[i % count], S)), 'ms');
  report('decodeSharpSingleMs', 'decode + resize by sharp alone, one image (median)', await latency(300, (i) => decodeImageWithSharp(bytes[i % count], S)), 'ms');
}

// 4. End to end: JPEG bytes in, decisions out.
{
  const e2e = (c: Classifier) => (s: number, k: number) => c.predictBatch(bytes.slice(s, s + k));
  const a = await rate(count, 64, e2e(onnx)), a2 = await rate(count, 64, e2e(onnx2));
  const b = await rate(count, 64, e2e(tfjs)), c = await rate(count, 256, e2e(pool));
  report('endToEndOnnxBatch64', 'end to end with decode, predictBatch(64): onnxruntime, 1 thread', a, 'images/s');
  report('endToEndOnnx2Batch64', 'end to end with decode, predictBatch(64): onnxruntime, 2 threads', a2, 'images/s');
  report('endToEndOnnxWorkerBatch64', 'end to end with decode, predictBatch(64): onnxruntime in 1 worker thread', await rate(count, 64, e2e(onnxWorker)), 'images/s');
  report('endToEndOnnxWorkers2Batch64', 'end to end with decode, predictBatch(64): onnxruntime in 2 worker threads (decoding there)', await rate(count, 64, e2e(onnxWorkers2)), 'images/s');
  report('endToEndTfjsBatch64', 'end to end with decode, predictBatch(64): tfjs (this thread)', b, 'images/s');
  report('endToEndTfjsPoolBatch256', `end to end with decode, predictBatch(256): tfjs, ${pool.workerThreads} worker threads`, c, 'images/s');
  report('endToEndRatio', '  ratio best onnxruntime / best tfjs', Math.max(a, a2) / Math.max(b, c), 'x');
  // The same end to end with sharp decoding the plain JPEGs (the path before the wasm decoder),
  // alternating with the wasm decoding twice: onnxruntime in this thread and in a worker thread.
  const wasmE2e = { here: [] as number[], worker: [] as number[] }, sharpE2e = { here: [] as number[], worker: [] as number[] };
  for (let round = 0; round < 2; round++) {
    for (const on of [false, true]) {
      setWasmJpegDecoding(on);
      const into = on ? wasmE2e : sharpE2e;
      into.here.push(await rate(count, 64, e2e(onnx)));
      into.worker.push(await rate(count, 64, e2e(onnxWorker)));
    }
  }
  setWasmJpegDecoding(true);
  const bestOf = (x: number[]) => Math.max(...x);
  report('endToEndOnnxWasmDecode', 'end to end, onnxruntime 1 thread: wasm decode (alternating runs)', bestOf(wasmE2e.here), 'images/s');
  report('endToEndOnnxSharpDecode', 'end to end, onnxruntime 1 thread: sharp decode (before)', bestOf(sharpE2e.here), 'images/s');
  report('endToEndOnnxWasmRatio', '  ratio wasm / sharp decode', bestOf(wasmE2e.here) / bestOf(sharpE2e.here), 'x');
  report('endToEndOnnxWorkerWasmDecode', 'end to end, onnxruntime in 1 worker thread: wasm decode (alternating runs)', bestOf(wasmE2e.worker), 'images/s');
  report('endToEndOnnxWorkerSharpDecode', 'end to end, onnxruntime in 1 worker thread: sharp decode (before)', bestOf(sharpE2e.worker), 'images/s');
  report('endToEndOnnxWorkerWasmRatio', '  ratio wasm / sharp decode', bestOf(wasmE2e.worker) / bestOf(sharpE2e.worker), 'x');
  // The row "inference with JPEG decode": one network pass per image (the same weights with
  // no flip averaging and no guard), decoding on this thread while onnxruntime runs in a worker.
  {
    const { meta, artifacts } = decodeBundle(bundle);
    const onePass = encodeBundle({ ...meta, testTimeAugmentation: 'none' },
      { modelTopology: artifacts.modelTopology as object, weightSpecs: artifacts.weightSpecs ?? [], weightData: artifacts.weightData as ArrayBuffer }, null);
    const plainWorker = await loadClassifier(onePass, { runtime: 'onnxruntime', workerThreads: 1 });
    const plain2 = await loadClassifier(onePass, { runtime: 'onnxruntime', onnxThreads: 2 });
    const plainWorkers2 = await loadClassifier(onePass, { runtime: 'onnxruntime', workerThreads: 2, onnxThreads: 1 });
    report('endToEndOnePassWorkerBatch64', 'end to end with decode, one network pass (no flip, no guard), predictBatch(64): onnxruntime in 1 worker thread', await rate(count, 64, e2e(plainWorker)), 'images/s');
    report('endToEndOnePassWorkers2Batch64', 'end to end with decode, one network pass, predictBatch(64): onnxruntime in 2 worker threads (decoding there)', await rate(count, 64, e2e(plainWorkers2)), 'images/s');
    report('endToEndOnePass2Batch64', 'end to end with decode, one network pass, predictBatch(64): onnxruntime, 2 threads, this thread', await rate(count, 64, e2e(plain2)), 'images/s');
    plainWorker.dispose();
    plain2.dispose();
    plainWorkers2.dispose();
  }
  const la = await latency(300, (i) => onnx.predict(bytes[i % count])), lb = await latency(300, (i) => tfjs.predict(bytes[i % count]));
  report('predictOnnxSingleMs', 'predict(), one JPEG, sequential: onnxruntime (median)', la, 'ms');
  report('predictTfjsSingleMs', 'predict(), one JPEG, sequential: tfjs (median)', lb, 'ms');
  // Concurrent single-image calls, micro-batched (what the API does under load).
  for (const [name, c] of [['Onnx', onnx], ['OnnxWorker', onnxWorker], ['Tfjs', tfjs], ['TfjsPool', pool]] as const) {
    const t0 = performance.now();
    await Promise.all(bytes.slice(0, 1024).map((b) => c.predict(b)));
    const label = { Onnx: 'onnxruntime, this thread', OnnxWorker: 'onnxruntime, 1 worker thread', Tfjs: 'tfjs, this thread', TfjsPool: `tfjs, ${pool.workerThreads} worker threads` }[name];
    report(`concurrentPredict${name}`, `1024 concurrent predict() calls (micro-batched): ${label}`, Math.min(1024, count) / ((performance.now() - t0) / 1000), 'images/s');
  }
}

// Targets of issue 14 (on the served onnxruntime path).
const best = (...keys: string[]) => Math.max(...keys.map((k) => summary[k] as number));
const met = (ok: boolean) => (ok ? 'met' : 'not met');
console.log(`targets: forward >= 4000 images/s: ${met(best('networkForwardOnnxBatch64', 'networkForwardOnnx2Batch64') >= 4000)} (one network pass), ` +
  `${met(best('servedForwardOnnxBatch64', 'servedForwardOnnx2Batch64') >= 4000)} (served: flip = 2 passes + guard); ` +
  `end to end >= 2000 images/s: ${met(best('endToEndOnnxBatch64', 'endToEndOnnx2Batch64', 'endToEndOnnxWorkerBatch64', 'endToEndOnnxWorkers2Batch64') >= 2000)} (served), ` +
  `${met(best('endToEndOnePassWorkerBatch64', 'endToEndOnePass2Batch64', 'endToEndOnePassWorkers2Batch64') >= 2000)} (one network pass); ` +
  `one image <= 1 ms: ${met((summary.networkForwardOnnxSingleMs as number) <= 1)} (network), ${met((summary.servedForwardOnnxSingleMs as number) <= 1)} (served)`);
console.log(JSON.stringify(summary));
onnx.dispose();
onnx2.dispose();
onnxWorker.dispose();
onnxWorkers2.dispose();
tfjs.dispose();
pool.dispose();
