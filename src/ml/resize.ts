/**
 * The model's input resize (libvips' lanczos3 reduce, which sharp runs in `decodeImage`) in
 * JavaScript, bit for bit, for the case that dominates serving: a small, plain 8-bit RGB JPEG
 * reduced by less than 3x. sharp's resize halves its throughput on these tiny crops (most of a
 * decode is pipeline set-up, not pixels); decoding to raw pixels and reducing here gives the same
 * bytes, so PREPROCESSING_VERSION does not change and no model needs retraining.
 *
 * What "the same" rests on, measured against sharp 0.35 / libvips 8.18 (and tested on the fixture
 * eyes, the non-eyes and synthetic noise at every size it is used for):
 *  - vertical reduce first, then horizontal, each rounding to uint8 (libvips' reducev, reduceh);
 *  - 2·rint(3·shrink)+1 taps around the output pixel's centre, edge pixels repeated;
 *  - the kernel's sub-pixel position quantised to 1/64 pixel, weights normalised over all taps,
 *    then truncated to 12-bit fixed point; sums rounded half up and clamped to 0..255.
 * From a reduce of 3x on, libvips shrinks by an integer first, and this no longer matches.
 */

/** Largest reduce factor (input/output, per axis) this module reproduces exactly. */
export const MAX_EXACT_REDUCE = 3;

const FIXED_SHIFT = 12;
const FIXED_ONE = 1 << FIXED_SHIFT;
/** Sub-pixel positions of the kernel per pixel (libvips' transform scale). */
const SUBPIXEL = 64;

interface Taps {
  /** Taps per output pixel. */
  n: number;
  /** First input index of each tap, n per output pixel, already clamped to the image. */
  index: Int32Array;
  /** 12-bit fixed-point weights, n per output pixel. */
  weight: Int32Array;
}

const lanczos3 = (x: number): number => {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
};

