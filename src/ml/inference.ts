/**
 * Inference: load a bundle once, predict one image or a batch; concurrent predict() calls are
 * micro-batched into one forward pass. Explanations by occlusion.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendInfo } from './backend.js';
import { decodeBundle, type BundleMeta } from './bundle.js';
import { decodeImage, decodeImageOffThread, writeMirrored, writeNormalised } from './data.js';
import { decide, sigmoid, type Decision } from './evaluation.js';
import { guardScores, type GuardParams } from './guard.js';
import { occlusionHeatmap } from './explain.js';
import { BundleFormatError, ImageDecodeError, InferenceUnavailableError } from './errors.js';
import { foldChain, foldPlan, type FoldedModel } from './fold.js';
import { exportOnnx } from './onnx-export.js';
import { createOnnxEngine, runtimeChoice, type InferenceRuntimeChoice, type OnnxEngine } from './onnx-engine.js';

export interface PredictionResult {
  pFemale: number;
  pMale: number;
  /** NOT_AN_EYE when the guard refused the input; otherwise from the INCONCLUSIVE band. */
  decision: Decision;
  /** The out-of-distribution guard's score (higher = more eye-like) and cut; null without a guard. */
  guard: { score: number; threshold: number } | null;
  /** The INCONCLUSIVE band on P(male): FEMALE if pMale <= female, MALE if pMale >= male. */
  thresholds: { female: number; male: number };
  /** Wall time of this call (decode + queue + forward pass), milliseconds. */
  latencyMs: number;
  /** What computed it: 'onnxruntime' or the TF.js backend ('wasm', 'tensorflow', 'cpu'). */
  backend: string;
  device: string;
}

export interface ClassifierOptions {
  /** Largest micro-batch (default 64). */
  maxBatch?: number;
  /** Fold batch norms into convolutions for inference (default true; falls back automatically). */
  foldBatchNorm?: boolean;
  /**
   * Worker threads that also hold the model; batches are split across them (and predict() work
   * leaves the event loop). Default 0 = everything in this thread. Needs the compiled build (dist).
   */
  workerThreads?: number;
  /**
   * Which runtime serves: 'onnxruntime' (onnxruntime-node, when installed and the exported graph
   * matches TF.js on a probe batch), 'tfjs', or 'auto' (the first, else the second). Default:
   * INFERENCE_RUNTIME, else auto. Explanations and the synchronous pixel calls always use TF.js.
   */
  runtime?: InferenceRuntimeChoice;
  /** onnxruntime's intra-op threads (default: its own choice, one per core). */
  onnxThreads?: number;
}

/** Scores of decoded images: P(male), and the guard score of each (null when the model has no guard). */
export interface PixelScores { pMale: Float64Array; guard: Float64Array | null }

/** An image decoded at the model's input size, and how long that took. */
export interface DecodedInput { pixels: Uint8Array; decodeMs: number }

export interface Classifier {
  readonly meta: BundleMeta;
  /** The out-of-distribution guard (method and threshold), or null: format-1 bundles have none. */
  readonly guard: { method: string; threshold: number } | null;
  readonly sha256: string;
  readonly backend: BackendInfo;
  /** 'folded' (batch norms folded into convolutions) or 'layers'. */
  readonly engine: string;
  /** The runtime that serves predict/predictBatch/scorePixelsAsync, e.g. "onnxruntime-node 1.30.0" or "tfjs wasm". */
  readonly runtime: string;
  predict(imageBytes: Uint8Array): Promise<PredictionResult>;
  /** Decode one image at the input size (throws ImageDecodeError); with predictDecoded, the two halves of predict(). */
  decode(imageBytes: Uint8Array): Promise<DecodedInput>;
  /** Predict a decoded image (micro-batched like predict); latencyMs includes its decodeMs. */
  predictDecoded(input: DecodedInput): Promise<PredictionResult>;
  predictBatch(images: Uint8Array[]): Promise<PredictionResult[]>;
  /** P(male) of already-decoded S x S x 3 uint8 images (no sharp), in this thread. */
  predictPixels(pixels: Uint8Array, count: number): Float64Array;
  /** P(male) and guard scores of decoded images, in this thread. */
  scorePixels(pixels: Uint8Array, count: number): PixelScores;
  /** Same, split across the worker threads when there are any. */
  scorePixelsAsync(pixels: Uint8Array, count: number): Promise<PixelScores>;
  /** P(male) only, split across the worker threads when there are any. */
  predictPixelsAsync(pixels: Uint8Array, count: number): Promise<Float64Array>;
  /** The decision for a P(male) and guard score under this model's band and guard. */
  decisionFor(pMale: number, guardScore: number | null): Decision;
  /** Number of inference worker threads in use. */
  readonly workerThreads: number;
  explain(imageBytes: Uint8Array): Promise<{ png: Buffer; method: string; prediction: PredictionResult }>;
  dispose(): void;
}

