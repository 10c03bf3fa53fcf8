/**
 * Data: decode images with sharp (JPEG, PNG, WebP...), resize to the model's input size and keep the
 * set as uint8 RGB in memory; a corrupt or non-image item is reported and skipped. Deterministic
 * stratified split; training-time augmentation on uint8 images.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { mapLimit } from '../shared/concurrency.js';
import { sha256Hex } from '../shared/hash.js';
import { ImageDecodeError } from './errors.js';
import { decodePlainJpeg } from './jpeg-wasm.js';
import { exactResize, plainJpegSize, resizeLanczos3 } from './resize.js';
import { mulberry32, shuffleInPlace } from './rng.js';
import type { TrainingBatch } from './replica.js';

export type Label = 'FEMALE' | 'MALE';
/** Class order of every model: index 0 = FEMALE, index 1 = MALE (the logit is log-odds of MALE). */
export const CLASS_ORDER: readonly Label[] = Object.freeze(['FEMALE', 'MALE'] as Label[]);
/** Version of the decode/resize/normalise pipeline; stored in bundles. Bump when it changes. */
export const PREPROCESSING_VERSION = 1;
export const PREPROCESSING_DESCRIPTION =
  'sharp: decode, auto-orient, drop alpha, sRGB, resize to S x S (fit fill, lanczos3), uint8 RGB; model input = pixel/127.5 - 1';

/**
 * One labelled image. `group` names the person (or a proxy for one): every split keeps a group on
 * one side. Items without a group are their own group.
 */
export interface LabelledItem { bytes: Uint8Array; label: Label; id?: string; group?: string | null }
export interface SkippedItem { id?: string; reason: string }

/** A decoded set: images[i] occupies pixels[i*S*S*3 .. (i+1)*S*S*3). */
export interface ImageSet {
  size: number;
  count: number;
  pixels: Uint8Array; // may be backed by a SharedArrayBuffer
  labels: Uint8Array; // 0 FEMALE, 1 MALE
  ids: Array<string | undefined>;
  hashes: string[];
  /** Group key of each image (the item's group, else its own SHA-256): splits never divide one. */
  groups: string[];
  /**
   * Optional second copy of every image, JPEG-recompressed at its source resolution (training-time
   * augmentation: the per-pixel pipeline cannot make compression artefacts).
   */
  degraded?: Uint8Array;
}

/**
 * The largest image (in pixels) the engine decodes, and so the largest the platform accepts at upload:
 * one limit, so that nothing stored can later fail to classify. Eye crops are tiny; this guards
 * against decompression bombs.
 */
export const MAX_DECODE_PIXELS = 4096 * 4096;

/**
 * Decode one image to S x S x 3 uint8 RGB. Throws ImageDecodeError with a readable reason.
 * A plain RGB JPEG of S/3 to 3·S - 1 pixels a side is decoded by mozjpeg in WebAssembly (jpeg-wasm.ts;
 * the RGB sharp's decode gives, for a fraction of its per-call cost) and reduced or enlarged by
 * `resizeLanczos3`, which gives the bytes sharp's own resize gives for far less CPU (resize.ts);
 * a plain JPEG the wasm decoder fails or warns on (truncated, corrupt) is decoded by sharp, which
 * accepts or rejects it as before; everything else goes through sharp's resize.
 */
export async function decodeImage(bytes: Uint8Array, size: number): Promise<Uint8Array> {
  return decode(bytes, size, wasmJpegDecoding);
}

let wasmJpegDecoding = true;
/**
 * Benchmarks only: whether decodeImage decodes plain JPEGs in wasm (default) or with sharp as before,
 * in this thread, so that both can be timed end to end in one run. The pixels are the same.
 */
export function setWasmJpegDecoding(on: boolean): void {
  wasmJpegDecoding = on;
}

/**
 * decodeImage with sharp decoding plain JPEGs too, as before the wasm decoder: the same pixels, more
 * CPU in all, but the decode runs in libuv's threads instead of the calling thread. For a server's
 * event loop, where that matters more: the API's single uploads when no inference pool thread runs
 * (Classifier.decode); tests and benchmarks compare the two.
 */
