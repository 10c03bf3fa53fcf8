import sharp from 'sharp';
import { adminQuery } from '../support/db.js';
import { errorCode, ok, startTestApp, type TestApp } from '../support/harness.js';
import { readDatasetImage, syntheticImage } from '../support/images.js';

const CREATE = `mutation($input: CreateCaseInput!) { createCase(input: $input) { id reference title description status createdAt closedAt } }`;
const ADD = `mutation($caseId: ID!, $file: Upload!, $note: String) {
  addEvidence(caseId: $caseId, file: $file, note: $note) { id note caseId image { sha256 byteSize mediaType width height url } }
}`;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ uploads: { maxFileBytes: 200_000, maxFiles: 5, maxDatasetFilesPerRequest: 5 } });
});
afterAll(() => t.stop());

async function newCase(title = 'Case', reference?: string) {
  return ok(await t.gql(CREATE, { input: { title, reference } })).createCase;
}

describe('cases', () => {
  it('creates, updates, closes and finds cases', async () => {
    const c = await newCase('Robbery at the station', 'ref-2026-001');
    expect(c).toMatchObject({ reference: 'REF-2026-001', status: 'OPEN', closedAt: null });

    const updated = ok(await t.gql(`mutation($id: ID!) { updateCase(id: $id, input: { description: "CCTV frames" }) { title description } }`, { id: c.id })).updateCase;
    expect(updated).toEqual({ title: 'Robbery at the station', description: 'CCTV frames' });

    const byRef = ok(await t.gql(`query { caseByReference(reference: "ref-2026-001") { id createdBy { name role } } }`)).caseByReference;
    expect(byRef).toEqual({ id: c.id, createdBy: { name: 'test investigator', role: 'INVESTIGATOR' } });

    const closed = ok(await t.gql(`mutation($id: ID!) { closeCase(id: $id, reason: "solved") { status closedAt } }`, { id: c.id })).closeCase;
    expect(closed.status).toBe('CLOSED');
    expect(closed.closedAt).not.toBeNull();

    const again = await t.gql(`mutation($id: ID!) { closeCase(id: $id) { status } }`, { id: c.id });
    expect(errorCode(again)).toBe('CONFLICT');
    const change = await t.gql(`mutation($id: ID!) { updateCase(id: $id, input: { title: "x" }) { title } }`, { id: c.id });
    expect(errorCode(change)).toBe('CONFLICT');
  });

  it('generates a reference when none is given and refuses duplicates and bad input', async () => {
    const c = await newCase('No reference given');
    expect(c.reference).toMatch(/^CASE-\d{4}-[A-Z0-9]{6}$/);
    expect(errorCode(await t.gql(CREATE, { input: { title: 'dup', reference: c.reference } }))).toBe('CONFLICT');
    expect(errorCode(await t.gql(CREATE, { input: { title: '   ' } }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(CREATE, { input: { title: 'x', reference: 'no spaces allowed' } }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(CREATE, { input: { title: 'x'.repeat(201) } }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(CREATE, { input: { title: 'nul \u0000 inside' } }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(`query($r: String!) { caseByReference(reference: $r) { id } }`, { r: 'A\u0000B' }))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(`query { case(id: "00000000-0000-0000-0000-000000000000") { id } }`))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(`query { case(id: "not-a-uuid") { id } }`))).toBe("BAD_USER_INPUT");
    expect(errorCode(await t.gql(`query { caseByReference(reference: "NOPE-1") { id } }`))).toBe('NOT_FOUND');
    expect(errorCode(await t.gql(`mutation { updateCase(id: "${c.id}", input: {}) { id } }`))).toBe('BAD_USER_INPUT');
  });

  it('paginates with cursors and filters by status and text', async () => {
    const marker = `pag${Date.now()}`;
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await newCase(`${marker} case ${i}`));
    await t.gql(`mutation($id: ID!) { closeCase(id: $id) { id } }`, { id: made[0].id });

    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const res: any = ok(await t.gql(`query($after: String) { cases(first: 2, after: $after, filter: { text: "${marker.toUpperCase()}" }) { nodes { id title } pageInfo { endCursor hasNextPage } } }`, { after }));
      seen.push(...res.cases.nodes.map((n: { id: string }) => n.id));
      if (!res.cases.pageInfo.hasNextPage) break;
      after = res.cases.pageInfo.endCursor;
    }
    expect(seen).toEqual(made.map((c) => c.id).reverse());

    const open = ok(await t.gql(`query { cases(first: 100, filter: { status: CLOSED, text: "${marker}" }) { nodes { id } } }`)).cases.nodes;
    expect(open.map((n: { id: string }) => n.id)).toEqual([made[0].id]);

    expect(errorCode(await t.gql(`query { cases(first: 0) { nodes { id } } }`))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(`query { cases(first: 101) { nodes { id } } }`))).toBe('BAD_USER_INPUT');
    expect(errorCode(await t.gql(`query { cases(after: "garbage") { nodes { id } } }`))).toBe('BAD_USER_INPUT');
  });
});

