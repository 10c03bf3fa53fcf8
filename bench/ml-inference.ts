/**
 * Inference benchmark: npm run bench:ml-inference [-- <bundle> [n]]
 * Single-image latency (decode + forward, and forward only), batch throughput, micro-batching of
 * concurrent calls. Prints one line per figure and a JSON summary.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { datasetDir, decodeItems, loadClassifier, readLabelledFolder } from '../src/ml/index.js';
import { PROJECT_ROOT } from '../src/shared/project-root.js';

const bundlePath = process.argv[2] ?? path.join(PROJECT_ROOT, 'models', 'eyes-compact-v2', 'model.eyemodel');
const n = Number(process.argv[3] ?? 2048);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const classifier = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)));
const S = classifier.meta.inputSize;
console.log(`model ${bundlePath} (${classifier.meta.architecture}, ${S}px, ${classifier.meta.parameters} params) on ${classifier.backend.backend} / ${classifier.backend.device}, engine ${classifier.engine}`);
const items = (await readLabelledFolder(datasetDir(), { limitPerClass: Math.ceil(n / 2) })).slice(0, n);
const { set } = await decodeItems(items, S);
const per = S * S * 3;
const summary: Record<string, number | string> = { backend: classifier.backend.backend, device: classifier.backend.device, inputSize: S };

// Single image, forward only (already decoded).
const one: number[] = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  classifier.predictPixels(set.pixels.subarray((i % set.count) * per, (i % set.count + 1) * per), 1);
  one.push(performance.now() - t0);
}
console.log(`single image, forward only: median ${pct(one, 50).toFixed(2)} ms, p95 ${pct(one, 95).toFixed(2)} ms`);
summary.singleForwardMedianMs = +pct(one, 50).toFixed(2);
summary.singleForwardP95Ms = +pct(one, 95).toFixed(2);

// Single image through predict(): sharp decode + forward, sequential calls.
const full: number[] = [];
for (let i = 0; i < 200; i++) {
  const r = await classifier.predict(items[i % items.length].bytes);
  full.push(r.latencyMs);
}
console.log(`single image, predict() incl. JPEG decode: median ${pct(full, 50).toFixed(2)} ms, p95 ${pct(full, 95).toFixed(2)} ms`);
summary.singlePredictMedianMs = +pct(full, 50).toFixed(2);
summary.singlePredictP95Ms = +pct(full, 95).toFixed(2);

// Batches, forward only.
for (const b of [1, 16, 64, 256]) {
  const count = Math.min(set.count, Math.max(b * 8, 512));
  const t0 = performance.now();
  let done = 0;
  while (done < count) {
    const k = Math.min(b, count - done);
    const start = done % (set.count - k + 1);
    classifier.predictPixels(set.pixels.subarray(start * per, (start + k) * per), k);
    done += k;
  }
  const ips = count / ((performance.now() - t0) / 1000);
  console.log(`batches of ${b}, forward only: ${ips.toFixed(0)} images/s`);
  summary[`batch${b}ImagesPerSec`] = Math.round(ips);
}

// predictBatch with decoding, and concurrent predict() calls (micro-batched).
{
  const imgs = items.slice(0, 512).map((i) => i.bytes);
  let t0 = performance.now();
  for (let s = 0; s < imgs.length; s += 64) await classifier.predictBatch(imgs.slice(s, s + 64));
  const ips = imgs.length / ((performance.now() - t0) / 1000);
  console.log(`predictBatch(64 JPEGs) incl. decode: ${ips.toFixed(0)} images/s`);
  summary.predictBatchWithDecodeImagesPerSec = Math.round(ips);
  t0 = performance.now();
  const res = await Promise.all(imgs.map((b) => classifier.predict(b)));
  const ips2 = imgs.length / ((performance.now() - t0) / 1000);
  console.log(`512 concurrent predict() calls (micro-batched) incl. decode: ${ips2.toFixed(0)} images/s, median latency ${pct(res.map((r) => r.latencyMs), 50).toFixed(0)} ms`);
  summary.concurrentPredictImagesPerSec = Math.round(ips2);
}
classifier.dispose();

// The same model in a pool of worker threads (both cores): batches split across the threads.
const threads = Number(process.env.BENCH_INFERENCE_THREADS ?? 2);
const pooled = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)), { workerThreads: threads });
summary.poolThreads = pooled.workerThreads;
for (const b of [64, 256]) {
  const count = Math.min(set.count, 2048);
  await pooled.predictPixelsAsync(set.pixels.subarray(0, b * per), b); // warm-up
  const t0 = performance.now();
  for (let done = 0; done < count; done += b) {
    const k = Math.min(b, count - done);
    await pooled.predictPixelsAsync(set.pixels.subarray(done * per, (done + k) * per), k);
  }
  const ips = count / ((performance.now() - t0) / 1000);
  console.log(`batches of ${b} split across ${pooled.workerThreads} worker threads, forward only: ${ips.toFixed(0)} images/s`);
  summary[`pool${pooled.workerThreads}Batch${b}ImagesPerSec`] = Math.round(ips);
}
{
  const imgs = items.slice(0, 1024).map((i) => i.bytes);
  const t0 = performance.now();
  for (let s = 0; s < imgs.length; s += 256) await pooled.predictBatch(imgs.slice(s, s + 256));
  const ips = imgs.length / ((performance.now() - t0) / 1000);
  console.log(`predictBatch(256 JPEGs) with ${pooled.workerThreads} worker threads, incl. decode: ${ips.toFixed(0)} images/s`);
  summary.poolPredictBatchWithDecodeImagesPerSec = Math.round(ips);
}
pooled.dispose();
console.log(JSON.stringify(summary));
