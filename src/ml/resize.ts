/**
 * The model's input resize (what sharp's `resize(size, size, { fit: 'fill' })` with lanczos3 runs in
 * `decodeImage`) in JavaScript, bit for bit, for the cases that dominate serving: a small, plain
 * 8-bit RGB JPEG reduced by less than 3x, or enlarged by less than 3x. sharp's resize halves its
 * throughput on these tiny crops (most of a decode is pipeline set-up, not pixels); decoding to raw
 * pixels and resizing here gives the same bytes, so PREPROCESSING_VERSION does not change and no
 * model needs retraining.
 *
 * What "the same" rests on, measured against sharp 0.35 / libvips 8.18 (and tested on the fixture
 * eyes, the non-eyes and synthetic noise at every size it is used for):
 *  - a shrinking axis: vertical reduce first, then horizontal, each rounding to uint8 (libvips'
 *    reducev, reduceh); 2·rint(3·shrink)+1 taps around the output pixel's centre, edge pixels
 *    repeated; the kernel's sub-pixel position quantised to 1/64 pixel, weights normalised over all
 *    taps, then truncated to 12-bit fixed point; sums rounded half up and clamped to 0..255.
 *    From a reduce of 3x on, libvips shrinks by an integer first, and this no longer matches.
 *  - then, when either axis grows (the eye crops of 41 to 47 pixels), libvips does not reduce it but
 *    runs one affine transform with its bicubic (Catmull-Rom) interpolator, which vips_resize picks
 *    for lanczos3: 4 taps at a 1/64-pixel phase, 12-bit fixed point, each stencil row rounded before
 *    the vertical pass. Its sampling is not centred (output x reads input x·in/size - 0.5), and an
 *    axis that was reduced or kept gets scale 1 with the same half-pixel offset, so it is
 *    interpolated too; see enlargeBicubic. Tested for sides down to size/3 (16 pixels for 48).
 */

/** Largest reduce factor (input/output, per axis) this module reproduces exactly. */
export const MAX_EXACT_REDUCE = 3;
/** Largest enlarge factor (output/input, per axis) this module reproduces exactly (as tested). */
export const MAX_EXACT_ENLARGE = 3;
/**
 * Largest output size for which the enlarge is claimed exact: tested at 33, 48 and 64 pixels; from
 * 128 on, libvips' stepping by repeated addition can land a sampling position on the other side of a
 * 1/128-pixel boundary than the product computed here.
 */
export const MAX_EXACT_ENLARGE_SIZE = 64;

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

/**
 * Whether resizeLanczos3 reproduces libvips for this input size: each side less than 3·size, and,
 * for outputs of at most MAX_EXACT_ENLARGE_SIZE, down to size/3. Both sides reduced is libvips'
 * reduce; both enlarged, or one of each, is its affine enlarge after the reduce (see enlargeBicubic).
 */
export function exactResize(width: number, height: number, size: number): boolean {
  const smallest = smallestExactSide(size);
  const side = (n: number) => n >= smallest && n < MAX_EXACT_REDUCE * size;
  return side(width) && side(height);
}

/** The smallest input side resizeLanczos3 takes to `size`: size/3 for outputs it enlarges exactly, else size. */
function smallestExactSide(size: number): number {
  return size <= MAX_EXACT_ENLARGE_SIZE ? size / MAX_EXACT_ENLARGE : size;
}

/**
 * Resize width x height x 3 uint8 RGB to size x size, as sharp's `resize(size, size, { fit: 'fill' })`
 * (lanczos3) does. Only for sizes where exactResize() holds.
 */
export function resizeLanczos3(src: Uint8Array, width: number, height: number, size: number): Uint8Array {
  if (!exactResize(width, height, size)) {
    throw new Error(`resizeLanczos3 is exact only for inputs of ${Math.ceil(smallestExactSide(size))} to ${MAX_EXACT_REDUCE * size - 1} pixels per side at ${size}, not ${width}x${height}`);
  }
  if (src.length !== width * height * 3) throw new Error(`expected ${width}x${height}x3 pixels, got ${src.length} values`);
  // libvips' order: reducev, reduceh, then one affine for whatever grows.
  let px = src, w = width, h = height;
  if (h > size) { px = reduceRows(px, w, h, size); h = size; }
  if (w > size) { px = reduceColumns(px, w, h, size); w = size; }
  if (w < size || h < size) px = enlargeBicubic(px, w, h, size);
  return px;
}

/** libvips' reducev: `height` rows of `width` RGB pixels to `size` rows. */
function reduceRows(src: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const { n, index, weight } = taps(height, size), stride = width * 3;
  const rows = new Uint8Array(size * stride);
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
  return rows;
}

