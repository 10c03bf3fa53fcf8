/**
 * One model replica: network, Adam(W) state and the training data view, living in one thread (the
 * caller's, or a worker thread's). The trainer drives one or several replicas (data parallel:
 * each computes gradients on its shard, the trainer averages them, every replica applies the same
 * update so all stay identical).
 */
import * as tf from '@tensorflow/tfjs';
import { buildModel, type Architecture } from './architectures.js';
import { initBackend, type BackendInfo } from './backend.js';
import { assembleBatch, makeBatch } from './data.js';
import { mulberry32 } from './rng.js';

export interface ReplicaInit { architecture: Architecture; inputSize: number; pixels: Uint8Array; labels: Uint8Array; degraded?: Uint8Array }
export interface ReplicaInfo extends BackendInfo { params: number; weightNames: string[]; weightShapes: number[][]; trainable: boolean[] }
export interface GradResult { loss: number; correct: number; n: number; grads: Float32Array[] }
export interface OptState { t: number; m: Float32Array[]; v: Float32Array[] }
export interface ModelArtifactsLite { modelTopology: object; weightSpecs: tf.io.WeightsManifestEntry[]; weightData: ArrayBuffer }
export type FeatureSource = { pixels: Uint8Array; count: number } | { indices: number[]; augSeed: number | null };
export interface LogitsAndFeatures { logits: Float32Array; features: Float32Array; dim: number }
/** Whatever computes logits and features: a replica, or several sharing the work. */
export type FeatureComputer = Pick<ReplicaApi, 'logitsAndFeatures'>;
export interface StepResult { loss: number; correct: number; n: number }
/**
 * One replica's share of a training step: set indices, whether to augment them, and the seed of
 * everything drawn for them (the augmentation; the ONNX replica's dropout masks). `pixels`, the
 * network input, comes assembled only when the trainer's thread has nothing else to do (one
 * replica in a worker thread, e.g. on a GPU); otherwise the replica assembles it (batchInput):
 * with one replica per core, augmenting in the trainer's thread as well put three busy threads on
 * two cores, and each step waited for the replica that thread had slowed (docs/performance.md,
 * "Fifth pass"). Either way the input is the same (assembleBatch).
 */
export interface TrainingBatch { indices: number[]; augment: boolean; seed: number; pixels?: Float32Array }


/**
 * What a replica answers: the protocol between the trainer and a replica, in the caller's thread or
 * over a worker thread (replica-client.ts sends these calls, train-worker.ts answers them).
 */
export interface ReplicaApi {
  init(a: ReplicaInit): Promise<ReplicaInfo>;
  getWeights(): Float32Array[];
  setWeights(arrays: Float32Array[]): void;
  setWeightsFromArtifacts(weightData: ArrayBuffer, specs: tf.io.WeightsManifestEntry[]): void;
  getOptState(): OptState;
  setOptState(s: OptState): void;
  computeGrads(batch: TrainingBatch): Promise<GradResult>;
  applyGrads(grads: Float32Array[], lr: number, weightDecay: number): void;
  step(batch: TrainingBatch, lr: number, weightDecay: number): Promise<StepResult>;
  logitsAndFeatures(source: FeatureSource, flip: boolean): Promise<LogitsAndFeatures>;
  exportArtifacts(): Promise<ModelArtifactsLite>;
  memory(): { numTensors: number; numBytes: number };
}

/** Adam(W) constants, shared by both engines. */
export const ADAM = { B1: 0.9, B2: 0.999, EPS: 1e-7 } as const;
const { B1, B2, EPS } = ADAM;
const PREDICT_BATCH = 256;

export class ReplicaCore implements ReplicaApi {
  protected model!: tf.LayersModel;
  private trainable: tf.Variable[] = [];
  private m: tf.Variable[] = [];
  private v: tf.Variable[] = [];
  private decay: boolean[] = [];
  private t = 0;
  protected pixels!: Uint8Array;
  protected labels!: Uint8Array;
  protected degraded?: Uint8Array;
  protected size = 0;
  private featureModel: tf.LayersModel | null = null;

  async init(a: ReplicaInit): Promise<ReplicaInfo> {
    const info = await initBackend();
    this.model = buildModel(a.architecture, a.inputSize);
    this.size = a.inputSize;
    this.pixels = a.pixels;
    this.labels = a.labels;
    this.degraded = a.degraded;
    const tws = this.model.trainableWeights;
    this.trainable = tws.map((w) => w.read() as tf.Variable);
    this.decay = tws.map((w) => /kernel$/.test(w.originalName));
    this.initOptimizerState();
    const all = this.model.weights;
    return {
      ...info,
      params: this.model.countParams(),
      weightNames: all.map((w) => w.originalName),
      weightShapes: all.map((w) => w.shape as number[]),
      trainable: all.map((w) => w.trainable),
    };
  }