export async function decodeImageOffThread(bytes: Uint8Array, size: number): Promise<Uint8Array> {
  return decode(bytes, size, false);
}

/** The size of a plain JPEG that resizeLanczos3 can resize to `size` exactly (resize.ts), else null. */
function resizableJpegSize(bytes: Uint8Array, size: number): { width: number; height: number } | null {
  const plain = plainJpegSize(bytes);
  return plain && exactResize(plain.width, plain.height, size) ? plain : null;
}

async function decode(bytes: Uint8Array, size: number, wasm: boolean): Promise<Uint8Array> {
  if (!bytes || bytes.length === 0) throw new ImageDecodeError('empty file');
  const plain = resizableJpegSize(bytes, size);
  // null when the wasm decoder failed or warned: sharp then decides.
  const rgb = wasm && plain ? await decodePlainJpeg(bytes, plain.width, plain.height) : null;
  if (plain && rgb) return resizeLanczos3(rgb, plain.width, plain.height, size);
  try {
    const pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: MAX_DECODE_PIXELS }).rotate().removeAlpha().toColourspace('srgb');
    if (plain) {
      const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      if (info.channels === 3 && info.width === plain.width && info.height === plain.height) {
        return resizeLanczos3(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, size);
      }
      return await resizeWithSharp(sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).toColourspace('srgb'), size);
    }
    return await resizeWithSharp(pipeline, size);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImageDecodeError(`not a decodable image: ${msg.split('\n')[0]}`);
  }
}

/** The reference path: sharp's lanczos3 resize, then 3 channels. */
async function resizeWithSharp(pipeline: Sharp, size: number): Promise<Uint8Array> {
  const { data, info } = await pipeline.resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) throw new Error(`unexpected output size ${info.width}x${info.height}`);
  if (info.channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(size * size * 3);
  const c = info.channels;
  for (let p = 0; p < size * size; p++) {
    for (let k = 0; k < 3; k++) out[p * 3 + k] = data[p * c + (c >= 3 ? k : 0)];
  }
  return out;
}

/** sharp's resize only (reference for the JavaScript resize; benchmarks and tests compare the two). */
export async function decodeImageWithSharp(bytes: Uint8Array, size: number): Promise<Uint8Array> {
  return resizeWithSharp(sharp(bytes, { failOn: 'error', limitInputPixels: MAX_DECODE_PIXELS }).rotate().removeAlpha().toColourspace('srgb'), size);
}

/**
 * An image's network input and, when `quality` is given, that of its copy recompressed as JPEG at
 * that quality (or the input itself when the copy fails). For a plain JPEG the source is decoded
 * once (jpeg-wasm.ts) and the copy encoded from those pixels: the same JPEG bytes as
 * recompressJpeg() makes from the file, one decode fewer. Anything else, or a file the wasm decoder
 * warns about, takes decodeImage and recompressJpeg.
 */
async function decodeWithCopy(bytes: Uint8Array, size: number, quality: number | null): Promise<{ px: Uint8Array; degraded: Uint8Array | null }> {
  const plain = quality === null ? null : resizableJpegSize(bytes, size);
  const rgb = plain ? await decodePlainJpeg(bytes, plain.width, plain.height) : null;
  if (quality !== null && plain && rgb) {
    const { width, height } = plain;
    const px = resizeLanczos3(rgb, width, height, size);
    const degraded = await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer()
      .then((jpeg) => decodeImage(new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.length), size)).catch(() => px);
    return { px, degraded };
  }
  const px = await decodeImage(bytes, size);
  const degraded = quality === null ? null : await recompressJpeg(bytes, quality).then((b) => decodeImage(b, size)).catch(() => px);
  return { px, degraded };
}

/**
 * Decode labelled items into an ImageSet. Items that fail to decode are skipped and reported.
 * Items are ordered by (label, sha256) so the set and its split do not depend on input order;
 * byte-identical duplicates within a class are kept once (reported as skipped).
 */
