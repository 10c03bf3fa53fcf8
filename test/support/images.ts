// Test images: real eye crops committed under test/fixtures/eyes (picked from the development data
// set, about 40 per class, from different people), and synthetic ones made with sharp.
import fs from 'node:fs';
import path from 'node:path';
import sharp, { type JpegOptions } from 'sharp';
import { mulberry32 } from '../../src/ml/rng.js';
import { PROJECT_ROOT } from '../../src/shared/project-root.js';

export const EYE_FIXTURES_DIR = path.join(PROJECT_ROOT, 'test', 'fixtures', 'eyes');

const byNumber = (a: string, b: string) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b);
const listed = new Map<string, string[]>();

/** The fixture files of one class, in file-number order. */
export function fixtureFiles(label: 'female' | 'male'): string[] {
  let files = listed.get(label);
  if (!files) {
    const dir = path.join(EYE_FIXTURES_DIR, label);
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort(byNumber).map((f) => path.join(dir, f));
    listed.set(label, files);
  }
  return files;
}

/** `count` distinct fixture files of one class starting at `offset`; a test asking for more than exist fails loudly. */
export function datasetFiles(label: 'female' | 'male', count: number, offset = 0): string[] {
  const files = fixtureFiles(label);
  if (offset + count > files.length) throw new Error(`test/fixtures/eyes/${label} has ${files.length} images; asked for ${count} from ${offset}`);
  return files.slice(offset, offset + count);
}

export const readDatasetImage = (label: 'female' | 'male', index = 0): Buffer => fs.readFileSync(datasetFiles(label, 1, index)[0]);

/** A distinct image for every seed (so tests can make as many unique uploads as they need). */
export function syntheticImage(seed: number, format: 'jpeg' | 'png' | 'webp' = 'png', size = 48): Promise<Buffer> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + seed * 7919 + ((i * seed) % 251)) & 0xff;
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).toFormat(format).toBuffer();
}

/** A JPEG of seeded uniform noise (worst case for a decoder or a resize), quality 85 unless `options` say otherwise. */
export async function noiseJpeg(width: number, height: number, seed: number, options: JpegOptions = {}): Promise<Buffer> {
  const rnd = mulberry32(seed);
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < px.length; i++) px[i] = Math.floor(rnd() * 256);
  return sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85, ...options }).toBuffer();
}
