/**
 * Serving through onnxruntime-node (native CPU kernels). Note: its run() is asynchronous in name
 * only: the forward pass runs on the calling thread (after a setImmediate), helped by intra-op
 * threads when there are more than one. onnxruntime-node is an optional dependency: without it
 * (or with INFERENCE_RUNTIME=tfjs) the classifier keeps TF.js. The ONNX graph is exported from the
 * bundle's weights at load (onnx-export.ts).
 */
import { createRequire } from 'node:module';
import type { InferenceSession as OrtSession } from 'onnxruntime-node';
import { ONNX_FEATURES, ONNX_INPUT, ONNX_LOGIT } from './onnx-export.js';
import { GraphBuilder, NCHWC_DOMAIN } from './onnx-graph.js';

export const INFERENCE_RUNTIMES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type InferenceRuntimeChoice = (typeof INFERENCE_RUNTIMES)[number];

export interface OnnxEngine {
  /** e.g. "onnxruntime-node 1.30.0". */
  readonly runtime: string;
  /** Logits [n] and, when the graph has them, penultimate features [n*dim] of normalised NHWC input. */
  run(x: Float32Array, n: number): Promise<{ logits: Float32Array; features: Float32Array | null }>;
  release(): Promise<void>;
}

export type OrtModule = typeof import('onnxruntime-node');

let ort: Promise<OrtModule | null> | null = null;

/** onnxruntime-node, or null when it is not installed or its native library does not load. */
export function loadOrt(): Promise<OrtModule | null> {
  ort ??= import('onnxruntime-node').then((m) => ((m as { default?: OrtModule }).default ?? m) as OrtModule, () => null);
  return ort;
}

export function ortVersion(): string {
  try {
    return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** INFERENCE_RUNTIME (auto | onnxruntime | tfjs), default auto. */
export function runtimeChoice(value = process.env.INFERENCE_RUNTIME): InferenceRuntimeChoice {
  const v = (value ?? '').trim().toLowerCase() || 'auto';
  if (!(INFERENCE_RUNTIMES as readonly string[]).includes(v)) throw new Error(`INFERENCE_RUNTIME=${v} is not one of ${INFERENCE_RUNTIMES.join(', ')}`);
  return v as InferenceRuntimeChoice;
}

/**
 * Options of every CPU session here (serving and training): sequential, `threads` intra-op threads
 * (onnxruntime's default when unset), and no spinning: idle pool threads would otherwise burn the
 * cores PostgreSQL, the S3 server and the event loop share with them (measured: 2 spinning threads
 * on a loaded 2-core machine ran at half the speed of 1 thread).
 */
export function cpuSessionOptions(level: 'extended' | 'all', threads?: number): OrtSession.SessionOptions {
  const options: OrtSession.SessionOptions = {
    executionProviders: ['cpu'], graphOptimizationLevel: level, executionMode: 'sequential',
    extra: { session: { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } },
  };
  if (threads && threads > 0) options.intraOpNumThreads = threads;
  return options;
}

/** A session on the ONNX bytes, or null when onnxruntime-node is unavailable. */
export async function createOnnxEngine(model: Uint8Array, opts: { threads?: number } = {}): Promise<OnnxEngine | null> {
  const m = await loadOrt();
  if (!m) return null;
  const session = await m.InferenceSession.create(model, cpuSessionOptions('all', opts.threads));
  const withFeatures = session.outputNames.includes(ONNX_FEATURES);
  const [size] = [(session.inputMetadata?.[0] as { shape?: Array<number | string> } | undefined)?.shape?.[1]];
  const version = ortVersion();
  return {
    runtime: `onnxruntime-node ${version}`,
    async run(x, n) {
      const s = typeof size === 'number' ? size : Math.round(Math.sqrt(x.length / n / 3));
      const feeds = { [ONNX_INPUT]: new m.Tensor('float32', x, [n, s, s, 3]) };
      const out = await session.run(feeds);
      const logits = out[ONNX_LOGIT].data as Float32Array;
      const features = withFeatures ? (out[ONNX_FEATURES].data as Float32Array) : null;
      return { logits, features };
    },
    release: () => session.release(),
  };
}

let nchwcBlock: Promise<number | null> | null = null;

/**
 * The channel block of onnxruntime's NCHWc kernels on this CPU (MLAS: 16 with AVX-512, 8 with
 * AVX2), or null where it has none (they are x86-only) or onnxruntime does not load. Read off the
 * kernel itself: ReorderInput pads 4 channels up to one block.
 */
export function nchwcBlockSize(): Promise<number | null> {
  nchwcBlock ??= (async () => {
    const m = await loadOrt();
    if (!m) return null;
    const g = new GraphBuilder();
    g.input('x', [1, 4, 1, 1]);
    g.output('y', g.opIn(NCHWC_DOMAIN, 'ReorderInput', ['x']), [1, 'block', 1, 1]);
    try {
      const session = await m.InferenceSession.create(g.encode('nchwc-block'), cpuSessionOptions('extended', 1));
      const out = await session.run({ x: new m.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
      await session.release();
      const block = out.y.dims[1];
      return block > 4 ? block : null;
    } catch {
      return null;
    }
  })();
  return nchwcBlock;
}