export async function decodeItems(items: LabelledItem[], size: number, opts: { shared?: boolean; concurrency?: number; degradedCopy?: boolean } = {}):
  Promise<{ set: ImageSet; skipped: SkippedItem[] }> {
  const skipped: SkippedItem[] = [];
  const hashed = items.map((it, i) => ({ it, label: it.label, hash: sha256Hex(it.bytes) }));
  const valid = hashed.filter(({ it }) => {
    if (it.label !== 'FEMALE' && it.label !== 'MALE') {
      skipped.push({ id: it.id, reason: `unknown label '${String(it.label)}'` });
      return false;
    }
    return true;
  });
  const { kept: unique, duplicates } = canonicalOrder(valid);
  for (const { it } of duplicates) skipped.push({ id: it.id, reason: 'duplicate of another item with the same bytes and label' });
  const decoded = await mapLimit(unique, opts.concurrency ?? 8, async ({ it, hash }) => {
    try {
      // Quality 8-45, fixed per image (from its hash) so runs are reproducible.
      return await decodeWithCopy(it.bytes, size, opts.degradedCopy ? 8 + (parseInt(hash.slice(0, 4), 16) % 38) : null);
    } catch (e) {
      skipped.push({ id: it.id, reason: e instanceof Error ? e.message : String(e) });
      return null;
    }
  });
  const keep = unique.map((u, i) => ({ u, d: decoded[i] })).filter((x) => x.d !== null) as Array<{ u: (typeof unique)[number]; d: { px: Uint8Array; degraded: Uint8Array | null } }>;
  const per = size * size * 3;
  const alloc = (bytes: number) => new Uint8Array(opts.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const pixels = alloc(keep.length * per);
  const labels = alloc(keep.length);
  const degraded = opts.degradedCopy ? alloc(keep.length * per) : undefined;
  keep.forEach(({ u, d }, i) => {
    pixels.set(d.px, i * per);
    if (degraded && d.degraded) degraded.set(d.degraded, i * per);
    labels[i] = u.it.label === 'MALE' ? 1 : 0;
  });
  return {
    set: {
      size, count: keep.length, pixels, labels, ids: keep.map(({ u }) => u.it.id), hashes: keep.map(({ u }) => u.hash),
      groups: keep.map(({ u }) => groupKeyOf(u.it.group, u.hash)), degraded,
    },
    skipped,
  };
}

/**
 * The order every split is made in: by label (FEMALE first), then SHA-256, then input position;
 * byte-identical items with the same label are kept once. Splits made from this order do not
 * depend on how the items were listed.
 */
export function canonicalOrder<T extends { label: string; hash: string }>(items: T[]): { kept: T[]; duplicates: T[] } {
  const sorted = items.map((it, i) => ({ it, i })).sort((a, b) => (a.it.label !== b.it.label ? (a.it.label < b.it.label ? -1 : 1)
    : a.it.hash < b.it.hash ? -1 : a.it.hash > b.it.hash ? 1 : a.i - b.i));
  const seen = new Set<string>();
  const kept: T[] = [], duplicates: T[] = [];
  for (const { it } of sorted) {
    const key = `${it.label}:${it.hash}`;
    if (seen.has(key)) duplicates.push(it); else { seen.add(key); kept.push(it); }
  }
  return { kept, duplicates };
}

/** The group an item belongs to: its own group key, else its SHA-256 (a group of one). */
export function groupKeyOf(group: string | null | undefined, sha256: string): string {
  return group ? `g:${group}` : `sha256:${sha256}`;
}

/** Re-encode an image as JPEG at the given quality (source resolution kept). */
export async function recompressJpeg(bytes: Uint8Array, quality: number): Promise<Uint8Array> {
  const out = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_DECODE_PIXELS }).rotate().removeAlpha().toColourspace('srgb').jpeg({ quality }).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Group keys for the numbered files of one class: a run of consecutive numbers (12.jpg, 13.jpg,
 * 14.jpg) is one group, because in eye data sets adjacent numbers are very often the two eyes of
 * one person; a missing number ends the run. Names without a number get no group (undefined).
 * The key is `<prefix>run-<first number of the run>`.
 */
