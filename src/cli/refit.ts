/**
 * npm run refit -- --model <dir|file> --data <dir> --out <dir> [--decision-accuracy 0.985]
 * Re-fits a trained bundle's temperature, INCONCLUSIVE band and out-of-distribution guard (and its
 * cross-fitted figures) on the data it was trained on, keeping the weights; writes
 * <out>/model.eyemodel and <out>/meta.json.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readLabelledFolder, refitServing } from '../ml/index.js';
import { parseArgs, resolveBundlePath, runCli, usage, UsageError, type ArgSpec } from './args.js';

const spec: ArgSpec[] = [
  { name: 'model', type: 'string', help: 'bundle file or folder holding model.eyemodel (required)' },
  { name: 'data', type: 'string', help: 'the folder the model was trained on (required)' },
  { name: 'out', type: 'string', help: 'output folder (required)' },
  { name: 'decision-accuracy', type: 'number', help: 'accuracy outside the INCONCLUSIVE band (default: the bundle\'s)' },
];
const USAGE = usage('npm run refit --', '--model <dir> --data <dir> --out <dir> [--decision-accuracy <n>]', spec);

async function main(): Promise<void> {
  const { opts, positionals } = parseArgs(process.argv.slice(2), spec);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  for (const k of ['model', 'data', 'out']) if (!opts[k]) throw new UsageError(`--${k} is required`);
  const bundlePath = await resolveBundlePath(String(opts.model));
  const items = await readLabelledFolder(String(opts.data));
  const result = await refitServing(new Uint8Array(await fs.readFile(bundlePath)), items, {
    decisionAccuracy: opts['decision-accuracy'] as number | undefined, log: (l) => console.log(l),
  });
  const outDir = String(opts.out);
  await fs.mkdir(outDir, { recursive: true });
  await fs.writeFile(path.join(outDir, 'model.eyemodel'), result.bundle);
  const { history, ...rest } = result.meta;
  await fs.writeFile(path.join(outDir, 'meta.json'), JSON.stringify({ sha256: result.sha256, bytes: result.bundle.length, ...rest, history }, null, 2) + '\n');
  const m = result.meta.metrics;
  console.log(`cross-fitted: accuracy ${(m.accuracy * 100).toFixed(2)}%, ECE ${m.ece.toFixed(4)}, inconclusive ${(m.inconclusiveRate * 100).toFixed(1)}%, decided accuracy ${(m.decidedAccuracy * 100).toFixed(2)}%`);
  console.log(`wrote ${path.join(outDir, 'model.eyemodel')} (${result.bundle.length} bytes, sha256 ${result.sha256})`);
}

await runCli(main, USAGE);
