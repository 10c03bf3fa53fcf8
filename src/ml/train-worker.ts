/** Worker-thread entry: hosts one replica core (its runtime from workerData) and answers the trainer's calls. */
import { parentPort, workerData } from 'node:worker_threads';
import { invoke, newReplicaCore, type ReplicaReply, type ReplicaRequest, type ReplicaSpec } from './replica-client.js';

const core = newReplicaCore(workerData as ReplicaSpec);
const port = parentPort;
if (!port) throw new Error('train-worker must run in a worker thread');

function transferables(result: unknown): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  const visit = (v: unknown, depth: number) => {
    if (depth > 3 || v == null) return;
    if (v instanceof Float32Array && v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) {
      if (!out.includes(v.buffer)) out.push(v.buffer);
    } else if (Array.isArray(v)) v.forEach((x) => visit(x, depth + 1));
    else if (typeof v === 'object' && !(ArrayBuffer.isView(v))) Object.values(v as object).forEach((x) => visit(x, depth + 1));
  };
  visit(result, 0);
  return out;
}

// Calls are handled one at a time, in order.
let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: ReplicaRequest) => {
  chain = chain.then(async () => {
    try {
      const result = await invoke(await core, msg.method, msg.args);
      port.postMessage({ id: msg.id, result } satisfies ReplicaReply, transferables(result));
    } catch (e) {
      port.postMessage({ id: msg.id, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) } satisfies ReplicaReply);
    }
  });
});