interface PoolSlot {
  w: Worker;
  pending: Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>;
}

/**
 * What the pool's threads answer. A failed decode carries its error's code, so that a bad upload
 * stays an ImageDecodeError on this side.
 */
interface PoolAnswer { id: number; result?: unknown; error?: string; code?: string }

/**
 * Worker threads that run forward passes off the caller's event loop. A thread that dies (crash,
 * out of memory) fails its requests in hand with InferenceUnavailableError, which callers may retry,
 * and is replaced; while none is alive, the classifier computes in its own thread.
 */
export class InferencePool {
  private slots: PoolSlot[] = [];
  private nextId = 1;
  private closed = false;
  private constructor(private readonly entryUrl: URL, private readonly workerData: unknown, private readonly target: number) {}

  static entry(): URL | null {
    const url = new URL('./inference-worker.js', import.meta.url);
    try { return existsSync(fileURLToPath(url)) ? url : null; } catch { return null; }
  }

  static async start(n: number, bundle: Uint8Array, foldBatchNorm?: boolean, entry: URL | null = InferencePool.entry(),
    serving: Pick<ClassifierOptions, 'runtime' | 'onnxThreads'> = {}): Promise<InferencePool | null> {
    if (!entry || n <= 0) return null;
    const pool = new InferencePool(entry, { bundle, foldBatchNorm, ...serving }, n);
    try {
      await Promise.all(Array.from({ length: n }, () => pool.spawn()));
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  private spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const w = new Worker(this.entryUrl, { workerData: this.workerData });
      const slot: PoolSlot = { w, pending: new Map() };
      let ready = false;
      w.on('message', (m: PoolAnswer) => {
        if (m.id === 0) {
          if (m.error !== undefined) {
            void w.terminate();
            return reject(new Error(m.error));
          }
          ready = true;
          if (this.closed) void w.terminate();
          else this.slots.push(slot);
          return resolve();
        }
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        if (m.error === undefined) p.resolve(m.result as never);
        else p.reject(m.code === 'IMAGE_DECODE' ? new ImageDecodeError(m.error) : new Error(m.error));
      });
      // 'error' is followed by 'exit'; the exit does the bookkeeping once.
      let failure: Error | undefined;
      w.on('error', (e) => (failure = e));
      w.on('exit', (code) => {
        if (!ready) return reject(failure ?? new Error(`inference worker exited with code ${code} while loading`));
        this.slots = this.slots.filter((s) => s !== slot);
        const why = failure ? failure.message : `exit code ${code}`;
        for (const p of slot.pending.values()) p.reject(new InferenceUnavailableError(`an inference worker thread stopped (${why}); try the request again`));
        slot.pending.clear();
        if (!this.closed) void this.spawn().catch(() => undefined);
      });
    });
  }

  /** Live worker threads. */
  get size(): number { return this.slots.length; }
  /** Worker threads this pool keeps running. */
  get capacity(): number { return this.target; }

  /** Scores of `count` decoded images. */
  run(pixels: Uint8Array, count: number): Promise<PixelScores> {
    const copy = new Uint8Array(pixels); // a copy (a Buffer's slice() is a view) that can be handed over
    return this.send<PixelScores>({ pixels: copy, count }, [copy]);
  }

  /** One image decoded at `size` (decodeImage, in a pool thread: the wasm JPEG decoder off the caller's thread). */
  decode(bytes: Uint8Array, size: number): Promise<Uint8Array> {
    const copy = new Uint8Array(bytes);
    return this.send<Uint8Array>({ decode: copy, size }, [copy]);
  }

  /** Scores of encoded images, decoded at `size` and scored in one pool thread (the first decode failure rejects). */
  decodeAndScore(images: Uint8Array[], size: number): Promise<PixelScores> {
    const copies = images.map((b) => new Uint8Array(b));
    return this.send<PixelScores>({ images: copies, size }, copies);
  }

  /** Posts a request to the least busy thread, handing over the memory of `transfer`. */
  private send<T>(message: object, transfer: Uint8Array[]): Promise<T> {
    if (this.slots.length === 0) return Promise.reject(new InferenceUnavailableError('no inference worker thread is running; try the request again'));
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.w.postMessage({ id, ...message }, transfer.map((t) => t.buffer as ArrayBuffer));
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.slots) void s.w.terminate();
    this.slots = [];
  }
}