export function numberedRunGroups(names: string[], prefix = ''): Array<string | undefined> {
  const num = names.map((n) => {
    const m = /^(\d{1,15})\.[A-Za-z0-9]+$/.exec(path.basename(n));
    return m ? Number(m[1]) : null;
  });
  const present = new Set(num.filter((x): x is number => x !== null));
  const runStart = new Map<number, number>();
  for (const v of [...present].sort((a, b) => a - b)) runStart.set(v, present.has(v - 1) ? runStart.get(v - 1)! : v);
  return num.map((v) => (v === null ? undefined : `${prefix}run-${runStart.get(v)}`));
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
    const groups = numberedRunGroups(names, `${label.toLowerCase()}/`);
    // Many reads in flight: one at a time, the 9,783 small files of the data set took 2.4 s; 64 at a time, 0.7 s.
    const bytes = await mapLimit(names, 64, async (name) => new Uint8Array(await fs.readFile(path.join(subdir, name))));
    names.forEach((name, k) => items.push({ bytes: bytes[k], label, id: path.join(sub.name, name), group: groups[k] }));
  }
  if (found < 2) throw new Error(`${dir} must contain female/ and male/ subfolders`);
  return items;
}

/** SHA-256 over the sorted (sha256, label, group) triples of the decoded set, plus the input size. */
export function dataFingerprint(set: ImageSet): string {
  const lines = set.hashes.map((h, i) => `${h} ${CLASS_ORDER[set.labels[i]]} ${set.groups[i]}`).sort();
  return createHash('sha256').update(`eyecase-data-v2 size=${set.size}\n`).update(lines.join('\n')).digest('hex');
}

/**
 * Deterministic person-aware split: whole groups go to validation (in a seeded random order) until
 * each class holds about `validationSplit` of its images there; a group is never divided. With no
 * groups (every image its own group) this is a stratified random split. The result depends only on
 * the labels, the group keys, their order and the seed.
 */
export function groupSplit(labels: ArrayLike<number>, groups: readonly string[], validationSplit: number, seed: number): { train: number[]; val: number[] } {
  if (groups.length !== labels.length) throw new Error(`groupSplit: ${labels.length} labels but ${groups.length} group keys`);
  const members = new Map<string, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const g = members.get(groups[i]);
    if (g) g.push(i); else members.set(groups[i], [i]);
  }
  const classTotal = [0, 0];
  for (let i = 0; i < labels.length; i++) classTotal[labels[i]]++;
  const target = classTotal.map((n) => (n ? Math.max(1, Math.round(n * validationSplit)) : 0));
  const keys = shuffleInPlace([...members.keys()].sort(), mulberry32(seed * 2 + 1));
  const inVal = [0, 0];
  const val: number[] = [], train: number[] = [];
  for (const key of keys) {
    const idx = members.get(key)!;
    const count = [0, 0];
    for (const i of idx) count[labels[i]]++;
    // Take the group while its main class still needs images and it does not overshoot by more
    // than it helps; groups of mixed labels count for both classes.
    const fits = [0, 1].every((c) => count[c] === 0 || inVal[c] + count[c] <= target[c] + Math.floor(count[c] / 2));
    const needed = [0, 1].some((c) => count[c] > 0 && inVal[c] < target[c]);
    if (needed && fits) {
      val.push(...idx);
      inVal[0] += count[0]; inVal[1] += count[1];
    } else train.push(...idx);
  }
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

export interface AugmentOptions {
  flip: boolean;
  /** Uniform rotation in [-maxRotateDeg, maxRotateDeg]. */
  maxRotateDeg: number;
  maxShift: number;
  /** Zoom factor range (above 1 crops in, below 1 shows border). */
  scale: [number, number];
  /** Probabilities of the border fills outside the source: mirror, edge pixels; else black. */
  borderReflect: number;
  borderEdge: number;
  /** Multiplicative gain range (lighting), then contrast around the mean and gamma. */
  gain: [number, number];
  contrast: [number, number];
  gamma: [number, number];
  /** Per-channel gain spread (white balance). */
  colourJitter: number;
  greyscaleProb: number;
  blurProb: number;
  /** Gaussian blur sigma range in pixels of the model input. */
  blurSigma: [number, number];
  /** Probability of starting from the JPEG-recompressed copy, when the set has one. */
  jpegProb: number;
}
/**
 * Augmentation for what investigators send: rotated, off-centre, cropped, dark, grey, blurred and
 * compressed eye crops.
 */
