// The one module over the `minio` client. Content is addressed by the SHA-256 of its bytes, so
// putting the same bytes twice stores one object. Bodies are always passed as Buffers with a known
// size (S3 servers without multipart support, such as the test server, need that).
import fs from 'node:fs';
import * as Minio from 'minio';
import type { S3Config } from '../config.js';
import { DependencyUnavailableError, isTransportFailure, withDeadline } from '../faults.js';
import { sha256Hex } from '../shared/hash.js';

export interface StoredObject {
  key: string;
  sha256: string;
  size: number;
  /** False when an object with this content already existed. */
  created: boolean;
}

export interface ObjectStat {
  key: string;
  size: number;
  contentType?: string;
  lastModified: Date;
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'NotFound' || code === 'NoSuchKey' || code === 'NoSuchObject';
}

/** How long one object-store call may take before it counts as an outage (a stopped server never answers). */
export const DEFAULT_OBJECT_STORE_TIMEOUT_MS = 15_000;

export class ObjectStore {
  readonly bucket: string;
  private readonly client: Minio.Client;
  private readonly region: string;

  constructor(config: S3Config, private readonly timeoutMs = DEFAULT_OBJECT_STORE_TIMEOUT_MS) {
    this.bucket = config.bucket;
    this.region = config.region;
    this.client = new Minio.Client({
      endPoint: config.endPoint,
      port: config.port,
      useSSL: config.useSSL,
      accessKey: config.accessKey,
      secretKey: config.secretKey,
      region: config.region,
      pathStyle: true,
    });
  }

  /**
   * Every call goes through here: a transport failure, a 5xx or no answer in time becomes a
   * DependencyUnavailableError (a retryable outage), while S3's own answers (404, 403) pass as they are.
   */
  private async call<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(work(), this.timeoutMs, () => new Error(`object store ${operation}: deadline exceeded after ${this.timeoutMs} ms`));
    } catch (err) {
      if (isTransportFailure(err)) throw new DependencyUnavailableError('objectStore', err);
      throw err;
    }
  }

  /** Creates the bucket if it does not exist yet (called at start). */
  async ensureBucket(): Promise<void> {
    const exists = () => this.call('bucketExists', () => this.client.bucketExists(this.bucket));
    if (!(await exists())) {
      try {
        await this.call('makeBucket', () => this.client.makeBucket(this.bucket, this.region));
      } catch (err) {
        // Another process may have created it in between.
        if (!(await exists())) throw err;
      }
    }
  }

  /** Key under which content with this hash is stored, e.g. images/ab/abcdef... */
  static contentKey(prefix: string, sha256: string): string {
    return `${prefix}/${sha256.slice(0, 2)}/${sha256}`;
  }

  /** Stores bytes under a key derived from their SHA-256; does nothing if that object exists. */
  async putContent(prefix: string, bytes: Buffer, contentType: string): Promise<StoredObject> {
    const sha256 = sha256Hex(bytes);
    const key = ObjectStore.contentKey(prefix, sha256);
    // An object of another size under this key is a cut-off upload (the test S3 server keeps
    // those): it is written again.
    if ((await this.stat(key))?.size === bytes.length) return { key, sha256, size: bytes.length, created: false };
    await this.put(key, bytes, contentType);
    return { key, sha256, size: bytes.length, created: true };
  }

  async put(key: string, bytes: Buffer, contentType = 'application/octet-stream'): Promise<void> {
    await this.call('put', () => this.client.putObject(this.bucket, key, bytes, bytes.length, { 'Content-Type': contentType }));
  }

  async get(key: string): Promise<Buffer> {
    return this.call('get', async () => {
      const stream = await this.client.getObject(this.bucket, key);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    });
  }

  /** The object's bytes as a stream (for content too large to hold in memory). */
  getStream(key: string): Promise<NodeJS.ReadableStream> {
    return this.client.getObject(this.bucket, key);
  }

  /** Uploads a file from disk as a stream, with its size known up front. */
  async putFile(key: string, filePath: string, contentType = 'application/octet-stream'): Promise<void> {
    const { size } = await fs.promises.stat(filePath);
    await this.client.putObject(this.bucket, key, fs.createReadStream(filePath), size, { 'Content-Type': contentType });
  }

  async stat(key: string): Promise<ObjectStat | null> {
    try {
      const s = await this.call('stat', () => this.client.statObject(this.bucket, key));
      return { key, size: s.size, contentType: s.metaData?.['content-type'], lastModified: s.lastModified };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', () => this.client.removeObject(this.bucket, key));
  }

  async presignedGetUrl(key: string, expirySeconds: number): Promise<string> {
    return this.client.presignedGetObject(this.bucket, key, expirySeconds);
  }

  async listKeys(prefix: string): Promise<string[]> {
    return (await this.list(prefix)).map((o) => o.key);
  }

  /** Every object under `prefix`, with its size and last-modified time. */
  async list(prefix: string): Promise<ObjectStat[]> {
    return this.call('list', async () => {
      const out: ObjectStat[] = [];
      for await (const item of this.client.listObjectsV2(this.bucket, prefix, true)) {
        const o = item as { name?: string; size?: number; lastModified?: Date };
        if (o.name) out.push({ key: o.name, size: o.size ?? 0, lastModified: o.lastModified ?? new Date(0) });
      }
      return out;
    });
  }

  /** Readiness probe: the bucket answers. */
  async ping(): Promise<void> {
    await this.call('ping', () => this.client.bucketExists(this.bucket));
  }
}
