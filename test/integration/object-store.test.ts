import { sha256Hex } from '../../src/shared/hash.js';
import { ObjectStore } from '../../src/storage/object-store.js';
import { createTestStore, testS3Config } from '../support/harness.js';

describe('object store over the real minio client and an S3-protocol server', () => {
  let store: ObjectStore;
  beforeAll(async () => {
    store = await createTestStore();
  });

  it('addresses content by SHA-256: the same bytes twice are one object', async () => {
    const bytes = Buffer.from(`hello ${Date.now()}`);
    const a = await store.putContent('blobs', bytes, 'text/plain');
    const b = await store.putContent('blobs', Buffer.from(bytes), 'text/plain');
    expect(a).toEqual({ key: `blobs/${a.sha256.slice(0, 2)}/${a.sha256}`, sha256: sha256Hex(bytes), size: bytes.length, created: true });
    expect(b).toEqual({ ...a, created: false });
    expect(await store.listKeys('blobs/')).toEqual([a.key]);
    expect((await store.get(a.key)).equals(bytes)).toBe(true);
    expect(await store.stat(a.key)).toMatchObject({ key: a.key, size: bytes.length, contentType: 'text/plain' });
  });

  it('deletes, and reports missing objects as absent', async () => {
    const stored = await store.putContent('blobs', Buffer.from('to delete'), 'text/plain');
    await store.delete(stored.key);
    expect(await store.stat(stored.key)).toBeNull();
    expect(await store.exists(stored.key)).toBe(false);
    await expect(store.get(stored.key)).rejects.toThrow();
  });

  it('serves presigned GET URLs until they expire', async () => {
    const stored = await store.putContent('blobs', Buffer.from('presigned'), 'text/plain');
    const url = await store.presignedGetUrl(stored.key, 60);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('presigned');

    const shortLived = await store.presignedGetUrl(stored.key, 1);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(shortLived)).status).toBe(403);
    const tampered = url.replace(/X-Amz-Signature=[0-9a-f]+/, 'X-Amz-Signature=' + '0'.repeat(64));
    expect((await fetch(tampered)).status).toBe(403);
  });

  it('creates its bucket at start, idempotently', async () => {
    const fresh = new ObjectStore(testS3Config(`fresh-${Date.now()}`));
    await fresh.ensureBucket();
    await fresh.ensureBucket();
    await expect(fresh.ping()).resolves.toBeUndefined();
  });
});
