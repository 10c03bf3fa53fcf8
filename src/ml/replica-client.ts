/**
 * The trainer's side of a replica (replica.ts): the same calls as ReplicaApi, each answered
 * asynchronously, by a ReplicaCore in a worker thread (train-worker.ts) or in the caller's thread.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ReplicaApi, ReplicaCore } from './replica.js';
import type { TrainingRuntime } from './training-runtime.js';

/** What a replica computes on: the runtime, and for onnxruntime its intra-op threads and how many replicas train together (default 1). */
export interface ReplicaSpec { runtime: TrainingRuntime; threads: number; replicas?: number }

/** A replica core for `spec`, its runtime loaded on first use (the trainer's thread needs neither). */
export async function newReplicaCore(spec: ReplicaSpec): Promise<ReplicaCore> {
  if (spec.runtime === 'onnxruntime') return new (await import('./replica-onnx.js')).OnnxReplicaCore(spec.threads, spec.replicas);
  return new (await import('./replica.js')).ReplicaCore();
}

export type ReplicaMethod = keyof ReplicaApi;
type Args<M extends ReplicaMethod> = Parameters<ReplicaApi[M]>;
type Result<M extends ReplicaMethod> = Awaited<ReturnType<ReplicaApi[M]>>;

/** A call on the worker-thread protocol: one per ReplicaApi method, with that method's arguments. */
export type ReplicaRequest = { [M in ReplicaMethod]: { id: number; method: M; args: Args<M> } }[ReplicaMethod];
/** The answer to the request with the same id: the method's result, or the error it threw. */
export type ReplicaReply = { id: number; result: unknown; error?: undefined } | { id: number; error: string };

/** ReplicaApi, every method answered asynchronously; close() ends the replica. */
export abstract class ReplicaClient implements Record<ReplicaMethod, (...a: never[]) => Promise<unknown>> {
  protected abstract send<M extends ReplicaMethod>(method: M, args: Args<M>): Promise<Result<M>>;
  abstract close(): Promise<void>;

  init(...a: Args<'init'>) { return this.send('init', a); }
  getWeights() { return this.send('getWeights', []); }
  setWeights(...a: Args<'setWeights'>) { return this.send('setWeights', a); }
  setWeightsFromArtifacts(...a: Args<'setWeightsFromArtifacts'>) { return this.send('setWeightsFromArtifacts', a); }
  getOptState() { return this.send('getOptState', []); }
  setOptState(...a: Args<'setOptState'>) { return this.send('setOptState', a); }
  computeGrads(...a: Args<'computeGrads'>) { return this.send('computeGrads', a); }
  applyGrads(...a: Args<'applyGrads'>) { return this.send('applyGrads', a); }
  step(...a: Args<'step'>) { return this.send('step', a); }
  logitsAndFeatures(...a: Args<'logitsAndFeatures'>) { return this.send('logitsAndFeatures', a); }
  exportArtifacts() { return this.send('exportArtifacts', []); }
  memory() { return this.send('memory', []); }
}

/** Calls a ReplicaCore method by name with its own argument list (the one untyped step of dispatch). */
export function invoke(core: ReplicaApi, method: ReplicaMethod, args: readonly unknown[]): unknown {
  return (core[method] as (...a: unknown[]) => unknown).apply(core, args as unknown[]);
}

function workerEntry(): URL | null {
  const url = new URL('./train-worker.js', import.meta.url);
  try {
    return existsSync(fileURLToPath(url)) ? url : null;
  } catch {
    return null;
  }
}

export function nativeBackendPresent(): boolean {
  const forced = (process.env.TFJS_BACKEND ?? '').toLowerCase();
  if (forced) return ['gpu', 'node', 'tensorflow', 'tensorflow-gpu'].includes(forced);
  const req = createRequire(import.meta.url);
  for (const p of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try { req.resolve(p); return true; } catch { /* absent */ }
  }
  return false;
}

/**
 * How many worker threads trainClassifier uses by default here: one for a native TF.js backend (its
 * own threads use the cores); else min(2, cores) data-parallel replicas, each on its half of every
 * batch. On onnxruntime the cores are shared out between them (onnxThreadsPerReplica): on 2 cores,
 * two single-threaded sessions ran an epoch 10-15% faster than one session with two threads, which
 * hands work to its second thread at every operator (docs/performance.md, "Fifth pass").
 * EYECASE_TRAIN_WORKERS overrides.
 */
export function defaultWorkerCount(runtime: TrainingRuntime = 'tfjs'): number {
  const env = process.env.EYECASE_TRAIN_WORKERS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 0 && n <= 16) return workerEntry() ? n : 0;
  }
  if (!workerEntry()) return 0;
  if (runtime === 'tfjs' && nativeBackendPresent()) return 1;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(2, cores));
}

class WorkerReplica extends ReplicaClient {
  private worker: Worker;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;
  constructor(entry: URL, spec: ReplicaSpec) {
    super();
    this.worker = new Worker(entry, { workerData: spec });
    this.worker.on('message', (msg: ReplicaReply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`training worker: ${msg.error}`));
      else p.resolve(msg.result);
    });
    const fail = (e: Error) => {
      this.failed = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
    this.worker.on('exit', (code) => fail(new Error(`training worker exited with code ${code}`)));
  }
  protected send<M extends ReplicaMethod>(method: M, args: Args<M>): Promise<Result<M>> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<Result<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args } as ReplicaRequest);
    });
  }
  async close(): Promise<void> {
    this.failed = this.failed ?? new Error('closed');
    await this.worker.terminate();
  }
}

/** A replica in the caller's thread (replica.js, and with it TensorFlow.js, loaded on first use). */
export class LocalReplica extends ReplicaClient {
  private core: Promise<ReplicaCore>;
  constructor(spec: ReplicaSpec = { runtime: 'tfjs', threads: 1 }) {
    super();
    this.core = newReplicaCore(spec);
  }
  protected async send<M extends ReplicaMethod>(method: M, args: Args<M>): Promise<Result<M>> {
    return (await invoke(await this.core, method, args)) as Result<M>;
  }
  async close(): Promise<void> {
    (await this.core).dispose();
  }
}

/**
 * Opens `workers` replicas in worker threads, or one in the caller's thread when workers = 0. Checks
 * at once that worker threads can start; the returned function opens the replicas when called.
 */
export function replicaLauncher(workers: number, spec: ReplicaSpec): () => ReplicaClient[] {
  if (workers === 0) return () => [new LocalReplica(spec)];
  const entry = workerEntry();
  if (!entry) throw new Error('worker threads requested but train-worker.js was not found next to trainer.js (run the compiled build)');
  return () => Array.from({ length: workers }, () => new WorkerReplica(entry, spec));
}
