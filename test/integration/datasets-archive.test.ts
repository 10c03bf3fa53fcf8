// importDatasetArchive: ZIP archives with female/ and male/ folders, and the hostile ones (path
// traversal, symlinks, nested archives, zip bombs, lying headers, too many entries, not a zip).
//
// Zip-bomb policy (see src/modules/datasets/archive.ts): an archive whose entries declare more
// than MAX_ARCHIVE_UNCOMPRESSED_BYTES, or that has more than MAX_ARCHIVE_ENTRIES entries, is
// refused as a whole with PAYLOAD_TOO_LARGE before anything is imported. A single entry over the
// per-file limit, or one that inflates to more than its header says, is SKIPPED (never inflated
// past the limit) and the rest of the archive is imported.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SPOOL_ROOT } from '../../src/modules/datasets/archive.js';
import { errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { datasetFiles, readDatasetImage } from '../support/images.js';
import { buildZip, type ZipEntry } from '../support/zip.js';

const IMPORT = `mutation($id: ID!, $archive: Upload!) {
  importDatasetArchive(datasetId: $id, archive: $archive) {
    imported duplicates skipped
    files { name status label sha256 reason code }
    dataset { counts { female male total } }
  }
}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const LIMITS = { maxBytes: 2_000_000, maxEntries: 30, maxUncompressedBytes: 3_000_000 };

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ uploads: { maxFileBytes: 100_000, maxFiles: 20, maxDatasetFilesPerRequest: 8 }, archive: LIMITS });
});
afterAll(() => t.stop());

async function newDataset(name: string): Promise<string> {
  return ok(await t.gql(`mutation($name: String!) { createDataset(input: { name: $name }) { id } }`, { name }, t.keys.ADMIN)).createDataset.id;
}
const importZip = (datasetId: string, zip: Buffer, key = t.keys.ADMIN) =>
  t.upload(IMPORT, { id: datasetId, archive: null }, { archive: { name: 'set.zip', bytes: zip, type: 'application/zip' } }, key);
const spools = () => (fs.existsSync(SPOOL_ROOT) ? fs.readdirSync(SPOOL_ROOT) : []);
const count = (datasetId: string) => t.services.db.datasetItem.count({ where: { datasetId } });

describe('importDatasetArchive', () => {
  it('imports female/ and male/ folders under one top-level folder and says what it skipped', async () => {
    const id = await newDataset('zip-ok');
    const entries: ZipEntry[] = [{ name: 'eyes-rtte/' }, { name: 'eyes-rtte/female/' }, { name: 'eyes-rtte/male/' }];
    for (let i = 0; i < 6; i++) entries.push({ name: `eyes-rtte/female/f${i}.jpg`, data: readDatasetImage('female', 0 + i) });
    for (let i = 0; i < 5; i++) entries.push({ name: `eyes-rtte/male/m${i}.jpg`, data: readDatasetImage('male', 0 + i), store: i === 0 });
    entries.push({ name: 'eyes-rtte/male/copy.jpg', data: readDatasetImage('male', 0) });
    entries.push({ name: 'eyes-rtte/README.txt', data: Buffer.from('labels by folder') });
    entries.push({ name: 'eyes-rtte/female/notes.jpg', data: Buffer.from('not an image at all') });
    entries.push({ name: 'eyes-rtte/female/sub/deep.jpg', data: readDatasetImage('female', 6) });
    entries.push({ name: 'eyes-rtte/female/.DS_Store', data: Buffer.from('junk') });
    const res = ok(await importZip(id, buildZip(entries))).importDatasetArchive;
    expect(res).toMatchObject({ imported: 11, duplicates: 1, skipped: 4, dataset: { counts: { female: 6, male: 5, total: 11 } } });
    const by = Object.fromEntries(res.files.map((f: { name: string }) => [f.name, f]));
    expect(by['eyes-rtte/female/f0.jpg']).toMatchObject({ status: 'IMPORTED', label: 'FEMALE', sha256: sha(readDatasetImage('female', 0)) });
    expect(by['eyes-rtte/male/m0.jpg']).toMatchObject({ status: 'IMPORTED', label: 'MALE' });
    expect(by['eyes-rtte/male/copy.jpg']).toMatchObject({ status: 'DUPLICATE' });
    expect(by['eyes-rtte/README.txt'].reason).toMatch(/female\/ or male\//);
    expect(by['eyes-rtte/female/notes.jpg']).toMatchObject({ status: 'SKIPPED', code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(by['eyes-rtte/female/sub/deep.jpg']).toMatchObject({ status: 'SKIPPED' });
    expect(by['eyes-rtte/female/.DS_Store'].reason).toMatch(/hidden/);
    expect(res.files.some((f: { name: string }) => f.name.endsWith('/'))).toBe(false);

    // The same archive again: everything is a duplicate.
    const again = ok(await importZip(id, buildZip(entries))).importDatasetArchive;
    expect(again).toMatchObject({ imported: 0, duplicates: 12, skipped: 4 });
    expect(spools()).toEqual([]);
  });

  (spawnSync('zip', ['-v']).status === 0 ? it : it.skip)('reads an archive made by the zip tool, as in the README', async () => {
    const id = await newDataset('zip-tool');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-zip-'));
    try {
      for (const label of ['female', 'male'] as const) {
        fs.mkdirSync(path.join(dir, label));
        for (const f of datasetFiles(label, 4, 10)) fs.copyFileSync(f, path.join(dir, label, path.basename(f)));
      }
      expect(spawnSync('zip', ['-qr', path.join(dir, 'eyes.zip'), 'female', 'male'], { cwd: dir }).status).toBe(0);
      const res = ok(await importZip(id, fs.readFileSync(path.join(dir, 'eyes.zip')))).importDatasetArchive;
      expect(res).toMatchObject({ imported: 8, duplicates: 0, skipped: 0, dataset: { counts: { female: 4, male: 4 } } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('groups numbered files by runs of consecutive numbers within each folder (a missing number ends a run)', async () => {
    const id = await newDataset('zip-runs');
    const entries: ZipEntry[] = [];
    [1, 2, 3, 5, 6].forEach((n, i) => entries.push({ name: `set/female/${n}.jpg`, data: readDatasetImage('female', 10 + i) }));
    [1, 2, 9].forEach((n, i) => entries.push({ name: `set/male/${n}.jpg`, data: readDatasetImage('male', 10 + i) }));
    entries.push({ name: 'set/male/profile.jpg', data: readDatasetImage('male', 15) });
    expect(ok(await importZip(id, buildZip(entries))).importDatasetArchive.imported).toBe(9);
    const rows = await t.services.db.datasetItem.findMany({ where: { datasetId: id }, include: { image: true } });
    const groupOf = (label: 'female' | 'male', i: number) => rows.find((r) => r.image.sha256 === sha(readDatasetImage(label, i)))!.groupKey;
    expect([10, 11, 12, 13, 14].map((i) => groupOf('female', i))).toEqual(['set/female/run-1', 'set/female/run-1', 'set/female/run-1', 'set/female/run-5', 'set/female/run-5']);
    expect([10, 11, 12, 15].map((i) => groupOf('male', i))).toEqual(['set/male/run-1', 'set/male/run-1', 'set/male/run-9', null]);
  });

  it('skips path traversal, absolute paths, symlinks, nested archives and backslashes, and writes nothing outside', async () => {
    const id = await newDataset('zip-hostile');
    const img = (i: number) => readDatasetImage('female', 20 + i);
    const evil = path.resolve(process.cwd(), '..', '..', 'evil.jpg');
    const evilTmp = path.resolve(os.tmpdir(), '..', 'evil.jpg');
    const res = ok(
      await importZip(
        id,
        buildZip([
          { name: '../../evil.jpg', data: img(0) },
          { name: 'female/../../evil.jpg', data: img(1) },
          { name: '/etc/female/x.jpg', data: img(2) },
          { name: 'female/link.jpg', data: Buffer.from('/etc/passwd'), symlink: true },
          { name: 'female/inner.zip', data: buildZip([{ name: 'female/a.jpg', data: img(3) }]) },
          { name: 'female\\win.jpg', data: img(4) },
          { name: 'female/good.jpg', data: img(5) },
        ]),
      ),
    ).importDatasetArchive;
    expect(res).toMatchObject({ imported: 1, skipped: 6 });
    const reasons = Object.fromEntries(res.files.map((f: { name: string; reason: string }) => [f.name, f.reason]));
    expect(reasons['../../evil.jpg']).toMatch(/traversal/);
    expect(reasons['female/../../evil.jpg']).toMatch(/traversal/);
    expect(reasons['/etc/female/x.jpg']).toMatch(/absolute/);
    expect(reasons['female/link.jpg']).toMatch(/symbolic link/);
    expect(reasons['female/inner.zip']).toMatch(/nested archive/);
    expect(reasons['female\\win.jpg']).toMatch(/backslash/);
    expect(fs.existsSync(evil)).toBe(false);
    expect(fs.existsSync(evilTmp)).toBe(false);
    expect(await count(id)).toBe(1);
    expect(spools()).toEqual([]);
  });

  it('refuses a zip bomb that declares more than the uncompressed limit, importing nothing', async () => {
    const id = await newDataset('zip-bomb');
    const bomb = buildZip([
      { name: 'female/ok.jpg', data: readDatasetImage('female', 30) },
      { name: 'female/bomb.jpg', data: Buffer.alloc(LIMITS.maxUncompressedBytes + 1) },
    ]);
    expect(bomb.length).toBeLessThan(20_000);
    const res = await importZip(id, bomb);
    expect(errorCode(res)).toBe('PAYLOAD_TOO_LARGE');
    expect(res.errors?.[0].message).toMatch(/would expand to/);
    expect(await count(id)).toBe(0);
    expect(spools()).toEqual([]);
  });

  it('skips one oversized entry and one whose header lies about its size, without inflating them past the limit', async () => {
    const id = await newDataset('zip-big-entry');
    const res = ok(
      await importZip(
        id,
        buildZip([
          { name: 'male/honest-but-big.jpg', data: Buffer.alloc(500_000) },
          { name: 'male/liar.jpg', data: Buffer.alloc(2_500_000), declaredSize: 1000 },
          { name: 'male/ok.jpg', data: readDatasetImage('male', 30) },
        ]),
      ),
    ).importDatasetArchive;
    expect(res).toMatchObject({ imported: 1, skipped: 2 });
    expect(res.files[0]).toMatchObject({ status: 'SKIPPED', code: 'PAYLOAD_TOO_LARGE' });
    expect(res.files[1]).toMatchObject({ status: 'SKIPPED', code: 'BAD_USER_INPUT' });
    expect(res.files[1].reason).toMatch(/too many bytes/);
    expect(res.files[2]).toMatchObject({ status: 'IMPORTED', label: 'MALE' });
  });

  it('refuses too many entries, oversized archives, non-zip uploads and unknown datasets', async () => {
    const id = await newDataset('zip-limits');
    const many = buildZip(Array.from({ length: LIMITS.maxEntries + 1 }, (_, i) => ({ name: `female/${i}.txt`, data: Buffer.from(String(i)) })));
    const tooMany = await importZip(id, many);
    expect(errorCode(tooMany)).toBe('PAYLOAD_TOO_LARGE');
    expect(tooMany.errors?.[0].message).toMatch(/entries/);

    const huge = buildZip([{ name: 'female/noise.bin', data: randomBytes(LIMITS.maxBytes + 1000), store: true }]);
    expect(errorCode(await importZip(id, huge))).toBe('PAYLOAD_TOO_LARGE');

    const notZip = await importZip(id, readDatasetImage('female', 31));
    expect(errorCode(notZip)).toBe('UNSUPPORTED_MEDIA_TYPE');
    const corrupt = await importZip(id, Buffer.concat([Buffer.from('PK\x03\x04'), randomBytes(2000)]));
    expect(errorCode(corrupt)).toBe('BAD_USER_INPUT');
    expect(corrupt.errors?.[0].message).toMatch(/not a readable ZIP/);

    expect(errorCode(await importZip('00000000-0000-0000-0000-000000000000', buildZip([])))).toBe('NOT_FOUND');
    expect(errorCode(await importZip(id, buildZip([]), t.keys.AUDITOR))).toBe('FORBIDDEN');
    const empty = ok(await importZip(id, buildZip([]))).importDatasetArchive;
    expect(empty).toMatchObject({ imported: 0, duplicates: 0, skipped: 0, files: [] });
    expect(await count(id)).toBe(0);
    expect(spools()).toEqual([]);
  });
});
