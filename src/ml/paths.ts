import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest ancestor of this file holding package.json (works from src/ and dist/src/). */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** The shared development data set: EYES_DATASET_DIR, else ../shared/datasets/eyes-rtte from the project root. */
export function datasetDir(): string {
  return process.env.EYES_DATASET_DIR || path.resolve(projectRoot(), '..', 'shared', 'datasets', 'eyes-rtte');
}
