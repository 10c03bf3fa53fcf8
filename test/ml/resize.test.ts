// The JavaScript lanczos3 reduce must give the bytes sharp's own resize gives (so serving sees the
// pixels training saw, under the same PREPROCESSING_VERSION): on every fixture eye and non-eye, on
// noise at every size it is used for, square or not, at more than one model input size.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeImage, decodeImageWithSharp } from '../../src/ml/data.js';
import { exactReduce, MAX_EXACT_REDUCE, plainJpegSize, reduceLanczos3 } from '../../src/ml/resize.js';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';
import { fixtureFiles, noiseJpeg } from '../support/images.js';

const S = 48;

function largestDifference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('lanczos3 reduce in JavaScript', () => {
  test('gives exactly sharp\'s bytes on every fixture eye; all that are not enlarged take the JavaScript path', async () => {
    const files = [...fixtureFiles('female'), ...fixtureFiles('male')];
    expect(files.length).toBe(78);
    let reducedHere = 0;
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      const plain = plainJpegSize(bytes);
      const { width, height } = await sharp(bytes).metadata();
      expect(plain).toEqual({ width, height });
      if (exactReduce(width!, height!, S)) reducedHere++;
      expect(largestDifference(await decodeImage(bytes, S), await decodeImageWithSharp(bytes, S))).toBe(0);
    }
    // Most fixture eyes are 48 to 78 pixels a side; the rest (41 to 47) are enlarged by sharp.
    expect(reducedHere).toBeGreaterThan(60);
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
      expect(exactReduce(w, h, size)).toBe(true);
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
    expect(exactReduce(47, 60, S)).toBe(false); // enlarging
    expect(exactReduce(60, 3 * S, S)).toBe(false); // libvips shrinks by an integer first
    expect(() => reduceLanczos3(new Uint8Array(47 * 47 * 3), 47, 47, S)).toThrow(/exact only/);
    // Rotated, profiled and greyscale JPEGs still decode as sharp decodes them.
    for (const other of [await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer(), await sharp(jpeg).toColourspace('b-w').jpeg().toBuffer()]) {
      expect(largestDifference(await decodeImage(other, S), await decodeImageWithSharp(other, S))).toBe(0);
    }
  });
});
