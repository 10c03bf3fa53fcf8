// The JavaScript lanczos3 resize (libvips' reduce, and its bicubic affine enlarge) must give the
// bytes sharp's own resize gives (so serving sees the pixels training saw, under the same
// PREPROCESSING_VERSION): on every fixture eye and non-eye, on noise at every size it is used for,
// square or not, enlarged, reduced or one of each, at more than one model input size.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, decodeImageWithSharp } from '../../src/ml/data.js';
import { exactResize, MAX_EXACT_ENLARGE, MAX_EXACT_REDUCE, plainJpegSize, resizeLanczos3 } from '../../src/ml/resize.js';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { fixtureFiles, noiseJpeg } from '../support/images.js';

const S = 48;

function largestDifference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Noise pixels, width x height x 3. */
function noise(width: number, height: number, seed: number): Uint8Array {
  const px = new Uint8Array(width * height * 3);
  let state = seed;
  for (let i = 0; i < px.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    px[i] = state >>> 24;
  }
  return px;
}

/** sharp's resize of raw RGB pixels: the same pipeline decodeImageWithSharp runs after decoding. */
async function sharpResize(px: Uint8Array, width: number, height: number, size: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp(px, { raw: { width, height, channels: 3 } }).resize(size, size, { fit: 'fill' }).raw().toBuffer());
}