export const DEFAULT_AUGMENT: AugmentOptions = {
  flip: true, maxRotateDeg: 20, maxShift: 0.08, scale: [0.88, 1.3], borderReflect: 0.4, borderEdge: 0.3,
  gain: [0.5, 1.35], contrast: [0.7, 1.25], gamma: [0.75, 1.35], colourJitter: 0.06,
  greyscaleProb: 0.2, blurProb: 0.25, blurSigma: [0.4, 1.4], jpegProb: 0.25,
};

const GAMMA_STEPS = 1024;
const gammaPowers = new Float64Array(GAMMA_STEPS + 2);
/** ln(i / GAMMA_STEPS): the table below is then one exp per entry, 5x faster than `**` (within 1 ulp). */
const gammaLogs = Float64Array.from({ length: GAMMA_STEPS + 1 }, (_, i) => Math.log(i / GAMMA_STEPS));

/**
 * z ** gamma on [0, 1] as a table for linear interpolation: Math.pow per channel value was 70% of
 * the augmentation's time. Largest error 6e-4 (gamma 0.75, first step): 0.15 of one grey level.
 */
function gammaTable(gamma: number): Float64Array {
  for (let i = 0; i <= GAMMA_STEPS; i++) gammaPowers[i] = Math.exp(gamma * gammaLogs[i]);
  gammaPowers[GAMMA_STEPS + 1] = 1;
  return gammaPowers;
}

function reflectIndex(v: number, max: number): number {
  // Mirror without repeating the edge pixel, folded until inside [0, max].
  const period = 2 * max;
  if (period === 0) return 0;
  let r = Math.abs(v) % period;
  if (r > max) r = period - r;
  return r;
}

/** The blur's intermediate image, reused (a blur runs synchronously: one at a time per thread). */
let blurScratch = new Float32Array(0);

/**
 * Separable Gaussian blur of an S x S x 3 float image, in place (edge-clamped). Each pass sums the
 * taps in order; only pixels within `radius` of an edge clamp their taps (the rest index directly).
 */
export function gaussianBlur(img: Float32Array, offset: number, size: number, sigma: number): void {
  const radius = Math.max(1, Math.ceil(sigma * 2.5));
  const taps = 2 * radius + 1;
  const kernel = new Float32Array(taps);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) { kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma)); sum += kernel[k + radius]; }
  for (let k = 0; k < taps; k++) kernel[k] /= sum;
  if (blurScratch.length < size * size * 3) blurScratch = new Float32Array(size * size * 3);
  const tmp = blurScratch;
  const max = size - 1, row = size * 3;
  // Along rows (neighbours 3 values apart), into tmp; the three channels side by side.
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0, g = 0, b = 0;
      if (x >= radius && x + radius <= max) {
        for (let k = 0, p = offset + y * row + (x - radius) * 3; k < taps; k++, p += 3) {
          const w = kernel[k];
          r += w * img[p]; g += w * img[p + 1]; b += w * img[p + 2];
        }
      } else {
        for (let k = -radius; k <= radius; k++) {
          const xx = x + k < 0 ? 0 : x + k > max ? max : x + k, p = offset + y * row + xx * 3, w = kernel[k + radius];
          r += w * img[p]; g += w * img[p + 1]; b += w * img[p + 2];
        }
      }
      const to = y * row + x * 3;
      tmp[to] = r; tmp[to + 1] = g; tmp[to + 2] = b;
    }
  }
  // Along columns (neighbours a row apart), back into img.
  for (let y = 0; y < size; y++) {
    const inside = y >= radius && y + radius <= max;
    for (let i = 0; i < row; i++) {
      let a = 0;
      if (inside) for (let k = 0, p = (y - radius) * row + i; k < taps; k++, p += row) a += kernel[k] * tmp[p];
      else for (let k = -radius; k <= radius; k++) { const yy = y + k < 0 ? 0 : y + k > max ? max : y + k; a += kernel[k + radius] * tmp[yy * row + i]; }
      img[offset + y * row + i] = a;
    }
  }
}

