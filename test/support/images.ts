// Test images: a few real eye crops from the shared data set, and synthetic ones made with sharp.
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { PROJECT_ROOT } from '../../src/config.js';

export const DATASET_DIR = process.env.EYES_DATASET_DIR ?? path.resolve(PROJECT_ROOT, '..', 'shared', 'datasets', 'eyes-rtte');

export function datasetFiles(label: 'female' | 'male', count: number, offset = 0): string[] {
  const dir = path.join(DATASET_DIR, label);
  return fs.readdirSync(dir).sort().slice(offset, offset + count).map((f) => path.join(dir, f));
}

export const readDatasetImage = (label: 'female' | 'male', index = 0): Buffer => fs.readFileSync(datasetFiles(label, 1, index)[0]);

/** A distinct image for every seed (so tests can make as many unique uploads as they need). */
export function syntheticImage(seed: number, format: 'jpeg' | 'png' | 'webp' = 'png', size = 48): Promise<Buffer> {
  const pixels = Buffer.alloc(size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + seed * 7919 + ((i * seed) % 251)) & 0xff;
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).toFormat(format).toBuffer();
}
