// Datasets through GraphQL alone, as an admin: create, add images (uploads), remove, snapshot,
// read versions and their manifests; on real PostgreSQL and a real S3 server.
import { createHash, randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { adminQuery } from '../support/db.js';
import { errorCode, ok, startTestApp, type TestApp, type UploadFile } from '../support/harness.js';
import { readDatasetImage, syntheticImage } from '../support/images.js';

const ZERO = '00000000-0000-0000-0000-000000000000';
const CREATE = `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id name description createdAt createdBy { name } counts { female male total } } }`;
const ADD = `mutation($id: ID!, $label: Sex!, $files: [Upload!]!) {
  addDatasetImages(datasetId: $id, label: $label, files: $files) {
    imported duplicates skipped
    files { name status label sha256 itemId reason code }
    dataset { id counts { female male total } }
  }
}`;
const SNAPSHOT = `mutation($id: ID!) { snapshotDataset(datasetId: $id) { id version itemCount femaleCount maleCount manifestSha256 manifestKey manifestUrl counts { female male total } dataset { name } createdBy { name } } }`;
const VERSION = `query($id: ID!) { datasetVersion(id: $id) { id version itemCount femaleCount maleCount manifestSha256 manifestUrl counts { female male total } } }`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ uploads: { maxFileBytes: 100_000, maxFiles: 20, maxDatasetFilesPerRequest: 8 } });
  admin = t.keys.ADMIN;
});
afterAll(() => t.stop());

const createDataset = async (name: string, description?: string) => ok(await t.gql(CREATE, { input: { name, description } }, admin)).createDataset;

function addFiles(datasetId: string, label: 'FEMALE' | 'MALE', files: UploadFile[], key = admin) {
  return t.upload(ADD, { id: datasetId, label, files: files.map(() => null) }, Object.fromEntries(files.map((f, i) => [`files.${i}`, f])), key);
}
const real = (label: 'female' | 'male', i: number): UploadFile => ({ name: `${label}-${i}.jpg`, bytes: readDatasetImage(label, i), type: 'image/jpeg' });

describe('dataset groups (people)', () => {
  const ADD_GROUPED = `mutation($id: ID!, $label: Sex!, $files: [Upload!]!, $g: [String]) {
    addDatasetImages(datasetId: $id, label: $label, files: $files, groupKeys: $g) { imported files { name status itemId } }
  }`;
  const addGrouped = (id: string, files: UploadFile[], g: Array<string | null> | null) =>
    t.upload(ADD_GROUPED, { id, label: 'FEMALE', files: files.map(() => null), g }, Object.fromEntries(files.map((f, i) => [`files.${i}`, f])), admin);
  const SET = `mutation($id: ID!, $g: String) { setDatasetItemGroup(id: $id, groupKey: $g) { id groupKey label } }`;

  it('takes one group key per uploaded file, lets an admin change it, and keeps it in the frozen version and its manifest', async () => {
    const d = await createDataset('eyes-groups');
    expect(errorCode(await addGrouped(d.id, [real('female', 20), real('female', 21)], ['p1']))).toBe('BAD_USER_INPUT');
    expect(errorCode(await addGrouped(d.id, [real('female', 20)], ['x'.repeat(201)]))).toBe('BAD_USER_INPUT');
    expect((await t.services.db.datasetItem.count({ where: { datasetId: d.id } }))).toBe(0);
    const res = ok(await addGrouped(d.id, [real('female', 20), real('female', 21), real('female', 22)], ['  person-7 ', 'person-7', null])).addDatasetImages;
    expect(res.imported).toBe(3);
    const items = ok(await t.gql(`query($id: ID!) { dataset(id: $id) { items(first: 10) { nodes { id groupKey image { sha256 } } } } }`, { id: d.id }, admin)).dataset.items.nodes;
    const byItem = Object.fromEntries(items.map((i: { id: string; groupKey: string | null }) => [i.id, i.groupKey]));
    expect(res.files.map((f: { itemId: string }) => byItem[f.itemId])).toEqual(['person-7', 'person-7', null]);

    const third = res.files[2].itemId;
    expect(ok(await t.gql(SET, { id: third, g: 'person-8' }, admin)).setDatasetItemGroup).toMatchObject({ id: third, groupKey: 'person-8', label: 'FEMALE' });
    expect(errorCode(await t.gql(SET, { id: third, g: 'person-9' }, t.keys.INVESTIGATOR))).toBe('FORBIDDEN');
    expect(errorCode(await t.gql(SET, { id: ZERO, g: 'p' }, admin))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(SET, { id: third, g: 'y'.repeat(300) }, admin))).toBe('BAD_USER_INPUT');
    const audit = await t.services.db.auditEvent.findFirstOrThrow({ where: { action: 'dataset.item.group', entityId: third } });
    expect(audit.details).toMatchObject({ from: null, to: 'person-8' });

    const v = ok(await t.gql(SNAPSHOT, { id: d.id }, admin)).snapshotDataset;
    expect(ok(await t.gql(SET, { id: third, g: null }, admin)).setDatasetItemGroup.groupKey).toBeNull();
    const { manifest } = await t.services.datasetVersions.readManifest(v.id);
    expect(manifest.format).toBe('eyecase.dataset-manifest/2');
    expect(manifest.items.map((i) => i.group).sort()).toEqual(['person-7', 'person-7', 'person-8']);
    const frozen = await t.services.datasetVersions.listVersionItems(v.id);
    expect(frozen.map((i) => i.groupKey).sort()).toEqual(['person-7', 'person-7', 'person-8']);
  });
});

