/**
 * Inference: load a bundle once, predict one image or a batch; concurrent predict() calls are
 * micro-batched into one forward pass. Explanations by occlusion.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendInfo } from './backend.js';
import { decodeBundle, type BundleMeta } from './bundle.js';
import { decodeImage, writeNormalised } from './data.js';
import { decide, sigmoid, type Decision } from './evaluation.js';
import { occlusionHeatmap } from './explain.js';
import { BundleFormatError } from './errors.js';

export interface PredictionResult {
  pFemale: number;
  pMale: number;
  decision: Decision;
  /** The INCONCLUSIVE band on P(male): FEMALE if pMale <= female, MALE if pMale >= male. */
  thresholds: { female: number; male: number };
  /** Wall time of this call (decode + queue + forward pass), milliseconds. */
  latencyMs: number;
  backend: string;
  device: string;
}

export interface ClassifierOptions {
  /** Largest micro-batch (default 64). */
  maxBatch?: number;
}

export interface Classifier {
  readonly meta: BundleMeta;
  readonly sha256: string;
  readonly backend: BackendInfo;
  predict(imageBytes: Uint8Array): Promise<PredictionResult>;
  predictBatch(images: Uint8Array[]): Promise<PredictionResult[]>;
  /** Predict already-decoded S x S x 3 uint8 images (no sharp), for benchmarks and evaluation. */
  predictPixels(pixels: Uint8Array, count: number): Float64Array;
  explain(imageBytes: Uint8Array): Promise<{ png: Buffer; method: string; prediction: PredictionResult }>;
  dispose(): void;
}

interface Pending { px: Uint8Array; resolve: (p: number) => void; reject: (e: Error) => void }

class LoadedClassifier implements Classifier {
  private queue: Pending[] = [];
  private scheduled = false;
  private disposed = false;
  constructor(readonly meta: BundleMeta, readonly sha256: string, readonly backend: BackendInfo, private model: tf.LayersModel, private maxBatch: number) {}

  private get size(): number { return this.meta.inputSize; }

  /** P(male) for decoded images. */
  predictPixels(pixels: Uint8Array, count: number): Float64Array {
    if (this.disposed) throw new Error('classifier was disposed');
    const S = this.size, per = S * S * 3;
    const out = new Float64Array(count);
    const T = this.meta.calibration?.temperature ?? 1;
    for (let s = 0; s < count; s += 256) {
      const n = Math.min(256, count - s);
      const xs = new Float32Array(n * per);
      for (let i = 0; i < n; i++) writeNormalised(pixels, (s + i) * per, S, xs, i * per, null);
      const logits = tf.tidy(() => (this.model.predict(tf.tensor4d(xs, [n, S, S, 3])) as tf.Tensor).dataSync());
      for (let i = 0; i < n; i++) out[s + i] = sigmoid(logits[i] / T);
    }
    return out;
  }

  private flush = () => {
    this.scheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      const per = this.size * this.size * 3;
      const px = new Uint8Array(batch.length * per);
      batch.forEach((p, i) => px.set(p.px, i * per));
      try {
        const probs = this.predictPixels(px, batch.length);
        batch.forEach((p, i) => p.resolve(probs[i]));
      } catch (e) {
        batch.forEach((p) => p.reject(e instanceof Error ? e : new Error(String(e))));
      }
    }
  };

  private enqueue(px: Uint8Array): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ px, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) { this.scheduled = true; setImmediate(this.flush); }
    });
  }

  private result(pMale: number, t0: number): PredictionResult {
    const t = this.meta.thresholds;
    return {
      pFemale: 1 - pMale, pMale, decision: decide(pMale, t), thresholds: { female: t.female, male: t.male },
      latencyMs: performance.now() - t0, backend: this.backend.backend, device: this.backend.device,
    };
  }

  async predict(imageBytes: Uint8Array): Promise<PredictionResult> {
    const t0 = performance.now();
    const px = await decodeImage(imageBytes, this.size);
    const p = await this.enqueue(px);
    return this.result(p, t0);
  }

  async predictBatch(images: Uint8Array[]): Promise<PredictionResult[]> {
    const t0 = performance.now();
    const decoded = await Promise.all(images.map((b) => decodeImage(b, this.size)));
    const per = this.size * this.size * 3;
    const px = new Uint8Array(decoded.length * per);
    decoded.forEach((d, i) => px.set(d, i * per));
    const probs = this.predictPixels(px, decoded.length);
    return Array.from(probs, (p) => this.result(p, t0));
  }

  async explain(imageBytes: Uint8Array): Promise<{ png: Buffer; method: string; prediction: PredictionResult }> {
    const t0 = performance.now();
    const px = await decodeImage(imageBytes, this.size);
    const pMale = this.predictPixels(px, 1)[0];
    const prediction = this.result(pMale, t0);
    const png = await occlusionHeatmap(px, this.size, pMale, (batch, n) => this.predictPixels(batch, n));
    return { png, method: 'occlusion (grey 1/4-size patch, stride 1/8; red = evidence for the predicted class)', prediction };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }
}

/** Load a bundle (verifies format version and checksum) into a ready classifier. */
export async function loadClassifier(bundleBytes: Uint8Array, opts: ClassifierOptions = {}): Promise<Classifier> {
  const { meta, artifacts, sha256 } = decodeBundle(bundleBytes);
  const backend = await initBackend();
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    throw new BundleFormatError(`model bundle could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Warm up (first call compiles kernels / allocates).
  tf.tidy(() => (model.predict(tf.zeros([1, meta.inputSize, meta.inputSize, 3])) as tf.Tensor).dataSync());
  return new LoadedClassifier(meta, sha256, backend, model, opts.maxBatch ?? 64);
}