interface Pending { px: Uint8Array; resolve: (p: { pMale: number; guard: number | null }) => void; reject: (e: Error) => void }

class LoadedClassifier implements Classifier {
  private queue: Pending[] = [];
  private scheduled = false;
  private disposed = false;
  private featureModel: tf.LayersModel | null = null;
  constructor(readonly meta: BundleMeta, readonly sha256: string, readonly backend: BackendInfo, private model: tf.LayersModel,
    private folded: FoldedModel | null, private maxBatch: number, private pool: InferencePool | null, private guardParams: GuardParams | null,
    private onnx: OnnxEngine | null) {}

  get runtime(): string { return this.onnx ? this.onnx.runtime : `tfjs ${this.backend.backend}`; }
  private get servedBy(): { backend: string; device: string } {
    return this.onnx ? { backend: 'onnxruntime', device: `cpu (${this.onnx.runtime})` } : { backend: this.backend.backend, device: this.backend.device };
  }

  get workerThreads(): number { return this.pool?.capacity ?? 0; }

  get guard(): { method: string; threshold: number } | null {
    return this.guardParams ? { method: this.guardParams.method, threshold: this.guardParams.threshold } : null;
  }

  async scorePixelsAsync(pixels: Uint8Array, count: number): Promise<PixelScores> {
    // No live thread (none configured, or one died and its replacement is loading): compute here.
    if (!this.pool || this.pool.size === 0 || count === 0) return this.onnx ? this.scoreOnnx(pixels, count) : this.scorePixels(pixels, count);
    const per = this.size * this.size * 3;
    const k = Math.min(this.pool.size, Math.ceil(count / 8));
    const chunk = Math.ceil(count / k);
    const parts = await Promise.all(Array.from({ length: k }, (_, i) => {
      const s = i * chunk, n = Math.min(chunk, count - s);
      return this.pool!.run(pixels.subarray(s * per, (s + n) * per), n);
    }));
    const out: PixelScores = { pMale: new Float64Array(count), guard: this.guardParams ? new Float64Array(count) : null };
    parts.forEach((p, i) => { out.pMale.set(p.pMale, i * chunk); if (out.guard && p.guard) out.guard.set(p.guard, i * chunk); });
    return out;
  }

  async predictPixelsAsync(pixels: Uint8Array, count: number): Promise<Float64Array> {
    return (await this.scorePixelsAsync(pixels, count)).pMale;
  }

  /** 'folded' when batch norms were folded into the convolutions, else 'layers'. */
  get engine(): string { return this.folded ? 'folded' : 'layers'; }

  private get size(): number { return this.meta.inputSize; }

  /** P(male) for decoded images. */
  predictPixels(pixels: Uint8Array, count: number): Float64Array {
    return this.scorePixels(pixels, count).pMale;
  }

  /** Logits (flip-averaged when the bundle says so) and, with a guard, the penultimate features. */
  private forward(x: tf.Tensor4D): { logits: Float32Array; features: Float32Array | null } {
    const flip = this.meta.testTimeAugmentation === 'flip';
    const plain = (t: tf.Tensor4D) => (this.folded ? this.folded.forward(t) : (this.model.predict(t) as tf.Tensor));
    let features: Float32Array | null = null;
    const logits = tf.tidy(() => {
      let lg: tf.Tensor;
      if (this.guardParams) {
        let f: tf.Tensor;
        if (this.folded?.forwardWithFeatures) [f, lg] = this.folded.forwardWithFeatures(x);
        else {
          this.featureModel ??= tf.model({ inputs: this.model.inputs, outputs: [this.model.getLayer('gap').output as tf.SymbolicTensor, this.model.outputs[0]] });
          [f, lg] = this.featureModel.predict(x) as tf.Tensor[];
        }
        features = f.dataSync() as Float32Array;
      } else lg = plain(x);
      if (flip) lg = tf.add(lg, plain(tf.reverse(x, 2) as tf.Tensor4D)).div(2);
      return lg.dataSync() as Float32Array;
    });
    return { logits, features };
  }

