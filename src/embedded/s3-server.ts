// An S3-protocol server for the embedded start and for tests (no MinIO can run here). It keeps
// its data on disk under `directory` and speaks enough of S3 for the minio client.
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import S3rver from '@20minutes/s3rver';
import type { S3Config } from '../config.js';

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
    // s3rver's fixed development credentials.
    configureBuckets: [],
  } as never);
  const address = (await server.run()) as AddressInfo;
  return {
    config: {
      endPoint: '127.0.0.1',
      port: address.port,
      useSSL: false,
      accessKey: 'S3RVER',
      secretKey: 'S3RVER',
      region: 'us-east-1',
      bucket: options.bucket,
    },
    stop: async () => {
      await server.close();
    },
  };
}