/** C's rint: round half to even. */
const rint = (x: number): number => {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

const tapCache = new Map<string, Taps>();

/** The taps that reduce `inSize` pixels to `outSize` along one axis (cached: sizes repeat). */
function taps(inSize: number, outSize: number): Taps {
  const key = `${inSize}:${outSize}`;
  const cached = tapCache.get(key);
  if (cached) return cached;
  const shrink = inSize / outSize;
  const n = 2 * rint(3 * shrink) + 1;
  const half = n >> 1;
  // libvips centres the window on a running position that discards surplus input evenly at both ends.
  const hoffset = (1 + (outSize * shrink - inSize)) / 2 - 1;
  let position = 0.5 * shrink - 0.5 - hoffset;
  const index = new Int32Array(outSize * n);
  const weight = new Int32Array(outSize * n);
  const w = new Float64Array(n);
  for (let x = 0; x < outSize; x++) {
    const left = Math.trunc(position) - half;
    // The output pixel's centre in input pixel coordinates, on libvips' 1/64-pixel grid.
    const exact = Math.trunc(((x + 0.5) * shrink - 0.5) * SUBPIXEL * 2);
    const centre = (exact >> 7) + (((exact & (SUBPIXEL * 2 - 1)) + 1) >> 1) / SUBPIXEL;
    let sum = 0;
    for (let k = 0; k < n; k++) sum += w[k] = lanczos3((left + k - centre) / shrink);
    for (let k = 0; k < n; k++) {
      index[x * n + k] = Math.min(inSize - 1, Math.max(0, left + k));
      weight[x * n + k] = Math.trunc((w[k] / sum) * FIXED_ONE);
    }
    position += shrink;
  }
  const result = { n, index, weight };
  tapCache.set(key, result);
  return result;
}

/** Whether reduceLanczos3 reproduces libvips for this input size. */
export function exactReduce(width: number, height: number, size: number): boolean {
  return width >= size && height >= size && width < MAX_EXACT_REDUCE * size && height < MAX_EXACT_REDUCE * size;
}

/**
 * Resize width x height x 3 uint8 RGB to size x size, as sharp's `resize(size, size, { fit: 'fill' })`
 * (lanczos3) does. Only for sizes where exactReduce() holds.
 */
export function reduceLanczos3(src: Uint8Array, width: number, height: number, size: number): Uint8Array {
  if (!exactReduce(width, height, size)) throw new Error(`reduceLanczos3 is exact only for inputs of ${size} to ${MAX_EXACT_REDUCE * size - 1} pixels per side, not ${width}x${height}`);
  if (src.length !== width * height * 3) throw new Error(`expected ${width}x${height}x3 pixels, got ${src.length} values`);
  let rows = src;
  if (height !== size) {
    const { n, index, weight } = taps(height, size), stride = width * 3;
    rows = new Uint8Array(size * stride);
    const acc = new Int32Array(stride);
    for (let y = 0; y < size; y++) {
      acc.fill(FIXED_ONE >> 1);
      for (let k = y * n; k < (y + 1) * n; k++) {
        const c = weight[k], from = index[k] * stride;
        if (c !== 0) for (let i = 0; i < stride; i++) acc[i] += c * src[from + i];
      }
      // Uint8ClampedArray semantics by hand: the shifted sum may leave 0..255 (negative lobes).
      const to = y * stride;
      for (let i = 0; i < stride; i++) {
        const v = acc[i] >> FIXED_SHIFT;
        rows[to + i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  if (width === size) return rows;
  const { n, index, weight } = taps(width, size), inStride = width * 3;
  const out = new Uint8Array(size * size * 3);
  let o = 0;
  for (let y = 0; y < size; y++) {
    const row = y * inStride;
    for (let x = 0; x < size; x++) {
      let r = FIXED_ONE >> 1, g = r, b = r;
      for (let k = x * n; k < (x + 1) * n; k++) {
        const c = weight[k], p = row + index[k] * 3;
        r += c * rows[p];
        g += c * rows[p + 1];
        b += c * rows[p + 2];
      }
      r >>= FIXED_SHIFT; g >>= FIXED_SHIFT; b >>= FIXED_SHIFT;
      out[o++] = r < 0 ? 0 : r > 255 ? 255 : r;
      out[o++] = g < 0 ? 0 : g > 255 ? 255 : g;
      out[o++] = b < 0 ? 0 : b > 255 ? 255 : b;
    }
  }
  return out;
}

/**
 * The width and height of a JPEG that decodes to plain 8-bit RGB with nothing applied between
 * decoding and resizing: three 8-bit components, no EXIF block (which may rotate it) and no ICC
 * profile (which sharp would convert through). Null for anything else, which then takes sharp's
 * own resize.
 */
export function plainJpegSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let frame: { width: number; height: number } | null = null;
  let p = 2;
  // The markers up to the first scan: application blocks may also follow the frame header.
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return null;
    const marker = bytes[p + 1];
    if (marker === 0xff) { p++; continue; } // fill byte
    if (marker === 0xda) return frame;
    const length = (bytes[p + 2] << 8) | bytes[p + 3];
    const body = p + 4;
    if (length < 2 || body + length - 2 > bytes.length) return null;
    const tag = (text: string) => text.split('').every((ch, i) => bytes[body + i] === ch.charCodeAt(0));
    if (marker === 0xe1 && tag('Exif')) return null;
    if (marker === 0xe2 && tag('ICC_PROFILE')) return null;
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      // Start of frame (baseline, extended, progressive; Huffman-coded): precision, height, width, components.
      if (frame || bytes[body] !== 8 || bytes[body + 5] !== 3) return null;
      const height = (bytes[body + 1] << 8) | bytes[body + 2], width = (bytes[body + 3] << 8) | bytes[body + 4];
      if (width === 0 || height === 0) return null;
      frame = { width, height };
    } else if (marker >= 0xc3 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return null; // another frame type (arithmetic, lossless, hierarchical)
    }
    p = body + length - 2;
  }
  return null;
}
