// A real app for integration tests: its own PostgreSQL database, its own bucket on the test S3
// server, the real services, and the HTTP server on an ephemeral port.
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createApp, type RunningApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { connectionBudget, type DatabaseOptions, openDatabase } from '../../src/db/connections.js';
import { createLogger, type Logger, silentLogger } from '../../src/logger.js';
import type { RoleName } from '../../src/modules/auth/roles.js';
import { createServices, type Services, startBackground, stopBackground } from '../../src/services.js';
import { ObjectStore } from '../../src/storage/object-store.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export function testS3Config(bucket: string) {
  const port = Number(process.env.TEST_S3_PORT);
  if (!port) throw new Error('TEST_S3_PORT is not set: run the tests through jest (global setup starts the S3 server)');
  return { endPoint: '127.0.0.1', port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1', bucket };
}

/**
 * The database side of an API process: its pool with Prisma and plain SQL on it, and its
 * connection budget (for tests that build services themselves, e.g. a second process).
 */
export function apiDatabase(url: string, options: DatabaseOptions = {}) {
  const connections = connectionBudget('api');
  return { ...openDatabase(url, connections.application, options), connections };
}

export const uniqueBucket = () => `t-${randomBytes(6).toString('hex')}`;

export async function createTestStore(): Promise<ObjectStore> {
  const store = new ObjectStore(testS3Config(uniqueBucket()));
  await store.ensureBucket();
  return store;
}

export interface GqlResult<T = Record<string, any>> {
  status: number;
  data?: T;
  errors?: Array<{ message: string; extensions?: { code?: string; [k: string]: unknown }; path?: string[] }>;
}

export interface UploadFile {
  name: string;
  bytes: Buffer;
  type?: string;
}

export interface TestApp {
  url: string;
  db: TestDatabase;
  services: Services;
  app: RunningApp;
  keys: Record<RoleName, string>;
  /** A second admin (promotions need two) and a second investigator (case membership). */
  secondKeys: { ADMIN: string; INVESTIGATOR: string };
  /** The key id behind a secret of `keys` or `secondKeys`. */
  keyId(secret: string): string;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<GqlResult<T>>;
  /** A GraphQL multipart request; `files` maps variable paths (e.g. "file", "files.0") to files. */
  upload<T = Record<string, any>>(query: string, variables: Record<string, unknown>, files: Record<string, UploadFile>, key?: string | null, headers?: Record<string, string>): Promise<GqlResult<T>>;
  stop(): Promise<void>;
}

/**
 * Options of the test app. For fault tests, how it reaches its dependencies: `databaseUrl` rewrites
 * the database URL (e.g. through a TCP proxy the test can take down), `s3Port` replaces the S3
 * server's port.
 */
export interface TestAppOptions {
  /** The app's logger (default: silent), e.g. one that keeps lines for a test to read. */
  logger?: Logger;
  databaseUrl?: (url: string) => string;
  s3Port?: number;
}

export async function startTestApp(overrides: Partial<Config> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const db = await createTestDatabase();
  const appDbUrl = options.databaseUrl ? options.databaseUrl(db.url) : db.url;
  // The audit signing key lives outside the repository's .data (generated once, shared by test files).
  const signingKey = process.env.AUDIT_SIGNING_KEY_FILE ?? path.join(os.tmpdir(), 'eyecase-test-audit-signing-key.pem');
  const base = loadConfig({ ...process.env, DATABASE_URL: appDbUrl, S3_ENDPOINT: '', LOG_LEVEL: 'error', AUDIT_SIGNING_KEY_FILE: signingKey });
  const s3 = testS3Config(uniqueBucket());
  const config: Config = { ...base, ...overrides, s3: options.s3Port ? { ...s3, port: options.s3Port } : s3, inProcessWorker: false };
  const database = apiDatabase(appDbUrl);
  const store = new ObjectStore(config.s3!);
  await store.ensureBucket();
  const services = createServices({ config, db: database.db, sql: database.sql, connections: database.connections, store, logger: options.logger ?? (process.env.TEST_LOGS ? createLogger('error') : silentLogger), databaseUrl: appDbUrl });
  await startBackground(services);
  const app = await createApp(services, { port: 0, host: '127.0.0.1' });

  const keys = {} as Record<RoleName, string>;
  const secondKeys = {} as TestApp['secondKeys'];
  const ids = new Map<string, string>();
  const newKey = async (name: string, role: RoleName) => {
    const created = await services.apiKeys.create({ system: 'test' }, { name, role });
    ids.set(created.secret, created.id);
    return created.secret;
  };
  for (const role of ['ADMIN', 'INVESTIGATOR', 'AUDITOR'] as RoleName[]) keys[role] = await newKey(`test ${role.toLowerCase()}`, role);
  for (const role of ['ADMIN', 'INVESTIGATOR'] as const) secondKeys[role] = await newKey(`test ${role.toLowerCase()} 2`, role);
  const auth = (key: string | null | undefined): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});

  const send = async <T>(res: Response): Promise<GqlResult<T>> => {
    const body = (await res.json()) as Omit<GqlResult<T>, 'status'>;
    return { status: res.status, ...body };
  };

  return {
    url: app.url,
    db,
    services,
    app,
    keys,
    secondKeys,
    keyId: (secret) => ids.get(secret) ?? (() => { throw new Error('not a test key'); })(),
    gql: async (query, variables = {}, key = keys.INVESTIGATOR) =>
      send(await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', ...auth(key) }, body: JSON.stringify({ query, variables }) })),
    upload: async (query, variables, files, key = keys.INVESTIGATOR, headers = { 'apollo-require-preflight': 'true' }) => {
      const form = new FormData();
      form.append('operations', JSON.stringify({ query, variables }));
      const entries = Object.entries(files);
      form.append('map', JSON.stringify(Object.fromEntries(entries.map(([path], i) => [String(i), [`variables.${path}`]]))));
      entries.forEach(([, file], i) => form.append(String(i), new Blob([file.bytes], { type: file.type ?? 'application/octet-stream' }), file.name));
      return send(await fetch(app.url, { method: 'POST', headers: { ...auth(key), ...headers }, body: form }));
    },
    stop: async () => {
      await app.stop();
      await stopBackground(services);
      await database.close();
      await db.drop();
    },
  };
}

/**
 * Registers a bundle as version 1 of the app's empty registry (by default the committed baseline,
 * for tests that need a real model's answers) and starts serving it; returns the version's id.
 */
export async function serveBaseline(t: TestApp, bundleFile = t.services.config.baselineModelPath): Promise<string> {
  const baseline = await t.services.registry.ensureBaseline(bundleFile);
  if (!baseline) throw new Error('serveBaseline needs an empty registry');
  await t.services.serving.start();
  return baseline.id;
}

/** Throws with the GraphQL errors if the result has any: for steps that must succeed. */
export function ok<T>(result: GqlResult<T>): T {
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

export function errorCode(result: GqlResult): string | undefined {
  return result.errors?.[0]?.extensions?.code;
}