  /** Adam's moments as TF.js variables, zero. (A subclass that updates weights elsewhere keeps its own.) */
  protected initOptimizerState(): void {
    this.m = this.trainable.map((v) => tf.variable(tf.zerosLike(v), false));
    this.v = this.trainable.map((v) => tf.variable(tf.zerosLike(v), false));
  }

  getWeights(): Float32Array[] {
    return this.model.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array));
  }

  setWeights(arrays: Float32Array[]): void {
    const ws = this.model.weights;
    if (arrays.length !== ws.length) throw new Error(`setWeights: expected ${ws.length} arrays, got ${arrays.length}`);
    const ts = arrays.map((a, i) => tf.tensor(a, ws[i].shape as number[]));
    this.model.setWeights(ts);
    ts.forEach((t) => t.dispose());
  }

  /** Load the weights of a saved model (a bundle's artifacts), matched by weight name. */
  setWeightsFromArtifacts(weightData: ArrayBuffer, specs: tf.io.WeightsManifestEntry[]): void {
    const named = tf.io.decodeWeights(weightData, specs);
    const ws = this.model.weights;
    const missing = ws.filter((w) => !named[w.originalName]).map((w) => w.originalName);
    if (missing.length) throw new Error(`the bundle lacks weights ${missing.join(', ')} of this architecture`);
    this.model.setWeights(ws.map((w) => named[w.originalName]));
    tf.dispose(Object.values(named));
  }

  getOptState(): OptState {
    return { t: this.t, m: this.m.map((x) => Float32Array.from(x.dataSync() as Float32Array)), v: this.v.map((x) => Float32Array.from(x.dataSync() as Float32Array)) };
  }

  setOptState(s: OptState): void {
    this.t = s.t;
    tf.tidy(() => {
      s.m.forEach((a, i) => this.m[i].assign(tf.tensor(a, this.m[i].shape)));
      s.v.forEach((a, i) => this.v[i].assign(tf.tensor(a, this.v[i].shape)));
    });
  }

  /** The network input of a training batch: as it came, or assembled here. */
  protected batchInput(batch: TrainingBatch): Float32Array {
    return batch.pixels ?? assembleBatch({ pixels: this.pixels, size: this.size, degraded: this.degraded }, batch);
  }

  private lossAndGrads(batch: TrainingBatch): { loss: tf.Scalar; logits: tf.Tensor; grads: tf.Tensor[] } {
    const { indices } = batch, n = indices.length, pixels = this.batchInput(batch);
    const ys = Float32Array.from(indices, (idx) => this.labels[idx]);
    return tf.tidy(() => {
      const x = tf.tensor4d(pixels, [n, this.size, this.size, 3]);
      const y = tf.tensor2d(ys, [n, 1]);
      let logits: tf.Tensor | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const out = this.model.apply(x, { training: true }) as tf.Tensor;
        logits = tf.keep(out);
        return tf.losses.sigmoidCrossEntropy(y, out) as tf.Scalar;
      }, this.trainable);
      const correct = tf.keep(tf.sum(tf.equal(tf.greater(logits!, 0).cast('float32'), y).cast('float32')));
      const gradList = this.trainable.map((v) => grads[v.name]);
      (logits as unknown as tf.Tensor).dispose();
      return { loss: value, logits: correct, grads: gradList };
    });
  }

  async computeGrads(batch: TrainingBatch): Promise<GradResult> {
    const { loss, logits: correct, grads } = this.lossAndGrads(batch);
    const out: GradResult = {
      loss: loss.dataSync()[0], correct: correct.dataSync()[0], n: batch.indices.length,
      grads: grads.map((g) => Float32Array.from(g.dataSync() as Float32Array)),
    };
    tf.dispose([loss, correct, ...grads]);
    return out;
  }

  private applyGradTensors(grads: tf.Tensor[], lr: number, weightDecay: number): void {
    this.t++;
    const bc1 = 1 - B1 ** this.t, bc2 = 1 - B2 ** this.t;
    tf.tidy(() => {
      for (let i = 0; i < this.trainable.length; i++) {
        const g = grads[i];
        const m = this.m[i].mul(B1).add(g.mul(1 - B1));
        const v = this.v[i].mul(B2).add(g.square().mul(1 - B2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        let step = m.div(bc1).div(v.div(bc2).sqrt().add(EPS)).mul(lr);
        if (this.decay[i] && weightDecay > 0) step = step.add(this.trainable[i].mul(lr * weightDecay));
        this.trainable[i].assign(this.trainable[i].sub(step));
      }
    });
  }

  applyGrads(grads: Float32Array[], lr: number, weightDecay: number): void {
    const ts = grads.map((g, i) => tf.tensor(g, this.trainable[i].shape));
    this.applyGradTensors(ts, lr, weightDecay);
    tf.dispose(ts);
  }

  /** Gradients and update in one go (single replica: no copies of the gradients). */
  async step(batch: TrainingBatch, lr: number, weightDecay: number): Promise<StepResult> {
    const { loss, logits: correct, grads } = this.lossAndGrads(batch);
    this.applyGradTensors(grads, lr, weightDecay);
    const out = { loss: loss.dataSync()[0], correct: correct.dataSync()[0], n: batch.indices.length };
    tf.dispose([loss, correct, ...grads]);
    return out;
  }

  /**
   * Logits and penultimate-layer features (the global average pool) of raw S x S x 3 uint8 images,
   * or of set images (`indices`) with an optional augmentation seed; `flip` averages the logit of
   * each image with that of its mirror image.
   */
  async logitsAndFeatures(source: FeatureSource, flip: boolean): Promise<LogitsAndFeatures> {
    const S = this.size, per = S * S * 3;
    const count = 'pixels' in source ? source.count : source.indices.length;
    const rand = 'indices' in source && source.augSeed !== null ? mulberry32(source.augSeed) : null;
    const dim = this.featureDim();
    const logits = new Float32Array(count), features = new Float32Array(count * dim);
    for (let s = 0; s < count; s += PREDICT_BATCH) {
      const n = Math.min(PREDICT_BATCH, count - s);
      const xs = 'pixels' in source
        ? makeBatch(source.pixels.subarray(s * per, (s + n) * per), S, Array.from({ length: n }, (_, i) => i), null)
        : makeBatch(this.pixels, S, source.indices.slice(s, s + n), rand, this.degraded);
      const out = await this.forwardWithFeatures(xs, n, flip);
      features.set(out.features, s * dim);
      logits.set(out.logits, s);
    }
    return { logits, features, dim };
  }

  private featureModelOf(): tf.LayersModel {
    this.featureModel ??= tf.model({ inputs: this.model.inputs, outputs: [this.model.getLayer('gap').output as tf.SymbolicTensor, this.model.outputs[0]] });
    return this.featureModel;
  }

  /** Width of the global average pool's output. */
  protected featureDim(): number {
    return this.featureModelOf().outputs[0].shape[1] as number;
  }

  /** Inference-mode logits (averaged with the mirror image's when `flip`) and features of n NHWC inputs. */
  protected async forwardWithFeatures(xs: Float32Array, n: number, flip: boolean): Promise<{ logits: Float32Array; features: Float32Array }> {
    const S = this.size, featureModel = this.featureModelOf();
    // tidy returns the tensors, not their data: tidy walks every element of a returned array
    // looking for tensors (about 1.5 s for 590k features).
    const [f, l] = tf.tidy(() => {
      const x = tf.tensor4d(xs, [n, S, S, 3]);
      const [feat, logit] = featureModel.predict(x) as tf.Tensor[];
      const lg = flip ? tf.add(logit, (this.model.predict(tf.reverse(x, 2)) as tf.Tensor)).div(2) : logit;
      return [feat, lg];
    });
    const out = { features: f.dataSync() as Float32Array, logits: l.dataSync() as Float32Array };
    tf.dispose([f, l]);
    return out;
  }

  async exportArtifacts(): Promise<ModelArtifactsLite> {
    let saved: tf.io.ModelArtifacts | null = null;
    await this.model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const a = saved as unknown as tf.io.ModelArtifacts;
    const data = a.weightData as ArrayBuffer | ArrayBuffer[];
    const weightData = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
    return { modelTopology: a.modelTopology as object, weightSpecs: a.weightSpecs ?? [], weightData };
  }

  memory(): { numTensors: number; numBytes: number } {
    const m = tf.memory();
    return { numTensors: m.numTensors, numBytes: m.numBytes };
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
    this.featureModel = null;
    this.model?.dispose();
  }
}
