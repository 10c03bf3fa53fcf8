/**
 * npm run predict -- --model <dir|file> <image>... [--heatmap <dir>] [--json]
 * Prints, per image, "This image is X percent female and Y percent male" and the decision; an
 * image the model's out-of-distribution guard refuses gets NOT_AN_EYE (with its score) instead.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadClassifier } from '../ml/index.js';
import { parseArgs, resolveBundlePath, runCli, usage, UsageError, type ArgSpec } from './args.js';

const spec: ArgSpec[] = [
  { name: 'model', type: 'string', help: 'bundle file or folder holding model.eyemodel (required)' },
  { name: 'heatmap', type: 'string', help: 'write an occlusion heatmap PNG per image into this folder' },
  { name: 'json', type: 'boolean', help: 'print one JSON object per image instead of text' },
];
const USAGE = usage('npm run predict --', '--model <dir> <image>... [--heatmap <dir>] [--json]', spec);

async function main(): Promise<void> {
  const { opts, positionals } = parseArgs(process.argv.slice(2), spec);
  if (!opts.model) throw new UsageError('--model is required');
  if (!positionals.length) throw new UsageError('give at least one image file');
  const bundlePath = await resolveBundlePath(String(opts.model));
  const classifier = await loadClassifier(new Uint8Array(await fs.readFile(bundlePath)));
  if (opts.heatmap) await fs.mkdir(String(opts.heatmap), { recursive: true });
  let failures = 0;
  for (const file of positionals) {
    try {
      const bytes = new Uint8Array(await fs.readFile(file));
      const r = await classifier.predict(bytes);
      let heatmap: string | undefined;
      if (opts.heatmap) {
        const ex = await classifier.explain(bytes);
        heatmap = path.join(String(opts.heatmap), `${path.basename(file).replace(/\.[^.]+$/, '')}.heatmap.png`);
        await fs.writeFile(heatmap, ex.png);
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify({ file, ...r, heatmap }) + '\n');
      } else if (r.decision === 'NOT_AN_EYE') {
        console.log(`${file}: NOT_AN_EYE: this image does not look like the eye crops the model was trained on, so it gives no female/male answer ` +
          `(guard score ${r.guard!.score.toFixed(2)} < threshold ${r.guard!.threshold.toFixed(2)}; ${r.latencyMs.toFixed(1)} ms, ${r.backend})`);
      } else {
        console.log(`${file}: This image is ${(r.pFemale * 100).toFixed(1)} percent female and ${(r.pMale * 100).toFixed(1)} percent male. ` +
          `Decision: ${r.decision} (band: FEMALE if P(male) <= ${r.thresholds.female.toFixed(3)}, MALE if >= ${r.thresholds.male.toFixed(3)}; ${r.latencyMs.toFixed(1)} ms, ${r.backend})` +
          (heatmap ? ` heatmap: ${heatmap}` : ''));
      }
    } catch (e) {
      failures++;
      console.error(`${file}: error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  classifier.dispose();
  if (failures) process.exitCode = 1;
}

await runCli(main, USAGE);
