// The wasm JPEG decoder (mozjpeg, @jsquash/jpeg) must give exactly the RGB that sharp's decode gives,
// so decodeImage's pixels do not change: on every fixture eye and every plain JPEG non-eye, at the
// decoder's output and at decodeImage's; and a truncated or corrupt file must still be rejected
// as sharp rejects it (libjpeg itself only warns on a truncated file).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import sharp, { type JpegOptions } from 'sharp';
import { decodeImage, decodeImageOffThread } from '../../src/ml/data.js';
import { ImageDecodeError } from '../../src/ml/errors.js';
import { decodePlainJpeg } from '../../src/ml/jpeg-wasm.js';
import { exactResize, plainJpegSize } from '../../src/ml/resize.js';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { fixtureFiles, noiseJpeg } from '../support/images.js';

const notEyes = fs.readdirSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'not-eyes')).filter((f) => /\.(jpe?g|png)$/.test(f))
  .map((f) => path.join(PROJECT_ROOT, 'test', 'fixtures', 'not-eyes', f));
const eyes = [...fixtureFiles('female'), ...fixtureFiles('male')];

/** Index of the first differing value, -1 when a and b are identical. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function sharpRgb(bytes: Uint8Array): Promise<Uint8Array> {
  const { data, info } = await sharp(bytes, { failOn: 'error' }).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

describe('JPEG decoding in WebAssembly (mozjpeg)', () => {
  test('decodes every plain fixture JPEG (eyes and non-eyes) to exactly sharp\'s RGB', async () => {
    let plain = 0;
    for (const f of [...eyes, ...notEyes]) {
      const bytes = fs.readFileSync(f);
      const size = plainJpegSize(bytes);
      if (!size) continue;
      plain++;
      const rgb = await decodePlainJpeg(bytes, size.width, size.height);
      if (!rgb) throw new Error(`${f}: the wasm decoder declined a plain JPEG`);
      const at = firstDifference(rgb, await sharpRgb(bytes));
      if (at !== -1) throw new Error(`${f}: differs from sharp's decode at value ${at}`);
    }
    expect(plain).toBeGreaterThanOrEqual(78 + 40); // all 78 eyes and the plain JPEG non-eyes
  });

  test('decodeImage gives the same pixels as the sharp decode it replaces, on every fixture, at three input sizes', async () => {
    let viaWasm = 0;
    for (const size of [33, 48, 64]) {
      for (const f of [...eyes, ...notEyes]) {
        const bytes = fs.readFileSync(f);
        const p = plainJpegSize(bytes);
        if (p && exactResize(p.width, p.height, size)) viaWasm++;
        const at = firstDifference(await decodeImage(bytes, size), await decodeImageOffThread(bytes, size));
        if (at !== -1) throw new Error(`${f} at ${size} px: one pixel differs (value ${at})`);
      }
    }
    expect(viaWasm).toBeGreaterThan(78 + 60); // at 33 px every eye takes the wasm path
  });

  test('matches sharp on chroma subsampling 4:4:4 and 4:2:0, progressive, mozjpeg\'s encoder, odd sizes', async () => {
    const variants: JpegOptions[] = [{}, { chromaSubsampling: '4:4:4' }, { progressive: true }, { mozjpeg: true }, { quality: 40, chromaSubsampling: '4:2:0', optimiseCoding: false }];
    let seed = 11;
    for (const options of variants) {
      for (const [w, h] of [[53, 53], [49, 70], [71, 50], [96, 95], [143, 101]]) {
        const jpeg = await noiseJpeg(w, h, seed++, options);
        expect(plainJpegSize(jpeg)).toEqual({ width: w, height: h });
        const rgb = await decodePlainJpeg(jpeg, w, h);
        if (!rgb) throw new Error(`${JSON.stringify(options)} ${w}x${h}: declined`);
        const at = firstDifference(rgb, await sharpRgb(jpeg));
        if (at !== -1) throw new Error(`${JSON.stringify(options)} ${w}x${h}: differs from sharp at value ${at}`);
      }
    }
  });

  test('a truncated or corrupt JPEG is declined by the wasm decoder and rejected by decodeImage as ImageDecodeError', async () => {
    const good = fs.readFileSync(eyes[0]);
    const size = plainJpegSize(good)!;
    // Cut inside the entropy-coded data: libjpeg only warns ("Premature end of JPEG file") and fills in grey.
    for (const cut of [good.length - 2, good.length - 300, Math.floor(good.length / 2)]) {
      const truncated = good.subarray(0, cut);
      expect(plainJpegSize(truncated)).toEqual(size);
      expect(await decodePlainJpeg(truncated, size.width, size.height)).toBeNull();
      await expect(decodeImage(truncated, 33)).rejects.toBeInstanceOf(ImageDecodeError);
      await expect(decodeImageOffThread(truncated, 33)).rejects.toBeInstanceOf(ImageDecodeError);
    }
    // A broken table (libjpeg's error_exit, which ends in exit() inside the wasm module).
    const corrupt = Buffer.from(good);
    for (let i = 400; i < 420; i++) corrupt[i] = 0xff;
    await expect(decodeImage(corrupt, 33)).rejects.toBeInstanceOf(ImageDecodeError);
    // Damaged entropy data: whatever sharp does (reject or decode), decodeImage does the same.
    const damaged = Buffer.from(good);
    for (let i = good.length - 600; i < good.length - 560; i++) damaged[i] ^= 0x5a;
    const [a, b] = await Promise.allSettled([decodeImage(damaged, 33), decodeImageOffThread(damaged, 33)]);
    expect(a.status).toBe(b.status);
    if (a.status === 'fulfilled' && b.status === 'fulfilled') expect(firstDifference(a.value, b.value)).toBe(-1);
    else if (a.status === 'rejected') expect(a.reason).toBeInstanceOf(ImageDecodeError);
    // The decoder still works after those failures (a fresh instance after an error).
    const rgb = await decodePlainJpeg(good, size.width, size.height);
    expect(rgb && firstDifference(rgb, await sharpRgb(good))).toBe(-1);
  });

  test('declines a JPEG whose size is not the one expected', async () => {
    const good = fs.readFileSync(eyes[0]);
    const size = plainJpegSize(good)!;
    expect(await decodePlainJpeg(good, size.width + 1, size.height)).toBeNull();
  });

  test('loads and decodes in a worker thread (the compiled module, as the inference pool runs it)', async () => {
    // `npm test` compiles to dist/ first; the inference pool's workers run that build too.
    const compiled = path.join(PROJECT_ROOT, 'dist', 'src', 'ml', 'jpeg-wasm.js');
    expect(fs.existsSync(compiled)).toBe(true);
    const good = fs.readFileSync(eyes[0]);
    const size = plainJpegSize(good)!;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.url).then((m) => m.decodePlainJpeg(workerData.bytes, workerData.width, workerData.height))
        .then((rgb) => parentPort.postMessage(rgb), (e) => parentPort.postMessage(String(e)));`;
    const workerData = { url: pathToFileURL(compiled).href, bytes: new Uint8Array(good), ...size };
    const worker = new Worker(code, { eval: true, workerData });
    try {
      const out = await new Promise<unknown>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
      if (typeof out === 'string') throw new Error(`worker: ${out}`);
      expect(firstDifference(out as Uint8Array, await sharpRgb(good))).toBe(-1);
    } finally {
      await worker.terminate();
    }
  });
});