  scorePixels(pixels: Uint8Array, count: number): PixelScores {
    if (this.disposed) throw new Error('classifier was disposed');
    const S = this.size, per = S * S * 3;
    const out: PixelScores = { pMale: new Float64Array(count), guard: this.guardParams ? new Float64Array(count) : null };
    const T = this.meta.calibration?.temperature ?? 1;
    for (let s = 0; s < count; s += 256) {
      const n = Math.min(256, count - s);
      const xs = new Float32Array(n * per);
      for (let i = 0; i < n; i++) writeNormalised(pixels, (s + i) * per, S, xs, i * per, null);
      const x = tf.tensor4d(xs, [n, S, S, 3]);
      const { logits, features } = this.forward(x);
      x.dispose();
      for (let i = 0; i < n; i++) out.pMale[s + i] = sigmoid(logits[i] / T);
      if (out.guard && features && this.guardParams) out.guard.set(guardScores(this.guardParams, features, n), s);
    }
    return out;
  }

  /** Same as scorePixels, through onnxruntime. */
  private async scoreOnnx(pixels: Uint8Array, count: number): Promise<PixelScores> {
    if (this.disposed) throw new Error('classifier was disposed');
    const S = this.size, per = S * S * 3, flip = this.meta.testTimeAugmentation === 'flip';
    const out: PixelScores = { pMale: new Float64Array(count), guard: this.guardParams ? new Float64Array(count) : null };
    const T = this.meta.calibration?.temperature ?? 1;
    for (let s = 0; s < count; s += 256) {
      const n = Math.min(256, count - s);
      // With flip averaging the batch holds the n images, then their n mirror images.
      const xs = new Float32Array((flip ? 2 : 1) * n * per);
      for (let i = 0; i < n; i++) {
        writeNormalised(pixels, (s + i) * per, S, xs, i * per, null);
        if (flip) writeMirrored(xs, i * per, S, xs, (n + i) * per);
      }
      const { logits, features } = await this.onnx!.run(xs, (flip ? 2 : 1) * n);
      for (let i = 0; i < n; i++) out.pMale[s + i] = sigmoid((flip ? (logits[i] + logits[n + i]) / 2 : logits[i]) / T);
      if (out.guard && features && this.guardParams) out.guard.set(guardScores(this.guardParams, features, n), s);
    }
    return out;
  }

  decisionFor(pMale: number, guardScore: number | null): Decision {
    if (this.guardParams && guardScore !== null && !(guardScore >= this.guardParams.threshold)) return 'NOT_AN_EYE';
    return decide(pMale, this.meta.thresholds);
  }

