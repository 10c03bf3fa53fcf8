import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, decodeItems, readLabelledFolder, groupSplit, makeBatch, dataFingerprint, recompressJpeg, gaussianBlur } from '../../src/ml/data.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { EYE_FIXTURES_DIR } from '../support/images.js';
import { mulberry32 } from '../../src/ml/rng.js';
import { ImageDecodeError } from '../../src/ml/errors.js';

async function solid(format: 'jpeg' | 'png' | 'webp', w: number, h: number, channels: 1 | 3 | 4 = 3): Promise<Uint8Array> {
  const img = sharp({ create: { width: w, height: h, channels: channels === 1 ? 3 : channels, background: { r: 200, g: 100, b: 50, alpha: 1 } } });
  const piped = channels === 1 ? img.greyscale() : img;
  return new Uint8Array(await piped.toFormat(format).toBuffer());
}

describe('data', () => {
  test('decodes JPEG, PNG (with alpha), WebP and greyscale to S x S x 3 uint8', async () => {
    for (const [fmt, ch] of [['jpeg', 3], ['png', 4], ['webp', 3], ['png', 1]] as const) {
      const px = await decodeImage(await solid(fmt, 57, 43, ch), 32);
      expect(px.length).toBe(32 * 32 * 3);
      if (ch !== 1) expect(Math.abs(px[0] - 200)).toBeLessThan(8);
    }
  });

  test('the recompressed copies are those of recompressJpeg on the file, decoded (one decode fewer, same pixels)', async () => {
    const items = (await readLabelledFolder(EYE_FIXTURES_DIR)).slice(0, 40);
    items.push({ bytes: await solid('png', 61, 47, 4), label: 'MALE', id: 'not-a-jpeg.png' });
    const { set } = await decodeItems(items, 32, { degradedCopy: true });
    const per = 32 * 32 * 3;
    for (let i = 0; i < set.count; i++) {
      const item = items.find((it) => sha256Hex(it.bytes) === set.hashes[i])!;
      const quality = 8 + (parseInt(set.hashes[i].slice(0, 4), 16) % 38);
      expect(Buffer.compare(Buffer.from(set.pixels.subarray(i * per, (i + 1) * per)), Buffer.from(await decodeImage(item.bytes, 32)))).toBe(0);
      const reference = await decodeImage(await recompressJpeg(item.bytes, quality), 32);
      expect(Buffer.compare(Buffer.from(set.degraded!.subarray(i * per, (i + 1) * per)), Buffer.from(reference))).toBe(0);
    }
  });

  test('corrupt and non-image items are skipped with a reason, never thrown', async () => {
    const good = await solid('jpeg', 50, 50);
    const truncated = good.slice(0, 40);
    const text = new TextEncoder().encode('this is not an image');
    const { set, skipped } = await decodeItems([
      { bytes: good, label: 'FEMALE', id: 'good' },
      { bytes: truncated, label: 'MALE', id: 'truncated' },
      { bytes: text, label: 'MALE', id: 'text' },
      { bytes: new Uint8Array(0), label: 'MALE', id: 'empty' },
    ], 24);
    expect(set.count).toBe(1);
    expect(skipped.map((s) => s.id).sort()).toEqual(['empty', 'text', 'truncated']);
    for (const s of skipped) expect(s.reason).toMatch(/image|empty/);
    await expect(decodeImage(text, 24)).rejects.toBeInstanceOf(ImageDecodeError);
  });

  test('reads a female/ male/ folder; bad files are reported by decodeItems', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'eyes-'));
    try {
      mkdirSync(path.join(dir, 'female')); mkdirSync(path.join(dir, 'male'));
      writeFileSync(path.join(dir, 'female', 'a.jpg'), await solid('jpeg', 40, 40));
      writeFileSync(path.join(dir, 'female', 'broken.jpg'), Buffer.from('nope'));
      writeFileSync(path.join(dir, 'male', 'b.png'), await solid('png', 60, 60));
      writeFileSync(path.join(dir, 'male', 'notes.txt'), 'hello');
      writeFileSync(path.join(dir, 'male', '.hidden.jpg'), await solid('jpeg', 40, 40));
      // Only visible files with an image extension are read: not notes.txt, not .hidden.jpg.
      const items = await readLabelledFolder(dir);
      expect(items.map((i) => i.id).sort()).toEqual([path.join('female', 'a.jpg'), path.join('female', 'broken.jpg'), path.join('male', 'b.png')]);
      const { set, skipped } = await decodeItems(items, 16);
      expect(set.count).toBe(2);
      expect(skipped.map((s) => s.id)).toEqual([path.join('female', 'broken.jpg')]);
      expect((await readLabelledFolder(dir, { includeAllFiles: true })).length).toBe(5);
      await expect(readLabelledFolder(path.join(dir, 'female'))).rejects.toThrow(/female\/ and male\//);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without groups the split is stratified: deterministic, disjoint and keeps class proportions', () => {
    const labels = new Uint8Array(1000).map((_, i) => (i % 10 < 4 ? 0 : 1));
    const own = Array.from(labels, (_, i) => `image-${i}`);
    const a = groupSplit(labels, own, 0.2, 7), b = groupSplit(labels, own, 0.2, 7), c = groupSplit(labels, own, 0.2, 8);
    expect(a).toEqual(b);
    expect(a.val).not.toEqual(c.val);
    expect(a.val.length).toBe(200);
    expect(a.val.filter((i) => labels[i] === 0).length).toBe(80);
    expect(new Set([...a.train, ...a.val]).size).toBe(1000);
  });

  test('augmentation is seeded, stays in range and leaves validation images untouched', () => {
    const S = 16, px = new Uint8Array(2 * S * S * 3).map((_, i) => (i * 37) % 256);
    const plain = makeBatch(px, S, [0, 1], null);
    expect(plain[5]).toBeCloseTo(px[5] / 127.5 - 1, 5);
    const a1 = makeBatch(px, S, [0, 1], mulberry32(1)), a2 = makeBatch(px, S, [0, 1], mulberry32(1)), a3 = makeBatch(px, S, [0, 1], mulberry32(2));
    expect(Array.from(a1)).toEqual(Array.from(a2));
    expect(Array.from(a1)).not.toEqual(Array.from(a3));
    expect(Math.max(...a1)).toBeLessThanOrEqual(1);
    expect(Math.min(...a1)).toBeGreaterThanOrEqual(-1);
  });

  test('real eye crops from a labelled folder decode (the repository\'s fixtures)', async () => {
    const dir = EYE_FIXTURES_DIR;
    const f = readdirSync(path.join(dir, 'female')).slice(0, 5).map((n) => ({ bytes: new Uint8Array(readFileSync(path.join(dir, 'female', n))), label: 'FEMALE' as const, id: n }));
    const { set, skipped } = await decodeItems(f, 48);
    expect(skipped).toEqual([]);
    expect(set.count).toBe(5);
    expect(dataFingerprint(set)).toMatch(/^[0-9a-f]{64}$/);
  });
});