/**
 * Write image `src` (S x S x 3 uint8) into `dst` at offset as normalised floats ([-1, 1]), with an
 * optional random augmentation: flip, rotation, zoom and shift (bilinear; the border outside the
 * source is mirrored, edge-extended or black), lighting (gain, contrast, gamma, white balance),
 * grey-scale and blur. `degraded` is a JPEG-recompressed copy of the same images (see decodeItems).
 */
export function writeNormalised(src: Uint8Array, srcOffset: number, size: number, dst: Float32Array, dstOffset: number,
  rand: (() => number) | null, aug: AugmentOptions = DEFAULT_AUGMENT, degraded?: Uint8Array): void {
  const n = size * size * 3;
  if (!rand) {
    for (let k = 0; k < n; k++) dst[dstOffset + k] = src[srcOffset + k] / 127.5 - 1;
    return;
  }
  const u = (lo: number, hi: number) => lo + rand() * (hi - lo);
  const source = degraded && rand() < aug.jpegProb ? degraded : src;
  const flip = aug.flip && rand() < 0.5 ? -1 : 1;
  const ang = (u(-1, 1) * aug.maxRotateDeg * Math.PI) / 180;
  const sc = u(aug.scale[0], aug.scale[1]);
  const tx = u(-1, 1) * aug.maxShift * size;
  const ty = u(-1, 1) * aug.maxShift * size;
  const borderPick = rand();
  const border = borderPick < aug.borderReflect ? 'reflect' : borderPick < aug.borderReflect + aug.borderEdge ? 'edge' : 'black';
  const gain = u(aug.gain[0], aug.gain[1]);
  const contrast = u(aug.contrast[0], aug.contrast[1]);
  const gamma = u(aug.gamma[0], aug.gamma[1]);
  const chan = [0, 1, 2].map(() => 1 + u(-1, 1) * aug.colourJitter);
  const grey = rand() < aug.greyscaleProb;
  const blur = rand() < aug.blurProb ? u(aug.blurSigma[0], aug.blurSigma[1]) : 0;
  const c = (size - 1) / 2;
  const cos = Math.cos(ang) / sc, sin = Math.sin(ang) / sc;
  const max = size - 1;
  const toUnit = 1 / 255;
  // Geometry into dst as values in [0, 1]. Per row, the source position moves along a line.
  let mean = 0;
  for (let y = 0; y < size; y++) {
    const dy = y - c - ty;
    const rowX = sin * dy + c, rowY = cos * dy + c;
    for (let x = 0, o = dstOffset + y * size * 3; x < size; x++, o += 3) {
      const dx = (x - c - tx) * flip;
      let sx = cos * dx + rowX;
      let sy = rowY - sin * dx;
      if (sx < -0.5 || sx > max + 0.5 || sy < -0.5 || sy > max + 0.5) {
        if (border === 'black') { dst[o] = dst[o + 1] = dst[o + 2] = 0; continue; }
        if (border === 'reflect') { sx = reflectIndex(sx, max); sy = reflectIndex(sy, max); }
      }
      if (sx < 0) sx = 0; else if (sx > max) sx = max;
      if (sy < 0) sy = 0; else if (sy > max) sy = max;
      const x0 = sx | 0, y0 = sy | 0;
      const fx = sx - x0, fy = sy - y0;
      const w00 = (1 - fx) * (1 - fy) * toUnit, w01 = fx * (1 - fy) * toUnit, w10 = (1 - fx) * fy * toUnit, w11 = fx * fy * toUnit;
      const p00 = srcOffset + (y0 * size + x0) * 3;
      const p01 = x0 < max ? p00 + 3 : p00;
      const p10 = y0 < max ? p00 + size * 3 : p00, p11 = x0 < max ? p10 + 3 : p10;
      const r = source[p00] * w00 + source[p01] * w01 + source[p10] * w10 + source[p11] * w11;
      const g = source[p00 + 1] * w00 + source[p01 + 1] * w01 + source[p10 + 1] * w10 + source[p11 + 1] * w11;
      const b = source[p00 + 2] * w00 + source[p01 + 2] * w01 + source[p10 + 2] * w10 + source[p11 + 2] * w11;
      dst[o] = r; dst[o + 1] = g; dst[o + 2] = b;
      mean += r + g + b;
    }
  }
  mean /= n;
  const power = gammaTable(gamma);
  // Lighting (contrast about the mean, gain, white balance: one affine map per channel), gamma, grey-scale.
  const scaleR = contrast * gain * chan[0], scaleG = contrast * gain * chan[1], scaleB = contrast * gain * chan[2];
  const shift = mean * (1 - contrast) * gain;
  const shiftR = shift * chan[0], shiftG = shift * chan[1], shiftB = shift * chan[2];
  const curve = (z: number): number => {
    if (z <= 0) return 0;
    if (z >= 1) return 1;
    const t = z * GAMMA_STEPS, i = t | 0;
    return power[i] + (power[i + 1] - power[i]) * (t - i);
  };
  // To [-1, 1] here unless a blur comes first.
  const outScale = blur === 0 ? 2 : 1, outShift = blur === 0 ? -1 : 0;
  for (let o = dstOffset, end = dstOffset + n; o < end; o += 3) {
    let r = curve(dst[o] * scaleR + shiftR), g = curve(dst[o + 1] * scaleG + shiftG), b = curve(dst[o + 2] * scaleB + shiftB);
    if (grey) r = g = b = 0.299 * r + 0.587 * g + 0.114 * b;
    dst[o] = r * outScale + outShift; dst[o + 1] = g * outScale + outShift; dst[o + 2] = b * outScale + outShift;
  }
  if (blur > 0) {
    gaussianBlur(dst, dstOffset, size, blur);
    for (let k = 0; k < n; k++) dst[dstOffset + k] = dst[dstOffset + k] * 2 - 1;
  }
}

