/**
 * Backend choice, made once per thread: tfjs-node-gpu (CUDA) > tfjs-node > wasm (SIMD) > cpu (plain JS).
 * TFJS_BACKEND=gpu|node|wasm|cpu forces one (and fails loudly if it cannot load).
 */
import * as tf from '@tensorflow/tfjs';
import { registerFastBatchNormGrad, registerGradKernels } from './grad-kernels.js';

export interface BackendInfo { backend: string; device: string }

let current: Promise<BackendInfo> | null = null;

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

async function tryNative(kind: 'gpu' | 'node'): Promise<BackendInfo | null> {
  const pkg = kind === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  if (!(await tryImport(pkg))) return null;
  try {
    if (!(await tf.setBackend('tensorflow'))) return null;
    await tf.ready();
    return { backend: kind === 'gpu' ? 'tensorflow-gpu' : 'tensorflow', device: kind === 'gpu' ? 'cuda' : 'cpu (libtensorflow)' };
  } catch {
    return null;
  }
}

async function tryWasm(): Promise<BackendInfo | null> {
  try {
    // Importing the wasm package registers its kernels; ours must replace them after that and
    // before setBackend('wasm') runs the kernels' setup.
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    registerGradKernels('wasm');
    if (!(await tf.setBackend('wasm'))) return null;
    await tf.ready();
    let simd = false;
    try {
      simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    } catch { /* flag missing */ }
    const threads = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT').catch(() => false));
    void wasm;
    return { backend: 'wasm', device: `cpu (wasm${simd ? ' simd' : ''}, ${threads ? 'multi-thread' : '1 thread'})` };
  } catch {
    return null;
  }
}

async function tryCpu(): Promise<BackendInfo | null> {
  if (!(await tf.setBackend('cpu'))) return null;
  await tf.ready();
  return { backend: 'cpu', device: 'cpu (plain JS)' };
}

async function choose(): Promise<BackendInfo> {
  registerFastBatchNormGrad();
  // Silence tfjs' "install tfjs-node" banner and production warnings.
  tf.env().set('PROD', true);
  const forced = (process.env.TFJS_BACKEND ?? '').trim().toLowerCase();
  const order: Array<() => Promise<BackendInfo | null>> = [];
  const map: Record<string, () => Promise<BackendInfo | null>> = {
    gpu: () => tryNative('gpu'), 'tensorflow-gpu': () => tryNative('gpu'), node: () => tryNative('node'),
    tensorflow: () => tryNative('node'), wasm: tryWasm, cpu: tryCpu,
  };
  if (forced) {
    const f = map[forced];
    if (!f) throw new Error(`TFJS_BACKEND=${forced} is not one of gpu, node, wasm, cpu`);
    const r = await f();
    if (!r) throw new Error(`TFJS_BACKEND=${forced} was requested but that backend could not be loaded`);
    return r;
  }
  order.push(() => tryNative('gpu'), () => tryNative('node'), tryWasm, tryCpu);
  for (const f of order) {
    const r = await f();
    if (r) return r;
  }
  throw new Error('no TensorFlow.js backend could be initialised');
}

/** Pick and initialise the backend (idempotent: later calls return the first result). */
export function initBackend(): Promise<BackendInfo> {
  if (!current) current = choose().catch((e) => { current = null; throw e; });
  return current;
}

/** The backend chosen so far, or null before initBackend() resolved. */
export async function backendInfo(): Promise<BackendInfo> {
  return initBackend();
}

export { tf };
