/**
 * Which runtime computes the training steps: onnxruntime-node's native kernels (replica-onnx.ts)
 * for the networks its graphs express, TF.js (replica.ts) otherwise. TRAINING_RUNTIME = auto
 * (default), onnxruntime or tfjs. A native TF.js backend (tfjs-node, tfjs-node-gpu) keeps TF.js in
 * auto mode: on a GPU it is the faster choice.
 */
import os from 'node:os';
import { ONNX_TRAINABLE, type Architecture } from './architectures.js';
import { TrainingInputError } from './errors.js';
import { initBackend, type BackendInfo } from './backend.js';
import { loadOrt, ortVersion } from './onnx-engine.js';
import { defaultWorkerCount, nativeBackendPresent } from './replica-client.js';

export const TRAINING_RUNTIMES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type TrainingRuntimeChoice = (typeof TRAINING_RUNTIMES)[number];
export type TrainingRuntime = Exclude<TrainingRuntimeChoice, 'auto'>;

/** TRAINING_RUNTIME (auto | onnxruntime | tfjs), default auto. */
export function trainingRuntimeChoice(value = process.env.TRAINING_RUNTIME): TrainingRuntimeChoice {
  const v = (value ?? '').trim().toLowerCase() || 'auto';
  if (!(TRAINING_RUNTIMES as readonly string[]).includes(v)) throw new Error(`TRAINING_RUNTIME=${v} is not one of ${TRAINING_RUNTIMES.join(', ')}`);
  return v as TrainingRuntimeChoice;
}

/** The runtime that trains `architecture` here; a forced onnxruntime that cannot is a TrainingInputError. */
export async function chooseTrainingRuntime(architecture: Architecture, choice = trainingRuntimeChoice()): Promise<TrainingRuntime> {
  if (choice === 'tfjs') return 'tfjs';
  const expressible = ONNX_TRAINABLE.includes(architecture);
  if (choice === 'onnxruntime') {
    if (!expressible) throw new TrainingInputError([`TRAINING_RUNTIME=onnxruntime cannot train ${architecture} (supported: ${ONNX_TRAINABLE.join(', ')})`]);
    if (!(await loadOrt())) throw new TrainingInputError(['TRAINING_RUNTIME=onnxruntime was requested but onnxruntime-node is not installed or does not load']);
    return 'onnxruntime';
  }
  if (!expressible || nativeBackendPresent()) return 'tfjs';
  return (await loadOrt()) ? 'onnxruntime' : 'tfjs';
}

/** onnxruntime's intra-op threads for each of `replicas` replicas: the cores shared out. */
export function onnxThreadsPerReplica(replicas: number): number {
  return Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, replicas)));
}

/** The runtime to recompute a bundle's serving fit on: the one that trained it (its meta.backend), when it loads here. */
export async function runtimeThatTrained(backend: string): Promise<TrainingRuntime> {
  return backend === 'onnxruntime' && (await loadOrt()) ? 'onnxruntime' : 'tfjs';
}

/** The device string of onnxruntime training: `replicas` data-parallel replicas of `threads` intra-op threads each. */
export function onnxTrainingDevice(threads: number, replicas = 1): string {
  const perReplica = `${threads} thread${threads === 1 ? '' : 's'}`;
  return `cpu (onnxruntime-node ${ortVersion()}, ${replicas > 1 ? `${replicas} replicas x ${perReplica}` : perReplica})`;
}

/**
 * What will train `architecture` in a run here with `workers` worker threads (trainClassifier's
 * option; default its default), as the run records it before it starts (the bundle's meta.backend
 * says the same afterwards). A forced choice that cannot work is reported by the trainer itself, as
 * a TrainingInputError that fails the run.
 */
export async function trainingBackend(architecture: Architecture, workers?: number): Promise<BackendInfo> {
  const runtime = await chooseTrainingRuntime(architecture).catch(() => 'tfjs' as const);
  if (runtime !== 'onnxruntime') return initBackend();
  const replicas = Math.max(1, workers ?? defaultWorkerCount('onnxruntime'));
  return { backend: 'onnxruntime', device: onnxTrainingDevice(onnxThreadsPerReplica(replicas), replicas) };
}