test('the augmentation blur equals the plain separable Gaussian (edge-clamped), bit for bit, at every sigma it draws', () => {
  // The textbook loops, clamping every tap, summing the taps in order: what gaussianBlur computes
  // faster (interior taps indexed directly).
  const reference = (img: Float32Array, size: number, sigma: number) => {
    const radius = Math.max(1, Math.ceil(sigma * 2.5));
    const kernel = new Float32Array(2 * radius + 1);
    let sum = 0;
    for (let k = -radius; k <= radius; k++) { kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma)); sum += kernel[k + radius]; }
    for (let k = 0; k < kernel.length; k++) kernel[k] /= sum;
    const at = (x: number) => Math.min(size - 1, Math.max(0, x));
    const tmp = new Float32Array(img.length), out = new Float32Array(img.length);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
      let a = 0;
      for (let k = -radius; k <= radius; k++) a += kernel[k + radius] * img[(y * size + at(x + k)) * 3 + c];
      tmp[(y * size + x) * 3 + c] = a;
    }
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) {
      let a = 0;
      for (let k = -radius; k <= radius; k++) a += kernel[k + radius] * tmp[(at(y + k) * size + x) * 3 + c];
      out[(y * size + x) * 3 + c] = a;
    }
    return out;
  };
  const rand = mulberry32(11);
  for (const [size, sigma] of [[48, 0.4], [48, 0.9], [48, 1.4], [16, 1.4], [9, 2.2]] as const) {
    const img = Float32Array.from({ length: size * size * 3 }, () => rand());
    const inPlace = new Float32Array(img.length + 5);
    inPlace.set(img, 5); // at an offset, as in a batch
    gaussianBlur(inPlace, 5, size, sigma);
    expect(Array.from(inPlace.subarray(5))).toEqual(Array.from(reference(img, size, sigma)));
  }
});
