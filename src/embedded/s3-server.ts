// An S3-protocol server for the embedded start and for tests (no MinIO can run here). It keeps
// its data on disk under `directory` and speaks enough of S3 for the minio client. Like the MinIO
// of docker-compose.yml, its bucket is private: only signed requests (the API's own, or presigned
// URLs it hands out) are served; s3rver itself would serve anonymous reads and listings.
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import S3rver from '@20minutes/s3rver';
import type { S3Config } from '../config.js';

/** s3rver's fixed development credentials. */
export const embeddedS3Credentials = { accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1' };

export class EmbeddedS3PortError extends Error {}

export interface EmbeddedS3 {
  config: S3Config;
  stop(): Promise<void>;
}

export async function startEmbeddedS3(options: { directory: string; port?: number; bucket: string }): Promise<EmbeddedS3> {
  await fs.mkdir(options.directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory: options.directory,
    silent: true,
    configureBuckets: [],
  } as never);
  requireSignedRequests(server);
  let address: AddressInfo;
  try {
    address = (await server.run()) as AddressInfo;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new EmbeddedS3PortError(`Port ${options.port} for the embedded S3 server is in use by another program. Stop it, or set EMBEDDED_S3_PORT to a free port.`);
    }
    throw err;
  }
  return {
    config: {
      endPoint: '127.0.0.1',
      port: address.port,
      useSSL: false,
      ...embeddedS3Credentials,
      bucket: options.bucket,
    },
    stop: async () => {
      await server.close();
    },
  };
}

const ACCESS_DENIED = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';

/** Whether a request carries any S3 signature (header or query); s3rver then verifies it. */
export function isSigned(headers: Record<string, unknown>, query: Record<string, unknown>): boolean {
  return 'authorization' in headers || 'X-Amz-Algorithm' in query || 'Signature' in query;
}

/**
 * Puts a Koa middleware in front of all of s3rver's: unsigned requests get 403 AccessDenied, as
 * from a private MinIO bucket. Signed ones go on to s3rver's signature check (which refuses a
 * wrong key or a tampered presigned URL).
 */
function requireSignedRequests(server: S3rver): void {
  type KoaContext = { method: string; headers: Record<string, unknown>; query: Record<string, unknown>; status: number; type: string; body: unknown };
  const guard = async (ctx: KoaContext, next: () => Promise<void>) => {
    if (ctx.method === 'OPTIONS' || isSigned(ctx.headers, ctx.query)) return next();
    ctx.status = 403;
    ctx.type = 'application/xml';
    ctx.body = ACCESS_DENIED;
  };
  (server as unknown as { middleware: unknown[] }).middleware.unshift(guard);
}