describe('lanczos3 resize in JavaScript', () => {
  test('gives exactly sharp\'s bytes on every fixture eye; all take the JavaScript path', async () => {
    const files = [...fixtureFiles('female'), ...fixtureFiles('male')];
    expect(files.length).toBe(78);
    let resizedHere = 0, enlarged = 0;
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      const plain = plainJpegSize(bytes);
      const { width, height } = await sharp(bytes).metadata();
      expect(plain).toEqual({ width, height });
      if (exactResize(width!, height!, S)) resizedHere++;
      if (width! < S || height! < S) enlarged++;
      expect(largestDifference(await decodeImage(bytes, S), await decodeImageWithSharp(bytes, S))).toBe(0);
    }
    // Most fixture eyes are 48 to 78 pixels a side (reduced); the rest (41 to 47) are enlarged.
    expect(resizedHere).toBe(78);
    expect(enlarged).toBeGreaterThan(0);
  });

  test('gives exactly sharp\'s bytes on the non-eyes (JPEG and PNG, not square; some take sharp\'s path)', async () => {
    const dir = path.join(PROJECT_ROOT, 'test', 'fixtures', 'not-eyes');
    const files = fs.readdirSync(dir).filter((f) => /\.(jpe?g|png)$/.test(f));
    expect(files.length).toBeGreaterThan(50);
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(dir, f));
      expect(largestDifference(await decodeImage(bytes, S), await decodeImageWithSharp(bytes, S))).toBe(0);
    }
  });

  test('matches sharp on noise at every square size it reduces, and on non-square sizes, for two input sizes', async () => {
    const cases: Array<[number, number, number]> = [];
    for (let side = S; side < MAX_EXACT_REDUCE * S; side++) cases.push([side, side, S]);
    for (let w = S; w < MAX_EXACT_REDUCE * S; w += 13) for (let h = S; h < MAX_EXACT_REDUCE * S; h += 17) cases.push([w, h, S]);
    for (let side = 33; side < 3 * 33; side += 5) cases.push([side, side + 3 < 99 ? side + 3 : side, 33]);
    let seed = 1;
    for (const [w, h, size] of cases) {
      const jpeg = await noiseJpeg(w, h, seed++);
      expect(exactResize(w, h, size)).toBe(true);
      const worst = largestDifference(await decodeImage(jpeg, size), await decodeImageWithSharp(jpeg, size));
      if (worst !== 0) throw new Error(`${w}x${h} -> ${size}: differs from sharp by ${worst}`);
    }
  });

  test('matches sharp\'s enlarge on noise at every size it enlarges, square or not, and with one side reduced', async () => {
    const lo = Math.ceil(S / MAX_EXACT_ENLARGE);
    expect(lo).toBe(16);
    const cases: Array<[number, number, number]> = [];
    // Both sides enlarged: every pair of sides from 16 to 47.
    for (let w = lo; w < S; w++) for (let h = lo; h < S; h++) cases.push([w, h, S]);
    // One side enlarged (or kept), the other reduced: libvips reduces it first, then runs the affine.
    for (let small = lo; small <= S; small++) for (let big = S + (small % 7); big < MAX_EXACT_REDUCE * S; big += 19) cases.push([small, big, S], [big, small, S]);
    // Other model input sizes.
    for (const size of [33, 64]) {
      for (let w = Math.ceil(size / MAX_EXACT_ENLARGE); w < size; w += 2) for (let h = Math.ceil(size / MAX_EXACT_ENLARGE) + 1; h < size; h += 3) cases.push([w, h, size]);
      for (let small = Math.ceil(size / MAX_EXACT_ENLARGE); small < size; small += 4) cases.push([small, 2 * size + small, size], [2 * size - small, small, size]);
    }
    let seed = 1;
    for (const [w, h, size] of cases) {
      expect(exactResize(w, h, size)).toBe(true);
      const px = noise(w, h, seed++);
      const worst = largestDifference(resizeLanczos3(px, w, h, size), await sharpResize(px, w, h, size));
      if (worst !== 0) throw new Error(`${w}x${h} -> ${size}: differs from sharp by ${worst}`);
    }
    expect(cases.length).toBeGreaterThan(1024);
  });

  test('decodeImage enlarges JPEGs as sharp does: every square from 16 to 47, non-squares, one side reduced', async () => {
    const cases: Array<[number, number, number]> = [];
    for (let side = 16; side < S; side++) cases.push([side, side, S]);
    for (let w = 16; w < S; w += 5) for (let h = 17; h < S; h += 7) cases.push([w, h, S]);
    cases.push([47, 60, S], [90, 41, S], [48, 45, S], [30, 30, 33], [13, 40, 33]);
    let seed = 100;
    for (const [w, h, size] of cases) {
      const jpeg = await noiseJpeg(w, h, seed++);
      expect(exactResize(w, h, size)).toBe(true);
      const worst = largestDifference(await decodeImage(jpeg, size), await decodeImageWithSharp(jpeg, size));
      if (worst !== 0) throw new Error(`${w}x${h} -> ${size}: differs from sharp by ${worst}`);
    }
  });

  test('takes the JavaScript path only for plain RGB JPEGs within its exact range', async () => {
    const jpeg = await noiseJpeg(60, 60, 7);
    expect(plainJpegSize(jpeg)).toEqual({ width: 60, height: 60 });
    expect(plainJpegSize(await noiseJpeg(60, 52, 7, { progressive: true }))).toEqual({ width: 60, height: 52 });
    // EXIF (may rotate), an ICC profile, greyscale, PNG, a truncated header: sharp's own resize.
    expect(plainJpegSize(await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer())).toBeNull();
    expect(plainJpegSize(await sharp(jpeg).withIccProfile('p3').jpeg().toBuffer())).toBeNull();
    expect(plainJpegSize(await sharp(jpeg).toColourspace('b-w').jpeg().toBuffer())).toBeNull();
    expect(plainJpegSize(await sharp(jpeg).png().toBuffer())).toBeNull();
    expect(plainJpegSize(jpeg.subarray(0, 10))).toBeNull();
    expect(exactResize(47, 60, S)).toBe(true); // enlarged across, reduced down
    expect(exactResize(16, 16, S)).toBe(true);
    expect(exactResize(15, 40, S)).toBe(false); // enlarged 3x or more: not tested against libvips
    expect(exactResize(60, 3 * S, S)).toBe(false); // libvips shrinks by an integer first
    expect(exactResize(100, 100, 128)).toBe(false); // an enlarge to 128 or more: not claimed
    expect(exactResize(200, 300, 128)).toBe(true); // (reduces are)
    expect(() => resizeLanczos3(new Uint8Array(15 * 15 * 3), 15, 15, S)).toThrow(/exact only/);
    // An enlarged JPEG too small for the JavaScript path still decodes as sharp decodes it.
    const tiny = await noiseJpeg(12, 20, 9);
    expect(largestDifference(await decodeImage(tiny, S), await decodeImageWithSharp(tiny, S))).toBe(0);
    // Rotated, profiled and greyscale JPEGs still decode as sharp decodes them.
    for (const other of [await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer(), await sharp(jpeg).toColourspace('b-w').jpeg().toBuffer()]) {
      expect(largestDifference(await decodeImage(other, S), await decodeImageWithSharp(other, S))).toBe(0);
    }
  });
});
