import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The full labelled data set for training and benchmarks (folders female/ and male/), named by
 * EYES_DATASET_DIR (or a command's --data). The repository does not carry it; tests use the small
 * set under test/fixtures/eyes instead.
 */
export function datasetDir(): string {
  const dir = process.env.EYES_DATASET_DIR;
  if (!dir) throw new Error('This command needs the full eye data set: set EYES_DATASET_DIR to a folder holding female/ and male/ (for example EYES_DATASET_DIR=../shared/datasets/eyes-rtte).');
  if (!existsSync(path.join(dir, 'female')) || !existsSync(path.join(dir, 'male'))) throw new Error(`EYES_DATASET_DIR=${dir} does not hold female/ and male/ folders.`);
  return dir;
}
