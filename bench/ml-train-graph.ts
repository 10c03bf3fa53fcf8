/**
 * Where a training step's time goes on onnxruntime: npm run bench:ml-train-graph [-- --size 48 --batch-size 64 --threads 2 --steps 20]
 *
 * Builds the compact network's training graph (onnx-training.ts), times session.run on a random
 * batch (forward, loss, backward; not the batch assembly or the Adam update, which run in
 * JavaScript) against the same graph with every convolution on onnxruntime's plain Conv, then runs
 * the same steps with onnxruntime's profiler on and prints the time per operator type and the
 * slowest nodes with their input shapes. No data set needed.
 */
import fs from 'node:fs';
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../src/ml/architectures.js';
import { initBackend } from '../src/ml/backend.js';
import { cpuSessionOptions, nchwcBlockSize } from '../src/ml/onnx-engine.js';
import { chainGraph, trainableChain, TRAIN_IMAGE, TRAIN_LABEL, TRAIN_MASK, weightInput } from '../src/ml/onnx-training.js';
import { mulberry32 } from '../src/ml/rng.js';

const args = process.argv.slice(2);
const get = (name: string, dflt: number) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : dflt; };
const S = get('size', 48), N = get('batch-size', 64), threads = get('threads', os.availableParallelism()), steps = get('steps', 20);

await initBackend();
const model = buildModel('compact', S);
const chain = trainableChain(model)!;
const shapes = model.weights.map((w) => w.shape as number[]);
const trainable = model.weights.map((w) => w.trainable);
const block = await nchwcBlockSize();
// The graph the replica trains with (blocked convolutions where onnxruntime has them) and, as the
// reference in the same run, the one with every convolution on onnxruntime's Conv.
const graph = chainGraph(chain, shapes, trainable, 'train', block);
const reference = chainGraph(chain, shapes, trainable, 'train', null);
const rand = mulberry32(1);
const feeds: Record<string, ort.Tensor> = {
  [TRAIN_IMAGE]: new ort.Tensor('float32', Float32Array.from({ length: N * S * S * 3 }, () => rand() * 2 - 1), [N, S, S, 3]),
  [TRAIN_LABEL]: new ort.Tensor('float32', Float32Array.from({ length: N }, () => (rand() < 0.5 ? 1 : 0)), [N, 1]),
  [TRAIN_MASK]: new ort.Tensor('float32', Float32Array.from({ length: N * chain.featureDim }, () => (rand() < 0.2 ? 0 : 1.25)), [N, chain.featureDim]),
};
model.weights.forEach((w, i) => { feeds[weightInput(i)] = new ort.Tensor('float32', w.read().dataSync() as Float32Array, shapes[i]); });

// The training replica's options (replica-onnx.ts), with the profiler on or off.
const options = (profile: boolean): ort.InferenceSession.SessionOptions => ({
  ...cpuSessionOptions('extended', threads), enableProfiling: profile, profileFilePrefix: `${os.tmpdir()}/eyecase-train-graph`,
});
const timeSteps = async (session: ort.InferenceSession): Promise<number> => {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await session.run(feeds);
  return (performance.now() - t0) / steps;
};
const sessions = [await ort.InferenceSession.create(graph, options(false)), await ort.InferenceSession.create(reference, options(false))];
for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(feeds);
// Alternating rounds, so that a change in the machine's load reaches both.
const times: number[][] = [[], []];
for (let round = 0; round < 3; round++) for (const [k, s] of sessions.entries()) times[k].push(await timeSteps(s));
const [ms, refMs] = times.map((t) => Math.min(...t));
console.log(`compact ${S} px, batch ${N}, ${threads} intra-op threads, NCHWc block ${block ?? 'none'}: ${ms.toFixed(1)} ms per step, ${(N / ms * 1000).toFixed(0)} images/s; ` +
  `an epoch of 7,826 images ≈ ${(7826 / N * ms / 1000).toFixed(1)} s of graph time; load ${os.loadavg()[0].toFixed(1)}`);
console.log(`every convolution on Conv: ${refMs.toFixed(1)} ms per step (${(refMs / ms).toFixed(2)}x the above); best of 3 alternating rounds of ${steps} steps each`);

// The profile: onnxruntime writes a Chrome-trace JSON file; sum the kernel times.
const profiled = await ort.InferenceSession.create(graph, options(true));
for (let i = 0; i < steps; i++) await profiled.run(feeds);
profiled.endProfiling();
const prefix = 'eyecase-train-graph';
const file = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(prefix) && f.endsWith('.json')).map((f) => `${os.tmpdir()}/${f}`)
  .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
interface TraceEvent { cat?: string; name: string; dur: number; args?: { op_name?: string; input_type_shape?: unknown } }
const events = (JSON.parse(fs.readFileSync(file, 'utf8')) as TraceEvent[]).filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
fs.rmSync(file, { force: true });
const byOp = new Map<string, number>(), byNode = new Map<string, { us: number; op: string; shapes: string }>();
for (const e of events) {
  const op = e.args?.op_name ?? '?';
  byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
  const node = byNode.get(e.name) ?? { us: 0, op, shapes: JSON.stringify(e.args?.input_type_shape ?? []).slice(0, 110) };
  node.us += e.dur;
  byNode.set(e.name, node);
}
const total = [...byOp.values()].reduce((s, v) => s + v, 0);
console.log(`\nkernel time per step ${(total / steps / 1000).toFixed(1)} ms, by operator:`);
for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).filter(([, us]) => us / total >= 0.005)) {
  console.log(`  ${op.padEnd(18)} ${(us / steps / 1000).toFixed(2).padStart(7)} ms  ${((100 * us) / total).toFixed(1).padStart(5)}%`);
}
console.log('\nslowest nodes:');
for (const n of [...byNode.values()].sort((a, b) => b.us - a.us).slice(0, 15)) console.log(`  ${(n.us / steps / 1000).toFixed(2).padStart(6)} ms  ${n.op.padEnd(16)} ${n.shapes}`);
