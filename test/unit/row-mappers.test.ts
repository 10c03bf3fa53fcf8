// The typed mappers that turn plain-SQL rows into domain objects: they convert what each driver
// returns (node-postgres: int8 as text; Prisma's raw queries: int8 as bigint) and refuse a row whose
// column is missing or of the wrong type, naming the column.
import { connectionBudget } from '../../src/db/connections.js';
import { bigint } from '../../src/db/rows.js';
import { caseFromRow } from '../../src/modules/cases/case.store.js';
import { evidenceFromRow } from '../../src/modules/evidence/evidence.store.js';
import { imageFromRow } from '../../src/modules/images/image.store.js';
import { predictionFromRow } from '../../src/modules/predictions/prediction.store.js';

const createdAt = new Date('2026-11-28T10:00:00.000Z');
const imageRow = { id: 'a1', sha256: 'f'.repeat(64), byteSize: 5120, mediaType: 'image/jpeg', width: 64, height: 48, objectKey: 'images/ff/ff', createdAt };

describe('row mappers', () => {
  it('map a complete row to the domain object', () => {
    expect(imageFromRow(imageRow)).toEqual(imageRow);
    expect(imageFromRow({ image_id: 'a1', ...Object.fromEntries(Object.entries(imageRow).map(([k, v]) => [`image_${k}`, v])) }, 'image_')).toEqual(imageRow);
    const kase = { id: 'c1', reference: 'CASE-1', title: 't', description: null, status: 'OPEN', createdAt, updatedAt: createdAt, closedAt: null, createdById: 'k1' };
    expect(caseFromRow(kase)).toEqual(kase);
  });

  it('name the column that is missing', () => {
    const { byteSize: _, ...withoutSize } = imageRow;
    expect(() => imageFromRow(withoutSize)).toThrow('column "byteSize": expected an integer, got no such column');
    const evidence = { id: 'e1', caseId: 'c1', imageId: 'a1', note: null, addedById: 'k1' };
    expect(() => evidenceFromRow(evidence)).toThrow('column "createdAt": expected a timestamp, got no such column');
  });

  it('name the column of the wrong type, null where none is allowed, or a value outside an enum', () => {
    expect(() => imageFromRow({ ...imageRow, width: '64' })).toThrow('column "width": expected an integer, got string');
    expect(() => imageFromRow({ ...imageRow, createdAt: '2026-11-28' })).toThrow('column "createdAt": expected a timestamp, got string');
    expect(() => imageFromRow({ ...imageRow, sha256: null })).toThrow('column "sha256": expected text, got null');
    const kase = { id: 'c1', reference: 'CASE-1', title: 't', description: null, status: 'REOPENED', createdAt, updatedAt: createdAt, closedAt: null, createdById: 'k1' };
    expect(() => caseFromRow(kase)).toThrow('column "status": expected OPEN | CLOSED, got string');
    const prediction = {
      id: 'p1', caseId: 'c1', evidenceId: 'e1', imageSha256: 'f'.repeat(64), modelVersionId: 'm1', artifactSha256: 'a'.repeat(64), backend: 'onnxruntime', preprocessingVersion: '2',
      thresholdFemale: 0.4, thresholdMale: 0.6, probFemale: 0.9, probMale: 0.1, decision: 'FEMALE', guardScore: null, guardThreshold: null, latencyMs: 3.5, requestedById: 'k1', createdAt,
    };
    expect(predictionFromRow(prediction)).toEqual(prediction);
    expect(() => predictionFromRow({ ...prediction, probFemale: '0.9' })).toThrow('column "probFemale": expected a number, got string');
  });

  it('read int8 as either driver returns it', () => {
    expect(bigint({ seq: '9007199254740993' }, 'seq')).toBe(9007199254740993n);
    expect(bigint({ seq: 12n }, 'seq')).toBe(12n);
    expect(() => bigint({ seq: '12.5' }, 'seq')).toThrow('column "seq": expected an int8, got string');
  });
});

describe('connection budget', () => {
  it('states every connection of each kind of process', () => {
    expect(connectionBudget('api')).toEqual({ application: 10, queue: 4, listen: 1, total: 15 });
    expect(connectionBudget('worker')).toEqual({ application: 4, queue: 4, listen: 1, total: 9 });
    // A one-shot command without the job queue and the event listener.
    expect(connectionBudget('command', false)).toEqual({ application: 4, queue: 0, listen: 0, total: 4 });
  });
});