  private flush = () => {
    this.scheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      const per = this.size * this.size * 3;
      const px = new Uint8Array(batch.length * per);
      batch.forEach((p, i) => px.set(p.px, i * per));
      const deliver = (r: PixelScores) => batch.forEach((p, i) => p.resolve({ pMale: r.pMale[i], guard: r.guard ? r.guard[i] : null }));
      if (this.pool || this.onnx) {
        (this.pool ? this.pool.run(px, batch.length) : this.scoreOnnx(px, batch.length)).then(deliver, (e: Error) => batch.forEach((p) => p.reject(e)));
        continue;
      }
      try {
        deliver(this.scorePixels(px, batch.length));
      } catch (e) {
        batch.forEach((p) => p.reject(e instanceof Error ? e : new Error(String(e))));
      }
    }
  };

  private enqueue(px: Uint8Array): Promise<{ pMale: number; guard: number | null }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ px, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) { this.scheduled = true; setImmediate(this.flush); }
    });
  }

  private result(s: { pMale: number; guard: number | null }, t0: number): PredictionResult {
    const t = this.meta.thresholds;
    return {
      pFemale: 1 - s.pMale, pMale: s.pMale, decision: this.decisionFor(s.pMale, s.guard),
      guard: this.guardParams && s.guard !== null ? { score: s.guard, threshold: this.guardParams.threshold } : null,
      thresholds: { female: t.female, male: t.male },
      latencyMs: performance.now() - t0, ...this.servedBy,
    };
  }

  async predict(imageBytes: Uint8Array): Promise<PredictionResult> {
    return this.predictDecoded(await this.decode(imageBytes));
  }

  async decode(imageBytes: Uint8Array): Promise<DecodedInput> {
    const t0 = performance.now();
    // One upload per API request, decoded off the event loop: in a worker thread of the pool with the
    // wasm JPEG decoder (about 3x less CPU than sharp's), else in libuv's threads with sharp. The wasm
    // decoder on the event loop itself would add about 0.8 ms per request to the API's main thread.
    const pixels = this.pool && this.pool.size > 0 ? await this.pool.decode(imageBytes, this.size) : await decodeImageOffThread(imageBytes, this.size);
    return { pixels, decodeMs: performance.now() - t0 };
  }

  async predictDecoded(input: DecodedInput): Promise<PredictionResult> {
    if (input.pixels.length !== this.size * this.size * 3) throw new Error(`expected ${this.size}x${this.size}x3 pixels, got ${input.pixels.length} values`);
    const t0 = performance.now() - input.decodeMs;
    return this.result(await this.enqueue(input.pixels), t0);
  }

  async predictBatch(images: Uint8Array[]): Promise<PredictionResult[]> {
    const t0 = performance.now();
    const results = (parts: PixelScores[]) =>
      parts.flatMap((scores) => Array.from(scores.pMale, (p, i) => this.result({ pMale: p, guard: scores.guard ? scores.guard[i] : null }, t0)));
    if (this.pool && this.pool.size > 1) {
      // Two or more pool threads: each decodes and scores its share, and the cores all decode.
      const share = Math.ceil(images.length / this.pool.size);
      const parts: Array<Promise<PixelScores>> = [];
      for (let s = 0; s < images.length; s += share) parts.push(this.pool.decodeAndScore(images.slice(s, s + share), this.size));
      return results(await Promise.all(parts));
    }
    // Every decode starts at once (sharp works in libuv's threads); each chunk's forward pass starts
    // as soon as its images are decoded, while the later chunks are still decoding.
    const decodes = images.map((b) => decodeImage(b, this.size));
    for (const d of decodes) d.catch(() => undefined); // the first failure is thrown below; later ones are not unhandled
    const per = this.size * this.size * 3;
    const chunk = Math.max(16, Math.ceil(images.length / 4));
    const scored: Array<Promise<PixelScores>> = [];
    for (let s = 0; s < images.length; s += chunk) {
      const decoded = await Promise.all(decodes.slice(s, s + chunk));
      const px = new Uint8Array(decoded.length * per);
      decoded.forEach((d, i) => px.set(d, i * per));
      const scoring = this.scorePixelsAsync(px, decoded.length);
      scoring.catch(() => undefined);
      scored.push(scoring);
    }
    return results(await Promise.all(scored));
  }

  async explain(imageBytes: Uint8Array): Promise<{ png: Buffer; method: string; prediction: PredictionResult }> {
    const t0 = performance.now();
    const px = await decodeImage(imageBytes, this.size);
    const scores = this.scorePixels(px, 1);
    const pMale = scores.pMale[0];
    const prediction = { ...this.result({ pMale, guard: scores.guard ? scores.guard[0] : null }, t0), backend: this.backend.backend, device: this.backend.device };
    const png = await occlusionHeatmap(px, this.size, pMale, (batch, n) => this.predictPixels(batch, n));
    return { png, method: 'occlusion (grey 1/4-size patch, stride 1/8; red = evidence for the predicted class)', prediction };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool?.close();
    void this.onnx?.release().catch(() => undefined);
    this.folded?.dispose();
    this.model.dispose();
  }
}

