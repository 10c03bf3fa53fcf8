/**
 * Data: decode images with sharp (JPEG, PNG, WebP...), resize to the model's input size and keep the
 * set as uint8 RGB in memory; a corrupt or non-image item is reported and skipped. Deterministic
 * stratified split; training-time augmentation on uint8 images.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { ImageDecodeError } from './errors.js';
import { mulberry32, shuffleInPlace } from './rng.js';

export type Label = 'FEMALE' | 'MALE';
/** Class order of every model: index 0 = FEMALE, index 1 = MALE (the logit is log-odds of MALE). */
export const CLASS_ORDER: readonly Label[] = Object.freeze(['FEMALE', 'MALE'] as Label[]);
/** Version of the decode/resize/normalise pipeline; stored in bundles. Bump when it changes. */
export const PREPROCESSING_VERSION = 1;
export const PREPROCESSING_DESCRIPTION =
  'sharp: decode, auto-orient, drop alpha, sRGB, resize to S x S (fit fill, lanczos3), uint8 RGB; model input = pixel/127.5 - 1';

export interface LabelledItem { bytes: Uint8Array; label: Label; id?: string }
export interface SkippedItem { id?: string; reason: string }

/** A decoded set: images[i] occupies pixels[i*S*S*3 .. (i+1)*S*S*3). */
export interface ImageSet {
  size: number;
  count: number;
  pixels: Uint8Array; // may be backed by a SharedArrayBuffer
  labels: Uint8Array; // 0 FEMALE, 1 MALE
  ids: Array<string | undefined>;
  hashes: string[];
}

/**
 * The largest image (in pixels) the engine decodes, and so the largest the platform accepts at upload:
 * one limit, so that nothing stored can later fail to classify. Eye crops are tiny; this guards
 * against decompression bombs.
 */
export const MAX_DECODE_PIXELS = 4096 * 4096;

/** Decode one image to S x S x 3 uint8 RGB. Throws ImageDecodeError with a readable reason. */
export async function decodeImage(bytes: Uint8Array, size: number): Promise<Uint8Array> {
  if (!bytes || bytes.length === 0) throw new ImageDecodeError('empty file');
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_DECODE_PIXELS })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size) throw new Error(`unexpected output size ${info.width}x${info.height}`);
    if (info.channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.length);
    const out = new Uint8Array(size * size * 3);
    const c = info.channels;
    for (let p = 0; p < size * size; p++) {
      for (let k = 0; k < 3; k++) out[p * 3 + k] = data[p * c + (c >= 3 ? k : 0)];
    }
    return out;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImageDecodeError(`not a decodable image: ${msg.split('\n')[0]}`);
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Decode labelled items into an ImageSet. Items that fail to decode are skipped and reported.
 * Items are ordered by (label, sha256) so the set and its split do not depend on input order;
 * byte-identical duplicates within a class are kept once (reported as skipped).
 */
export async function decodeItems(items: LabelledItem[], size: number, opts: { shared?: boolean; concurrency?: number } = {}):
  Promise<{ set: ImageSet; skipped: SkippedItem[] }> {
  const skipped: SkippedItem[] = [];
  const hashed = items.map((it, i) => ({ it, i, hash: sha256Hex(it.bytes) }));
  const valid = hashed.filter(({ it }) => {
    if (it.label !== 'FEMALE' && it.label !== 'MALE') {
      skipped.push({ id: it.id, reason: `unknown label '${String(it.label)}'` });
      return false;
    }
    return true;
  });
  valid.sort((a, b) => (a.it.label === b.it.label ? (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.i - b.i) : a.it.label < b.it.label ? -1 : 1));
  const seen = new Set<string>();
  const unique = valid.filter(({ it, hash }) => {
    const key = `${it.label}:${hash}`;
    if (seen.has(key)) {
      skipped.push({ id: it.id, reason: 'duplicate of another item with the same bytes and label' });
      return false;
    }
    seen.add(key);
    return true;
  });
  const decoded = await mapLimit(unique, opts.concurrency ?? 8, async ({ it }) => {
    try {
      return await decodeImage(it.bytes, size);
    } catch (e) {
      skipped.push({ id: it.id, reason: e instanceof Error ? e.message : String(e) });
      return null;
    }
  });
  const keep = unique.map((u, i) => ({ u, px: decoded[i] })).filter((x) => x.px !== null) as Array<{ u: (typeof unique)[number]; px: Uint8Array }>;
  const per = size * size * 3;
  const buffer = opts.shared ? new SharedArrayBuffer(keep.length * per) : new ArrayBuffer(keep.length * per);
  const pixels = new Uint8Array(buffer);
  const labels = new Uint8Array(opts.shared ? new SharedArrayBuffer(keep.length) : new ArrayBuffer(keep.length));
  keep.forEach(({ u, px }, i) => {
    pixels.set(px, i * per);
    labels[i] = u.it.label === 'MALE' ? 1 : 0;
  });
  return {
    set: { size, count: keep.length, pixels, labels, ids: keep.map(({ u }) => u.it.id), hashes: keep.map(({ u }) => u.hash) },
    skipped,
  };
}

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|bmp)$/i;