describe('datasets', () => {
  it('creates datasets, refuses duplicate names and bad input, and lists them', async () => {
    const d = await createDataset('eyes-a', 'first set');
    expect(d).toMatchObject({ name: 'eyes-a', description: 'first set', createdBy: { name: 'test admin' }, counts: { female: 0, male: 0, total: 0 } });
    expect(errorCode(await t.gql(CREATE, { input: { name: 'eyes-a' } }, admin))).toBe('CONFLICT');
    expect(errorCode(await t.gql(CREATE, { input: { name: '  eyes-a ' } }, admin))).toBe('CONFLICT');
    expect(errorCode(await t.gql(CREATE, { input: { name: '   ' } }, admin))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(CREATE, { input: { name: 'x'.repeat(101) } }, admin))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(`{ dataset(id: "${ZERO}") { id } }`, {}, admin))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(`{ dataset(id: "nope") { id } }`, {}, admin))).toBe('BAD_USER_INPUT');
    const listed = ok(await t.gql(`{ datasets(first: 100) { nodes { id name counts { total } } pageInfo { hasNextPage } } }`, {}, t.keys.AUDITOR)).datasets;
    expect(listed.nodes.map((n: { name: string }) => n.name)).toContain('eyes-a');
  });

  it('adds uploaded images, reports duplicates and bad files per file, and counts per class', async () => {
    const d = await createDataset('eyes-uploads');
    const f0 = real('female', 0);
    const truncated = readDatasetImage('female', 9).subarray(0, 600);
    const big = await sharp(randomBytes(250 * 250 * 3), { raw: { width: 250, height: 250, channels: 3 } }).png().toBuffer(); // noise: over 100 kB
    expect(big.length).toBeGreaterThan(100_000);
    const res = ok(
      await addFiles(d.id, 'FEMALE', [
        f0,
        real('female', 1),
        real('female', 2),
        { name: 'copy-of-0.jpg', bytes: f0.bytes },
        { name: 'notes.jpg', bytes: Buffer.from('this is not an image') },
        { name: 'truncated.jpg', bytes: truncated },
        { name: 'big.png', bytes: big },
        real('female', 3),
      ]),
    ).addDatasetImages;
    expect(res).toMatchObject({ imported: 4, duplicates: 1, skipped: 3, dataset: { counts: { female: 4, male: 0, total: 4 } } });
    const byName = Object.fromEntries(res.files.map((f: { name: string }) => [f.name, f]));
    expect(res.files.map((f: { name: string }) => f.name)).toEqual(['female-0.jpg', 'female-1.jpg', 'female-2.jpg', 'copy-of-0.jpg', 'notes.jpg', 'truncated.jpg', 'big.png', 'female-3.jpg']);
    expect(byName['female-0.jpg']).toMatchObject({ status: 'IMPORTED', label: 'FEMALE', sha256: sha(f0.bytes), reason: null });
    expect(byName['copy-of-0.jpg']).toMatchObject({ status: 'DUPLICATE', sha256: sha(f0.bytes), itemId: byName['female-0.jpg'].itemId });
    expect(byName['copy-of-0.jpg'].reason).toMatch(/female-0\.jpg.*earlier in this request/);
    expect(byName['notes.jpg']).toMatchObject({ status: 'SKIPPED', code: 'UNSUPPORTED_MEDIA_TYPE', itemId: null });
    expect(byName['truncated.jpg']).toMatchObject({ status: 'SKIPPED', code: 'BAD_USER_INPUT' });
    expect(byName['truncated.jpg'].reason).toMatch(/could not be decoded/);
    expect(byName['big.png']).toMatchObject({ status: 'SKIPPED', code: 'PAYLOAD_TOO_LARGE' });

    // Again, with one new file and a known one under the other label.
    const again = ok(await addFiles(d.id, 'MALE', [real('male', 0), { ...f0, name: 'f0-as-male.jpg' }])).addDatasetImages;
    expect(again).toMatchObject({ imported: 1, duplicates: 1, skipped: 0, dataset: { counts: { female: 4, male: 1, total: 5 } } });
    expect(again.files[1]).toMatchObject({ status: 'DUPLICATE', itemId: byName['female-0.jpg'].itemId });
    expect(again.files[1].reason).toMatch(/already in the dataset.*labelled FEMALE/);

    // Stored once per SHA-256; items readable with their images.
    expect(await t.services.store.listKeys(`images/${sha(f0.bytes).slice(0, 2)}/${sha(f0.bytes)}`)).toHaveLength(1);
    const items = ok(await t.gql(`query($id: ID!) { dataset(id: $id) { items(first: 100, filter: { label: FEMALE }) { nodes { id label image { sha256 mediaType width height url } addedBy { name } } } } }`, { id: d.id }, t.keys.AUDITOR)).dataset.items.nodes;
    expect(items).toHaveLength(4);
    expect(items[0]).toMatchObject({ label: 'FEMALE', image: { mediaType: 'image/jpeg' }, addedBy: { name: 'test admin' } });
    expect((await fetch(items[0].image.url)).status).toBe(200);
    const bySha = ok(await t.gql(`query($id: ID!, $s: String) { dataset(id: $id) { items(filter: { sha256: $s }) { nodes { id } } } }`, { id: d.id, s: sha(f0.bytes) }, admin)).dataset.items.nodes;
    expect(bySha).toEqual([{ id: byName['female-0.jpg'].itemId }]);
  });

  it('refuses too many files, unknown datasets and other roles as whole requests', async () => {
    const d = await createDataset('eyes-limits');
    const nine: UploadFile[] = [];
    for (let i = 0; i < 9; i++) nine.push({ name: `s${i}.png`, bytes: await syntheticImage(300 + i) });
    const tooMany = await addFiles(d.id, 'FEMALE', nine);
    expect(errorCode(tooMany)).toBe('PAYLOAD_TOO_LARGE');
    expect(tooMany.errors?.[0].message).toMatch(/limit is 8/);
    expect(await t.services.db.datasetItem.count({ where: { datasetId: d.id } })).toBe(0);
    expect(errorCode(await addFiles(ZERO, 'FEMALE', nine.slice(0, 1)))).toBe('NOT_FOUND');
    expect(errorCode(await addFiles(d.id, 'FEMALE', nine.slice(0, 1), t.keys.INVESTIGATOR))).toBe('FORBIDDEN');
    expect(errorCode(await addFiles(d.id, 'FEMALE', nine.slice(0, 1), t.keys.AUDITOR))).toBe('FORBIDDEN');
  });

  it('snapshots into immutable versions whose manifest hashes to manifestSha256', async () => {
    const d = await createDataset('eyes-snap');
    expect(errorCode(await t.gql(SNAPSHOT, { id: d.id }, admin))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(SNAPSHOT, { id: ZERO }, admin))).toBe('NOT_FOUND');
    const females = [4, 5, 6, 7, 8].map((i) => real('female', i));
    const males = [4, 5, 6].map((i) => real('male', i));
    ok(await addFiles(d.id, 'FEMALE', females));
    ok(await addFiles(d.id, 'MALE', males));

    const v1 = ok(await t.gql(SNAPSHOT, { id: d.id }, admin)).snapshotDataset;
    expect(v1).toMatchObject({ version: 1, itemCount: 8, femaleCount: 5, maleCount: 3, counts: { female: 5, male: 3, total: 8 }, dataset: { name: 'eyes-snap' }, createdBy: { name: 'test admin' } });
    const manifestBytes = Buffer.from(await (await fetch(v1.manifestUrl)).arrayBuffer());
    expect(sha(manifestBytes)).toBe(v1.manifestSha256);
    expect(v1.manifestKey).toBe(`manifests/${v1.manifestSha256.slice(0, 2)}/${v1.manifestSha256}`);
    const manifest = JSON.parse(manifestBytes.toString('utf8'));
    const expected = [...females.map((f) => ({ sha256: sha(f.bytes), label: 'FEMALE', group: null })), ...males.map((f) => ({ sha256: sha(f.bytes), label: 'MALE', group: null }))].sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
    expect(manifest).toMatchObject({ format: 'eyecase.dataset-manifest/2', datasetId: d.id, datasetName: 'eyes-snap', version: 1, itemCount: 8, femaleCount: 5, maleCount: 3 });
    expect(manifest.items).toEqual(expected);
    // Canonical JSON: re-serialising with sorted keys gives the same bytes.
    const { canonicalJson } = await import('../../src/modules/audit/audit.service.js');
    expect(canonicalJson(manifest)).toBe(manifestBytes.toString('utf8'));

    // What the training worker reads.
    const items = await t.services.datasetVersions.listVersionItems(v1.id);
    expect(items.map((i) => ({ sha256: i.sha256, label: i.label, group: i.groupKey }))).toEqual(expected);
    expect(items[0].objectKey).toBe(`images/${items[0].sha256.slice(0, 2)}/${items[0].sha256}`);
    expect(typeof items[0].imageId).toBe('string');
    expect((await t.services.datasetVersions.readManifest(v1.id)).manifest.items).toEqual(expected);

    // Removing an item changes the dataset, not the version.
    const victim = ok(await t.gql(`query($id: ID!, $s: String) { dataset(id: $id) { items(filter: { sha256: $s }) { nodes { id } } } }`, { id: d.id, s: expected[0].sha256 }, admin)).dataset.items.nodes[0];
    const after = ok(await t.gql(`mutation($id: ID!) { removeDatasetItem(id: $id) { id counts { total } } }`, { id: victim.id }, admin)).removeDatasetItem;
    expect(after).toEqual({ id: d.id, counts: { total: 7 } });
    expect(errorCode(await t.gql(`mutation($id: ID!) { removeDatasetItem(id: $id) { id } }`, { id: victim.id }, admin))).toBe('NOT_FOUND');
    const v1Again = ok(await t.gql(VERSION, { id: v1.id }, t.keys.AUDITOR)).datasetVersion;
    expect(v1Again).toMatchObject({ version: 1, itemCount: 8, manifestSha256: v1.manifestSha256 });
    expect((await t.services.datasetVersions.listVersionItems(v1.id)).map((i) => i.sha256)).toEqual(expected.map((e) => e.sha256));

    const v2 = ok(await t.gql(SNAPSHOT, { id: d.id }, admin)).snapshotDataset;
    expect(v2).toMatchObject({ version: 2, itemCount: 7 });
    expect(v2.manifestSha256).not.toBe(v1.manifestSha256);

    // Concurrent snapshots get distinct, consecutive numbers.
    const many = await Promise.all([1, 2, 3].map(() => t.gql(SNAPSHOT, { id: d.id }, admin)));
    expect(many.map((r) => ok(r).snapshotDataset.version).sort()).toEqual([3, 4, 5]);
    const versions = ok(await t.gql(`query($id: ID!) { dataset(id: $id) { versions { version itemCount manifestSha256 } } }`, { id: d.id }, t.keys.AUDITOR)).dataset.versions;
    expect(versions.map((v: { version: number }) => v.version)).toEqual([5, 4, 3, 2, 1]);
    expect(errorCode(await t.gql(VERSION, { id: ZERO }, admin))).toBe('NOT_FOUND');
    await expect(t.services.datasetVersions.listVersionItems(ZERO)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('writes an audit event for every change, in a valid chain', async () => {
    const d = await createDataset('eyes-audited');
    const f = [real('female', 20), real('female', 21)];
    ok(await addFiles(d.id, 'FEMALE', [...f, { name: 'bad.jpg', bytes: Buffer.from('nope') }]));
    ok(await addFiles(d.id, 'FEMALE', f)); // nothing new: still on record
    const v = ok(await t.gql(SNAPSHOT, { id: d.id }, admin)).snapshotDataset;
    const item = ok(await t.gql(`query($id: ID!) { dataset(id: $id) { items { nodes { id } } } }`, { id: d.id }, admin)).dataset.items.nodes[0];
    ok(await t.gql(`mutation($id: ID!) { removeDatasetItem(id: $id) { id } }`, { id: item.id }, admin));

    const mine: Array<{ action: string; entityType: string; entityId: string; actor: string; details: any }> = [];
    for (const id of [d.id, v.id, item.id]) {
      mine.push(...ok(await t.gql(`query($id: String) { auditEvents(first: 100, filter: { entityId: $id }) { nodes { action entityType entityId actor details } } }`, { id }, t.keys.AUDITOR)).auditEvents.nodes);
    }
    expect(mine.map((e) => e.action)).toEqual(['dataset.create', 'dataset.items.add', 'dataset.items.add', 'dataset.snapshot', 'dataset.item.remove']);
    expect(mine.every((e) => e.actor === 'key:test admin')).toBe(true);
    expect(mine[1].details).toMatchObject({ source: 'upload', imported: 2, skipped: 1, duplicates: 0, female: f.map((x) => sha(x.bytes)).sort(), male: [] });
    expect(mine[2].details).toMatchObject({ imported: 0, duplicates: 2 });
    expect(mine[3].details).toMatchObject({ datasetId: d.id, version: 1, itemCount: 2, manifestSha256: v.manifestSha256 });
    expect(mine[4].details).toMatchObject({ datasetId: d.id, label: 'FEMALE' });
    expect(ok(await t.gql(`{ verifyAuditChain { ok } }`, {}, t.keys.AUDITOR)).verifyAuditChain.ok).toBe(true);
  });

  it('leaves no new objects behind when a batch or a snapshot fails in the database', async () => {
    const d = await createDataset('eyes-failing');
    await adminQuery(
      `CREATE FUNCTION fail_item() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW."datasetId" = '${d.id}' THEN RAISE EXCEPTION 'simulated failure'; END IF; RETURN NEW; END $$;
       CREATE TRIGGER fail_item BEFORE INSERT ON "DatasetItem" FOR EACH ROW EXECUTE FUNCTION fail_item();`,
      t.db.name,
    );
    const before = await t.services.store.listKeys('images/');
    const res = await addFiles(d.id, 'MALE', [{ name: 'n1.png', bytes: await syntheticImage(9001) }, { name: 'n2.png', bytes: await syntheticImage(9002) }]);
    expect(errorCode(res)).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(res)).not.toMatch(/simulated failure/);
    expect(await t.services.store.listKeys('images/')).toEqual(before);
    await adminQuery(`DROP TRIGGER fail_item ON "DatasetItem"`, t.db.name);

    ok(await addFiles(d.id, 'MALE', [real('male', 30)]));
    await adminQuery(
      `CREATE FUNCTION fail_version() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW."datasetId" = '${d.id}' THEN RAISE EXCEPTION 'simulated failure'; END IF; RETURN NEW; END $$;
       CREATE TRIGGER fail_version BEFORE INSERT ON "DatasetVersion" FOR EACH ROW EXECUTE FUNCTION fail_version();`,
      t.db.name,
    );
    const manifestsBefore = await t.services.store.listKeys('manifests/');
    expect(errorCode(await t.gql(SNAPSHOT, { id: d.id }, admin))).toBe('INTERNAL_SERVER_ERROR');
    expect(await t.services.store.listKeys('manifests/')).toEqual(manifestsBefore);
    await adminQuery(`DROP TRIGGER fail_version ON "DatasetVersion"`, t.db.name);
    expect(ok(await t.gql(SNAPSHOT, { id: d.id }, admin)).snapshotDataset.version).toBe(1);
  });
});