/** Load a bundle (verifies format version and checksum) into a ready classifier. */
export async function loadClassifier(bundleBytes: Uint8Array, opts: ClassifierOptions = {}): Promise<Classifier> {
  const { meta, artifacts, sha256, guard } = decodeBundle(bundleBytes);
  const backend = await initBackend();
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    throw new BundleFormatError(`model bundle could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Fold batch norms into the convolutions where the graph allows it; keep it only if it agrees
  // with the layers model on a probe batch.
  let folded = opts.foldBatchNorm === false ? null : foldChain(model);
  if (folded) {
    const f = folded;
    const diff = tf.tidy(() => {
      const x = tf.randomUniform([4, meta.inputSize, meta.inputSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
      return tf.max(tf.abs(tf.sub(f.forward(x), model.predict(x) as tf.Tensor))).dataSync()[0];
    });
    if (!(diff < 1e-3)) { folded.dispose(); folded = null; }
  }
  // Warm up (first call compiles kernels / allocates).
  tf.tidy(() => (model.predict(tf.zeros([1, meta.inputSize, meta.inputSize, 3])) as tf.Tensor).dataSync());
  const onnx = await servingEngine(model, meta, opts);
  // Worker threads serve with the same runtime as this thread: onnxruntime if it serves here (one
  // intra-op thread each unless told otherwise), else TF.js.
  const pool = opts.workerThreads
    ? await InferencePool.start(opts.workerThreads, bundleBytes, opts.foldBatchNorm, undefined, { runtime: onnx ? 'onnxruntime' : 'tfjs', onnxThreads: opts.onnxThreads ?? 1 })
    : null;
  return new LoadedClassifier(meta, sha256, backend, model, folded, opts.maxBatch ?? 64, pool, guard, onnx);
}

/** Largest |difference| in probability allowed between onnxruntime and TF.js on the probe batch. */
export const RUNTIME_AGREEMENT = 1e-4;

/**
 * The onnxruntime engine for this model when the choice allows it, onnxruntime-node loads, the
 * network folds to a chain, and the exported graph agrees with TF.js on a probe batch (logits
 * within RUNTIME_AGREEMENT in probability, features within 1e-3); otherwise null (TF.js serves).
 * A forced 'onnxruntime' that cannot be honoured fails the load.
 */
async function servingEngine(model: tf.LayersModel, meta: BundleMeta, opts: ClassifierOptions): Promise<OnnxEngine | null> {
  const choice = opts.runtime ?? runtimeChoice();
  if (choice === 'tfjs') return null;
  const refuse = (why: string): null => {
    if (choice === 'onnxruntime') throw new InferenceUnavailableError(`INFERENCE_RUNTIME=onnxruntime was requested but ${why}`);
    return null;
  };
  const plan = foldPlan(model);
  if (!plan) return refuse(`the ${meta.architecture} network cannot be exported to ONNX (only chains of conv, pool and dense layers can)`);
  let engine: OnnxEngine | null;
  try {
    engine = await createOnnxEngine(exportOnnx(plan, meta.inputSize), { threads: opts.onnxThreads });
  } catch (e) {
    return refuse(`the exported ONNX graph did not load: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    plan.dispose();
  }
  if (!engine) return refuse('onnxruntime-node is not installed');
  const S = meta.inputSize, n = 8;
  const [xs, reference, refFeatures] = tf.tidy(() => {
    const x = tf.randomUniform([n, S, S, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
    const featureModel = tf.model({ inputs: model.inputs, outputs: [model.getLayer('gap').output as tf.SymbolicTensor, model.outputs[0]] });
    const [f, l] = featureModel.predict(x) as tf.Tensor[];
    return [x.dataSync() as Float32Array, l.dataSync() as Float32Array, f.dataSync() as Float32Array];
  });
  let got: { logits: Float32Array; features: Float32Array | null };
  try {
    got = await engine.run(xs, n);
  } catch (e) {
    await engine.release();
    return refuse(`the exported graph did not run: ${e instanceof Error ? e.message : String(e)}`);
  }
  let worst = 0, worstFeature = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(sigmoid(got.logits[i]) - sigmoid(reference[i])));
  if (got.features) for (let i = 0; i < refFeatures.length; i++) worstFeature = Math.max(worstFeature, Math.abs(got.features[i] - refFeatures[i]) / (1 + Math.abs(refFeatures[i])));
  if (!(worst <= RUNTIME_AGREEMENT) || !(worstFeature <= 1e-3) || !got.features) {
    await engine.release();
    return refuse(`the exported graph disagrees with TF.js on a probe batch (probability ${worst.toExponential(2)}, features ${worstFeature.toExponential(2)})`);
  }
  return engine;
}