/** Mirror an S x S x 3 float image left-right (what tf.reverse(x, 2) does to NHWC). */
export function writeMirrored(src: Float32Array, srcOffset: number, size: number, dst: Float32Array, dstOffset: number): void {
  for (let y = 0; y < size; y++) {
    const row = y * size * 3;
    for (let x = 0; x < size; x++) {
      const from = srcOffset + row + x * 3, to = dstOffset + row + (size - 1 - x) * 3;
      dst[to] = src[from]; dst[to + 1] = src[from + 1]; dst[to + 2] = src[from + 2];
    }
  }
}

/** Mirror S x S x 3 uint8 images left to right (test-time flip averaging). */
export function flipHorizontal(pixels: Uint8Array, size: number, count: number): Uint8Array {
  const out = new Uint8Array(pixels.length);
  const row = size * 3;
  for (let i = 0; i < count; i++) {
    const base = i * size * row;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const s = base + y * row + x * 3, d = base + y * row + (size - 1 - x) * 3;
        out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2];
      }
    }
  }
  return out;
}

/** Build a normalised float batch from set indices. */
export function makeBatch(pixels: Uint8Array, size: number, indices: ArrayLike<number>, rand: (() => number) | null, degraded?: Uint8Array): Float32Array {
  const per = size * size * 3;
  const out = new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) writeNormalised(pixels, indices[i] * per, size, out, i * per, rand, DEFAULT_AUGMENT, degraded);
  return out;
}

/** The network input of a training batch (replica.ts TrainingBatch) of a set's images: makeBatch with the batch's augmentation seed. */
export function assembleBatch(set: { pixels: Uint8Array; size: number; degraded?: Uint8Array }, { indices, augment, seed }: Omit<TrainingBatch, 'pixels'>): Float32Array {
  return makeBatch(set.pixels, set.size, indices, augment ? mulberry32(seed) : null, set.degraded);
}