/** libvips' reduceh: each of `height` rows from `width` RGB pixels to `size`. */
function reduceColumns(rows: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const { n, index, weight } = taps(width, size), inStride = width * 3;
  const out = new Uint8Array(height * size * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
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
 * libvips' Catmull-Rom weights at the 65 sub-pixel positions 0, 1/64 .. 1: evaluated in doubles in
 * the factored form its bicubic interpolator uses (the last bit decides some truncations), then
 * truncated to 12-bit fixed point, 4 per position.
 */
const CUBIC = (() => {
  const table = new Int32Array((SUBPIXEL + 1) * 4);
  for (let k = 0; k <= SUBPIXEL; k++) {
    const t = k / SUBPIXEL, u = 1 - t, half = u * (-0.5 * t);
    const first = u * half, last = t * half, d = last - first;
    const w = [first, u - first + d, t - last - d, last];
    for (let i = 0; i < 4; i++) table[k * 4 + i] = Math.trunc(w[i] * FIXED_ONE);
  }
  return table;
})();

/** The input pixels (4, edges repeated) and 12-bit weights of each output pixel along one axis. */
interface Stencil {
  index: Int32Array;
  weight: Int32Array;
}

/** libvips pads the affine's input by the stencil's pixel and one more; positions are taken there. */
const AFFINE_BORDER = 2;

/**
 * Where libvips' affine samples along one axis, `positions[i]` being output pixel i's continuous
 * input coordinate in the padded input, mapped to its 4-tap Catmull-Rom stencil: the coordinate
 * quantised to the nearest 1/64 pixel (truncated to 1/128, then rounded up from odd), the taps
 * from one pixel before its integer part to two after.
 */
function stencil(positions: Float64Array, inSize: number): Stencil {
  const n = positions.length;
  const index = new Int32Array(n * 4), weight = new Int32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const p = positions[i];
    const phase = ((Math.trunc(p * SUBPIXEL * 2) & (SUBPIXEL * 2 - 1)) + 1) >> 1;
    const first = Math.trunc(p) - AFFINE_BORDER - 1;
    for (let k = 0; k < 4; k++) {
      index[i * 4 + k] = Math.min(inSize - 1, Math.max(0, first + k));
      weight[i * 4 + k] = CUBIC[phase * 4 + k];
    }
  }
  return { index, weight };
}

const stencilCache = new Map<string, { x: Stencil; y: Stencil }>();

/**
 * The affine's stencils for width x height to size x size. vips_resize gives each growing axis the
 * scale size/side (as sharp passes it: 1 / (side / size)) and 1 to the other, with an input offset
 * of half a pixel on both axes; the affine inverts the matrix, maps output pixel x to
 * x·inverse - 0.5 (so not centred, and a half-pixel shift on an axis of scale 1), stepping along a
 * row by repeated addition and computing each row's vertical coordinate afresh.
 */
function affineStencils(width: number, height: number, size: number): { x: Stencil; y: Stencil } {
  const key = `${width}:${height}:${size}`;
  const cached = stencilCache.get(key);
  if (cached) return cached;
  const a = width < size ? 1 / (width / size) : 1, d = height < size ? 1 / (height / size) : 1;
  const det = a * d, ia = d / det, id = a / det;
  const xs = new Float64Array(size), ys = new Float64Array(size);
  let ix = 0 - 0.5 + AFFINE_BORDER;
  for (let x = 0; x < size; x++, ix += ia) xs[x] = ix;
  for (let y = 0; y < size; y++) ys[y] = id * y - 0.5 + AFFINE_BORDER;
  const result = { x: stencil(xs, width), y: stencil(ys, height) };
  stencilCache.set(key, result);
  return result;
}

/**
 * libvips' affine enlarge of width x height RGB (each side at most size) to size x size with its
 * bicubic interpolator on uint8: for every output pixel, each of the 4 stencil rows is weighted
 * horizontally and rounded to an integer (not clamped), then those 4 vertically, rounded and
 * clamped to 0..255. A row's horizontal sums depend only on the input row and the output column, so
 * they are computed once per input row here instead of once per output pixel: the same integers.
 */
function enlargeBicubic(src: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const { x: sx, y: sy } = affineStencils(width, height, size);
  const stride = size * 3, half = FIXED_ONE >> 1;
  const across = new Int32Array(height * stride);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    let o = y * stride;
    for (let x = 0; x < size; x++) {
      let r = half, g = half, b = half;
      for (let k = x * 4; k < x * 4 + 4; k++) {
        const c = sx.weight[k], p = row + sx.index[k] * 3;
        r += c * src[p];
        g += c * src[p + 1];
        b += c * src[p + 2];
      }
      across[o++] = r >> FIXED_SHIFT;
      across[o++] = g >> FIXED_SHIFT;
      across[o++] = b >> FIXED_SHIFT;
    }
  }
  const out = new Uint8Array(size * stride);
  for (let y = 0; y < size; y++) {
    const k0 = y * 4;
    const c0 = sy.weight[k0], c1 = sy.weight[k0 + 1], c2 = sy.weight[k0 + 2], c3 = sy.weight[k0 + 3];
    const r0 = sy.index[k0] * stride, r1 = sy.index[k0 + 1] * stride, r2 = sy.index[k0 + 2] * stride, r3 = sy.index[k0 + 3] * stride;
    const to = y * stride;
    for (let i = 0; i < stride; i++) {
      const v = (c0 * across[r0 + i] + c1 * across[r1 + i] + c2 * across[r2 + i] + c3 * across[r3 + i] + half) >> FIXED_SHIFT;
      out[to + i] = v < 0 ? 0 : v > 255 ? 255 : v;
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
