/**
 * A replica that trains on onnxruntime-node's native CPU kernels (onnx-training.ts builds the
 * graphs). The TF.js model stays the definition of the network: it initialises the weights and,
 * once the current weights are copied back into it, saves the artifacts. The training steps, the
 * per-epoch validation and the serving fit's logits and features run here, on the training and
 * evaluation graphs; the Adam(W) update is the TF.js replica's arithmetic on Float32Arrays.
 */
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { writeMirrored } from './data.js';
import { cpuSessionOptions, loadOrt, nchwcBlockSize, type OrtModule } from './onnx-engine.js';
import {
  batchMeanOutput, batchVarianceOutput, chainGraph, EVAL_FEATURES, gradOutput, trainableChain, weightInput,
  TRAIN_IMAGE, TRAIN_LABEL, TRAIN_LOGIT, TRAIN_LOSS, TRAIN_MASK, type TrainableChain,
} from './onnx-training.js';
import {
  ADAM, ReplicaCore, type GradResult, type ModelArtifactsLite,
  type OptState, type ReplicaInfo, type ReplicaInit, type StepResult, type TrainingBatch,
} from './replica.js';
import { mixSeed, mulberry32 } from './rng.js';
import { onnxTrainingDevice } from './training-runtime.js';

interface BatchNormStats { layer: number; movingMean: number; movingVariance: number; momentum: number }

export class OnnxReplicaCore extends ReplicaCore {
  private ort!: OrtModule;
  private chain!: TrainableChain;
  private shapes: number[][] = [];
  /** Every model weight (model.weights order): the current values while training. */
  private weights: Float32Array[] = [];
  private weightTensors: OrtTensor[] = [];
  /** The TF.js model holds older weights than `weights`. */
  private tfjsBehind = false;
  private trainableIdx: number[] = [];
  private decays: boolean[] = [];
  private adamM: Float32Array[] = [];
  private adamV: Float32Array[] = [];
  private adamSteps = 0;
  private batchNorms: BatchNormStats[] = [];
  private dropoutRate = 0;
  private trainSession!: InferenceSession;
  private evalSession!: InferenceSession;

  /** @param threads onnxruntime's intra-op threads; @param replicas how many replicas train together (the device string says). */
  constructor(private readonly threads: number, private readonly replicas = 1) {
    super();
  }

  override async init(a: ReplicaInit): Promise<ReplicaInfo> {
    const info = await super.init(a);
    const ort = await loadOrt();
    if (!ort) throw new Error('onnxruntime-node is not installed or its native library does not load');
    const chain = trainableChain(this.model);
    if (!chain) throw new Error(`the ${a.architecture} network cannot train on onnxruntime (not a chain of conv, batch norm, ReLU, pooling and dense layers)`);
    this.ort = ort;
    this.chain = chain;
    this.shapes = info.weightShapes;
    this.trainableIdx = info.trainable.flatMap((t, i) => (t ? [i] : []));
    this.decays = this.trainableIdx.map((i) => /kernel$/.test(info.weightNames[i]));
    this.adamM = this.trainableIdx.map((i) => new Float32Array(this.shapeSize(i)));
    this.adamV = this.trainableIdx.map((i) => new Float32Array(this.shapeSize(i)));
    chain.layers.forEach((l, layer) => {
      if (l.kind === 'batchNorm') this.batchNorms.push({ layer, movingMean: l.movingMean, movingVariance: l.movingVariance, momentum: l.momentum });
      if (l.kind === 'dropout') this.dropoutRate = l.rate;
    });
    // 'extended', not 'all': the rewrites 'all' adds changed the gradients by up to 3% (relative)
    // against TF.js and ran slower here. The blocked (NCHWc) convolutions are in the graphs
    // themselves, where this CPU has them: 'all' applies them only to constant weights.
    const options = cpuSessionOptions('extended', this.threads);
    const block = await nchwcBlockSize();
    this.trainSession = await ort.InferenceSession.create(chainGraph(chain, this.shapes, info.trainable, 'train', block), options);
    this.evalSession = await ort.InferenceSession.create(chainGraph(chain, this.shapes, info.trainable, 'eval', block), options);
    this.useWeights(super.getWeights());
    return { ...info, backend: 'onnxruntime', device: onnxTrainingDevice(this.threads, this.replicas) };
  }

  /** Adam's moments are the Float32Arrays above, made in init(); no TF.js variables. */
  protected override initOptimizerState(): void {}

  private shapeSize(i: number): number {
    return this.shapes[i].reduce((p, d) => p * d, 1);
  }

  private useWeights(arrays: Float32Array[]): void {
    if (arrays.length !== this.shapes.length) throw new Error(`setWeights: expected ${this.shapes.length} arrays, got ${arrays.length}`);
    this.weights = arrays.map((a) => Float32Array.from(a));
    // The tensors wrap the arrays: updates in place reach the next run without new tensors.
    this.weightTensors = this.weights.map((w, i) => new this.ort.Tensor('float32', w, this.shapes[i]));
  }

  /** Copies the current weights into the TF.js model before it computes anything. */
  private syncTfjs(): void {
    if (!this.tfjsBehind) return;
    super.setWeights(this.weights);
    this.tfjsBehind = false;
  }

  private weightFeeds(): Record<string, OrtTensor> {
    const feeds: Record<string, OrtTensor> = {};
    this.weightTensors.forEach((t, i) => { feeds[weightInput(i)] = t; });
    return feeds;
  }

  override getWeights(): Float32Array[] {
    return this.weights.map((w) => Float32Array.from(w));
  }

  override setWeights(arrays: Float32Array[]): void {
    this.useWeights(arrays);
    this.tfjsBehind = true;
  }

