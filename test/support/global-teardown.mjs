import fs from 'node:fs/promises';

export default async function globalTeardown() {
  await globalThis.__EYECASE_S3__?.close();
  if (process.env.TEST_S3_DIR) await fs.rm(process.env.TEST_S3_DIR, { recursive: true, force: true });
}
