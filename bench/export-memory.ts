// Memory of exportCase against case size: exports a small and a ten times larger case (distinct
// noise PNGs of about --kib KiB each as evidence, so the case's bytes dwarf everything else) from a
// real server process and samples that process's resident memory every 20 ms during each export.
// If the ZIP were built in memory, the peak would grow with the case's bytes; streamed, it should not.
//
//   npm run bench:export -- [--small 5] [--large 50] [--kib 1024] [--database-url URL] [--port 4620]
//
// The default large case stays under 64 MiB: bigger ZIPs are uploaded in parts (multipart upload),
// which MinIO and S3 implement and the S3 server of the benchmarks (s3rver) does not.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import sharp from 'sharp';
import { arg, type Stack, startStack, upload } from './support/stack.js';

const small = Number(arg('small', '5'));
const large = Number(arg('large', '50'));
const kib = Number(arg('kib', '1024'));
const port = Number(arg('port', '4620'));
const databaseUrl = arg('database-url', 'postgresql://postgres@127.0.0.1:5432/eyecase_export_bench');

const rssMiB = (pid: number): number => {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
};

/** A PNG of random pixels (incompressible, so distinct) of about `kib` KiB. */
function noisePng(): Promise<Buffer> {
  const side = Math.round(Math.sqrt((kib * 1024) / 3));
  const pixels = randomBytes(side * side * 3);
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

async function fill(stack: Stack, key: string, caseId: string, n: number) {
  let left = n;
  let bytes = 0;
  const worker = async () => {
    while (left-- > 0) {
      const data = await noisePng();
      bytes += data.length;
      await upload(stack.api, key, 'mutation($c: ID!, $file: Upload!) { addEvidence(caseId: $c, file: $file) { id } }', { c: caseId, file: null }, [{ field: 'file', name: 'noise.png', bytes: data }]);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return bytes;
}

async function measuredExport(stack: Stack, key: string, caseId: string) {
  const before = rssMiB(stack.processes.api.pid!);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(stack.processes.api.pid!))), 20);
  const t0 = performance.now();
  let result: { byteSize: number; fileCount: number };
  try {
    result = (await stack.gql<{ exportCase: { byteSize: number; fileCount: number } }>('mutation($id: ID!) { exportCase(caseId: $id) { byteSize fileCount } }', { id: caseId }, key)).exportCase;
  } finally {
    clearInterval(sampler);
  }
  return { ...result, seconds: (performance.now() - t0) / 1000, rssBeforeMiB: before, rssPeakMiB: peak };
}

async function main() {
  const stack = await startStack({ databaseUrl, port });
  try {
    const key = (await stack.gql<{ createApiKey: { secret: string } }>('mutation { createApiKey(input: { name: "exporter", role: INVESTIGATOR }) { secret } }', {}, stack.adminKey)).createApiKey.secret;
    for (const [label, n] of [['small', small], ['large', large]] as const) {
      const caseId = (await stack.gql<{ createCase: { id: string } }>('mutation($t: String!) { createCase(input: { title: $t }) { id } }', { t: label }, key)).createCase.id;
      const imageBytes = await fill(stack, key, caseId, n);
      // Twice: the first export also warms code paths; the second is the figure.
      await measuredExport(stack, key, caseId);
      const m = await measuredExport(stack, key, caseId);
      console.log(`${label} case: ${n} images (${(imageBytes / 2 ** 20).toFixed(1)} MiB) -> ZIP ${(m.byteSize / 2 ** 20).toFixed(1)} MiB, ${m.fileCount} files in ${m.seconds.toFixed(1)} s; server RSS ${m.rssBeforeMiB.toFixed(0)} MiB before, peak ${m.rssPeakMiB.toFixed(0)} MiB (+${(m.rssPeakMiB - m.rssBeforeMiB).toFixed(0)} MiB)`);
    }
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