  override setWeightsFromArtifacts(weightData: ArrayBuffer, specs: Parameters<ReplicaCore['setWeightsFromArtifacts']>[1]): void {
    super.setWeightsFromArtifacts(weightData, specs);
    this.useWeights(super.getWeights());
    this.tfjsBehind = false;
  }

  override getOptState(): OptState {
    return { t: this.adamSteps, m: this.adamM.map((x) => Float32Array.from(x)), v: this.adamV.map((x) => Float32Array.from(x)) };
  }

  override setOptState(s: OptState): void {
    this.adamSteps = s.t;
    this.adamM = s.m.map((x) => Float32Array.from(x));
    this.adamV = s.v.map((x) => Float32Array.from(x));
  }

  private async runTrainingStep(batch: TrainingBatch): Promise<GradResult> {
    const { indices, seed } = batch, n = indices.length, S = this.size, T = this.ort.Tensor;
    const pixels = this.batchInput(batch);
    const ys = Float32Array.from(indices, (i) => this.labels[i]);
    const feeds = this.weightFeeds();
    feeds[TRAIN_IMAGE] = new T('float32', pixels, [n, S, S, 3]);
    feeds[TRAIN_LABEL] = new T('float32', ys, [n, 1]);
    if (this.dropoutRate > 0) {
      const rand = mulberry32(mixSeed(seed, 0xd0));
      const keep = 1 / (1 - this.dropoutRate);
      const mask = Float32Array.from({ length: n * this.chain.featureDim }, () => (rand() < this.dropoutRate ? 0 : keep));
      feeds[TRAIN_MASK] = new T('float32', mask, [n, this.chain.featureDim]);
    }
    const out = await this.trainSession.run(feeds);
    // The batch norms' moving statistics, as the TF.js layer updates them: moving -= (moving - batch) * (1 - momentum).
    for (const bn of this.batchNorms) {
      for (const [w, name] of [[bn.movingMean, batchMeanOutput(bn.layer)], [bn.movingVariance, batchVarianceOutput(bn.layer)]] as const) {
        const moving = this.weights[w], batch = out[name].data as Float32Array, f = 1 - bn.momentum;
        for (let c = 0; c < moving.length; c++) moving[c] -= (moving[c] - batch[c]) * f;
      }
    }
    this.tfjsBehind = true;
    const logits = out[TRAIN_LOGIT].data as Float32Array;
    let correct = 0;
    for (let i = 0; i < n; i++) if ((logits[i] > 0 ? 1 : 0) === ys[i]) correct++;
    return { loss: (out[TRAIN_LOSS].data as Float32Array)[0], correct, n, grads: this.trainableIdx.map((i) => out[gradOutput(i)].data as Float32Array) };
  }

  override computeGrads(batch: TrainingBatch): Promise<GradResult> {
    return this.runTrainingStep(batch);
  }

  override applyGrads(grads: Float32Array[], lr: number, weightDecay: number): void {
    const { B1, B2, EPS } = ADAM;
    this.adamSteps++;
    // w -= lr * m^ / (sqrt(v^) + eps) + w * lr * decay, with m^ = m / (1 - B1^t), v^ = v / (1 - B2^t);
    // the bias corrections as factors (two divisions fewer per weight: 1.6x faster; m and v are
    // rounded to float32 as stored, so the update reads the values the next step will).
    const stepScale = lr / (1 - B1 ** this.adamSteps), varianceScale = 1 / (1 - B2 ** this.adamSteps);
    this.trainableIdx.forEach((wi, i) => {
      const w = this.weights[wi], g = grads[i], m = this.adamM[i], v = this.adamV[i];
      const wd = this.decays[i] ? lr * weightDecay : 0;
      for (let k = 0; k < w.length; k++) {
        const gk = g[k];
        const mk = Math.fround(m[k] * B1 + gk * (1 - B1)), vk = Math.fround(v[k] * B2 + gk * gk * (1 - B2));
        m[k] = mk; v[k] = vk;
        const wk = w[k];
        w[k] = wk - ((mk * stepScale) / (Math.sqrt(vk * varianceScale) + EPS) + wk * wd);
      }
    });
    this.tfjsBehind = true;
  }

  override async step(batch: TrainingBatch, lr: number, weightDecay: number): Promise<StepResult> {
    const { loss, correct, n, grads } = await this.runTrainingStep(batch);
    this.applyGrads(grads, lr, weightDecay);
    return { loss, correct, n };
  }

  protected override featureDim(): number {
    return this.chain.featureDim;
  }

  /** The evaluation graph on the current weights; with `flip`, the mirror images in the same run. */
  protected override async forwardWithFeatures(xs: Float32Array, n: number, flip: boolean): Promise<{ logits: Float32Array; features: Float32Array }> {
    const S = this.size, dim = this.chain.featureDim;
    const input = flip ? new Float32Array(2 * xs.length) : xs;
    if (flip) {
      input.set(xs);
      const per = S * S * 3;
      for (let i = 0; i < n; i++) writeMirrored(xs, i * per, S, input, xs.length + i * per);
    }
    const feeds = this.weightFeeds();
    feeds[TRAIN_IMAGE] = new this.ort.Tensor('float32', input, [flip ? 2 * n : n, S, S, 3]);
    const out = await this.evalSession.run(feeds);
    const all = out[TRAIN_LOGIT].data as Float32Array;
    const logits = flip ? Float32Array.from({ length: n }, (_, i) => (all[i] + all[n + i]) / 2) : all;
    return { logits, features: (out[EVAL_FEATURES].data as Float32Array).subarray(0, n * dim) };
  }

  override exportArtifacts(): Promise<ModelArtifactsLite> {
    this.syncTfjs();
    return super.exportArtifacts();
  }

  override dispose(): void {
    void this.trainSession?.release();
    void this.evalSession?.release();
    super.dispose();
  }
}