describe('evidence', () => {
  it('stores a real eye image with its measured properties and a working presigned URL', async () => {
    const c = await newCase('Evidence case');
    const bytes = readDatasetImage('female', 3);
    const ev = ok(await t.upload(ADD, { caseId: c.id, file: null, note: ' frame 12 ' }, { file: { name: 'frame.jpg', bytes } })).addEvidence;
    expect(ev.note).toBe('frame 12');
    expect(ev.image).toMatchObject({ mediaType: 'image/jpeg', byteSize: bytes.length });
    expect(ev.image.width).toBeGreaterThan(30);
    const res = await fetch(ev.image.url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);

    const list = ok(await t.gql(`query($id: ID!) { case(id: $id) { evidence { nodes { id image { sha256 } addedBy { role } case { id } } } } }`, { id: c.id })).case.evidence.nodes;
    expect(list).toEqual([{ id: ev.id, image: { sha256: ev.image.sha256 }, addedBy: { role: 'INVESTIGATOR' }, case: { id: c.id } }]);
  });

  it('accepts PNG and WebP judged from the bytes, whatever the file name says', async () => {
    const c = await newCase('Formats');
    const png = ok(await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'photo.jpg', bytes: await syntheticImage(1, 'png') } })).addEvidence;
    const webp = ok(await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'photo.png', bytes: await syntheticImage(2, 'webp') } })).addEvidence;
    expect(png.image.mediaType).toBe('image/png');
    expect(webp.image.mediaType).toBe('image/webp');
    expect([png.image.width, png.image.height]).toEqual([48, 48]);
  });

  it('stores the same bytes once, shared by two cases, and refuses the same image twice in one case', async () => {
    const a = await newCase('A');
    const b = await newCase('B');
    const bytes = await syntheticImage(3, 'jpeg');
    const e1 = ok(await t.upload(ADD, { caseId: a.id, file: null }, { file: { name: 'x.jpg', bytes } })).addEvidence;
    const e2 = ok(await t.upload(ADD, { caseId: b.id, file: null }, { file: { name: 'y.jpg', bytes } })).addEvidence;
    expect(e1.image.sha256).toBe(e2.image.sha256);
    const images = await t.services.db.image.count({ where: { sha256: e1.image.sha256 } });
    expect(images).toBe(1);
    expect(await t.services.store.listKeys(`images/${e1.image.sha256.slice(0, 2)}/${e1.image.sha256}`)).toHaveLength(1);
    const dup = await t.upload(ADD, { caseId: a.id, file: null }, { file: { name: 'x.jpg', bytes } });
    expect(errorCode(dup)).toBe('CONFLICT');
  });

  it('refuses what it cannot accept, with a stable code, and leaves nothing behind', async () => {
    const c = await newCase('Bad uploads');
    const before = { images: await t.services.db.image.count(), evidence: await t.services.db.evidence.count() };
    const objectsBefore = (await t.services.store.listKeys('images/')).length;

    const text = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'eye.jpg', bytes: Buffer.from('definitely not an image') } });
    expect(errorCode(text)).toBe('UNSUPPORTED_MEDIA_TYPE');

    const jpeg = readDatasetImage('male', 0);
    const truncated = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'cut.jpg', bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)) } });
    expect(errorCode(truncated)).toBe('BAD_USER_INPUT');

    const empty = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'empty.png', bytes: Buffer.alloc(0) } });
    expect(errorCode(empty)).toBe('BAD_USER_INPUT');

    const big = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'big.png', bytes: Buffer.concat([await syntheticImage(9, 'png'), Buffer.alloc(250_000)]) } });
    expect(errorCode(big)).toBe('PAYLOAD_TOO_LARGE');

    // Larger than the engine decodes (6000 x 4000 pixels in 78 KB): refused here, so that nothing
    // stored can later fail to classify.
    const huge = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: { r: 90, g: 60, b: 40 } } }).png({ compressionLevel: 9 }).toBuffer();
    const tooManyPixels = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'huge.png', bytes: huge } });
    expect(errorCode(tooManyPixels)).toBe('PAYLOAD_TOO_LARGE');
    // A plain JPEG's size is read from its frame header rather than by sharp: the same refusal.
    const hugeJpeg = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: { r: 90, g: 60, b: 40 } } }).jpeg({ quality: 50 }).toBuffer();
    const tooManyJpegPixels = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'huge.jpg', bytes: hugeJpeg } });
    expect(errorCode(tooManyJpegPixels)).toBe('PAYLOAD_TOO_LARGE');
    expect(tooManyPixels.errors![0].message).toMatch(/6000x4000 pixels; at most 16,777,216/);

    const missingCase = await t.upload(ADD, { caseId: '00000000-0000-0000-0000-000000000000', file: null }, { file: { name: 'a.png', bytes: await syntheticImage(10) } });
    expect(errorCode(missingCase)).toBe('NOT_FOUND');

    const noPreflight = await t.upload(ADD, { caseId: c.id, file: null }, { file: { name: 'a.png', bytes: await syntheticImage(11) } }, t.keys.INVESTIGATOR, {});
    expect(noPreflight.status).toBe(400);

    const closed = await newCase('Closed');
    await t.gql(`mutation($id: ID!) { closeCase(id: $id) { id } }`, { id: closed.id });
    const toClosed = await t.upload(ADD, { caseId: closed.id, file: null }, { file: { name: 'a.png', bytes: await syntheticImage(12) } });
    expect(errorCode(toClosed)).toBe('CONFLICT');
    expect(toClosed.errors?.[0].message).toMatch(/closed/);

    expect(await t.services.db.image.count()).toBe(before.images);
    expect(await t.services.db.evidence.count()).toBe(before.evidence);
    expect((await t.services.store.listKeys('images/')).length).toBe(objectsBefore);
  });

  it('refuses more files than the request limit', async () => {
    const c = await newCase('Too many');
    const files: Record<string, { name: string; bytes: Buffer }> = {};
    for (let i = 0; i < 6; i++) files[`f${i}`] = { name: `${i}.png`, bytes: await syntheticImage(100 + i) };
    const res = await t.upload(ADD, { caseId: c.id, file: null, ...Object.fromEntries(Object.keys(files).map((k) => [k, null])) }, files);
    expect(res.status).toBe(413);
    expect(errorCode(res)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('removes the new object when the database write fails after the upload was stored', async () => {
    const c = await newCase('Failing write');
    // A real database failure after the bytes are in the object store: a trigger refuses the row.
    await adminQuery(
      `CREATE FUNCTION fail_evidence() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.note = 'FAIL' THEN RAISE EXCEPTION 'simulated failure'; END IF; RETURN NEW; END $$;
       CREATE TRIGGER fail_evidence BEFORE INSERT ON "Evidence" FOR EACH ROW EXECUTE FUNCTION fail_evidence();`,
      t.db.name,
    );
    const bytes = await syntheticImage(4242, 'png');
    const objectsBefore = await t.services.store.listKeys('images/');
    const res = await t.upload(ADD, { caseId: c.id, file: null, note: 'FAIL' }, { file: { name: 'x.png', bytes } });
    expect(errorCode(res)).toBe('INTERNAL_SERVER_ERROR');
    expect(res.errors?.[0].message).toBe('Internal server error');
    expect(JSON.stringify(res)).not.toMatch(/simulated failure|stack/);
    expect(await t.services.store.listKeys('images/')).toEqual(objectsBefore);
    expect(await t.services.db.evidence.count({ where: { caseId: c.id } })).toBe(0);

    // The same bytes succeed afterwards: the object is stored again.
    const ev = ok(await t.upload(ADD, { caseId: c.id, file: null, note: 'ok' }, { file: { name: 'x.png', bytes } })).addEvidence;
    expect((await fetch(ev.image.url)).status).toBe(200);
  });
});