/** Read a folder with female/ and male/ subfolders (case-insensitive names) into labelled items. */
export async function readLabelledFolder(dir: string, opts: { limitPerClass?: number; includeAllFiles?: boolean } = {}): Promise<LabelledItem[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const items: LabelledItem[] = [];
  let found = 0;
  for (const label of CLASS_ORDER) {
    const sub = entries.find((e) => e.isDirectory() && e.name.toLowerCase() === label.toLowerCase());
    if (!sub) continue;
    found++;
    const subdir = path.join(dir, sub.name);
    let names = (await fs.readdir(subdir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
    if (!opts.includeAllFiles) names = names.filter((n) => IMAGE_EXT.test(n) && !n.startsWith('.'));
    if (opts.limitPerClass) names = names.slice(0, opts.limitPerClass);
    for (const name of names) {
      const file = path.join(subdir, name);
      items.push({ bytes: new Uint8Array(await fs.readFile(file)), label, id: path.join(sub.name, name) });
    }
  }
  if (found < 2) throw new Error(`${dir} must contain female/ and male/ subfolders`);
  return items;
}

/** SHA-256 over the sorted (sha256, label) pairs of the decoded set, plus the input size. */
export function dataFingerprint(set: ImageSet): string {
  const lines = set.hashes.map((h, i) => `${h} ${CLASS_ORDER[set.labels[i]]}`).sort();
  return createHash('sha256').update(`eyecase-data-v1 size=${set.size}\n`).update(lines.join('\n')).digest('hex');
}

/** Deterministic stratified split: the same seed and data give the same validation images. */
export function stratifiedSplit(labels: Uint8Array, validationSplit: number, seed: number): { train: number[]; val: number[] } {
  const train: number[] = [];
  const val: number[] = [];
  for (const cls of [0, 1]) {
    const idx: number[] = [];
    labels.forEach((l, i) => { if (l === cls) idx.push(i); });
    shuffleInPlace(idx, mulberry32(seed * 2 + cls + 1));
    const nVal = Math.max(1, Math.round(idx.length * validationSplit));
    val.push(...idx.slice(0, nVal));
    train.push(...idx.slice(nVal));
  }
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

export interface AugmentOptions { flip: boolean; maxRotateDeg: number; maxShift: number; scale: [number, number]; brightness: number; contrast: [number, number] }
export const DEFAULT_AUGMENT: AugmentOptions = { flip: true, maxRotateDeg: 10, maxShift: 0.08, scale: [0.92, 1.08], brightness: 0.12, contrast: [0.8, 1.2] };

/**
 * Write image `src` (S x S x 3 uint8) into `dst` at offset as normalised floats, with an optional
 * random augmentation: horizontal flip, rotation, scale, shift (bilinear, edge-clamped), brightness
 * and contrast.
 */
export function writeNormalised(src: Uint8Array, srcOffset: number, size: number, dst: Float32Array, dstOffset: number,
  rand: (() => number) | null, aug: AugmentOptions = DEFAULT_AUGMENT): void {
  const n = size * size * 3;
  if (!rand) {
    for (let k = 0; k < n; k++) dst[dstOffset + k] = src[srcOffset + k] / 127.5 - 1;
    return;
  }
  const flip = aug.flip && rand() < 0.5 ? -1 : 1;
  const ang = ((rand() * 2 - 1) * aug.maxRotateDeg * Math.PI) / 180;
  const sc = aug.scale[0] + rand() * (aug.scale[1] - aug.scale[0]);
  const tx = (rand() * 2 - 1) * aug.maxShift * size;
  const ty = (rand() * 2 - 1) * aug.maxShift * size;
  const bright = (rand() * 2 - 1) * aug.brightness;
  const contrast = aug.contrast[0] + rand() * (aug.contrast[1] - aug.contrast[0]);
  const c = (size - 1) / 2;
  const cos = Math.cos(ang) / sc, sin = Math.sin(ang) / sc;
  // Mean of the image for contrast around the mean.
  let mean = 0;
  for (let k = 0; k < n; k++) mean += src[srcOffset + k];
  mean = mean / n / 127.5 - 1;
  const max = size - 1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = (x - c - tx) * flip, dy = y - c - ty;
      let sx = cos * dx + sin * dy + c;
      let sy = -sin * dx + cos * dy + c;
      if (sx < 0) sx = 0; else if (sx > max) sx = max;
      if (sy < 0) sy = 0; else if (sy > max) sy = max;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const x1 = x0 < max ? x0 + 1 : x0, y1 = y0 < max ? y0 + 1 : y0;
      const fx = sx - x0, fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      const p00 = srcOffset + (y0 * size + x0) * 3, p01 = srcOffset + (y0 * size + x1) * 3;
      const p10 = srcOffset + (y1 * size + x0) * 3, p11 = srcOffset + (y1 * size + x1) * 3;
      const o = dstOffset + (y * size + x) * 3;
      for (let k = 0; k < 3; k++) {
        const v = (src[p00 + k] * w00 + src[p01 + k] * w01 + src[p10 + k] * w10 + src[p11 + k] * w11) / 127.5 - 1;
        let z = (v - mean) * contrast + mean + bright;
        if (z < -1) z = -1; else if (z > 1) z = 1;
        dst[o + k] = z;
      }
    }
  }
}

/** Build a normalised float batch from set indices. */
export function makeBatch(pixels: Uint8Array, size: number, indices: ArrayLike<number>, rand: (() => number) | null): Float32Array {
  const per = size * size * 3;
  const out = new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) writeNormalised(pixels, indices[i] * per, size, out, i * per, rand);
  return out;
}
