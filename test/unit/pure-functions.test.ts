// Fast tests of the pure functions that rules rest on: no database, no server, no model.
import { sniffMediaType } from '../../src/images/probe.js';
import { chooseThresholds, decide } from '../../src/ml/evaluation.js';
import { oneCycleLr } from '../../src/ml/schedule.js';
import { previousProduction } from '../../src/modules/registry/registry.service.js';
import { mapLimit } from '../../src/shared/concurrency.js';
import { sha256Hex } from '../../src/shared/hash.js';
import { afterCursorWhere, decodeCursor, encodeCursor, MAX_PAGE_SIZE, pageSize } from '../../src/shared/pagination.js';

describe('cursor codec', () => {
  const row = { createdAt: new Date('2026-11-28T10:11:12.345Z'), id: '6b1f0a3e-1111-4222-8333-944445555666' };

  it('round-trips a row and is opaque (URL-safe base64)', () => {
    const cursor = encodeCursor(row);
    expect(cursor).toMatch(/^[\w-]+$/);
    expect(decodeCursor(cursor)).toEqual(row);
  });

  it('refuses what it did not make, as the caller\'s mistake', () => {
    for (const bad of ['', 'x', Buffer.from('[1,2]').toString('base64url'), Buffer.from('["not a date","id"]').toString('base64url'), Buffer.from('{}').toString('base64url')]) {
      expect(() => decodeCursor(bad)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
    }
  });

  it('selects rows strictly after the cursor, newest first', () => {
    expect(afterCursorWhere(null)).toEqual({});
    expect(afterCursorWhere(encodeCursor(row))).toEqual({ OR: [{ createdAt: { lt: row.createdAt } }, { createdAt: row.createdAt, id: { lt: row.id } }] });
  });

  it('bounds page sizes', () => {
    expect(pageSize(undefined)).toBe(20);
    expect(pageSize(MAX_PAGE_SIZE)).toBe(MAX_PAGE_SIZE);
    for (const bad of [0, -1, MAX_PAGE_SIZE + 1, 1.5]) expect(() => pageSize(bad)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
  });
});

describe('media type sniffing (from the bytes, never the name)', () => {
  it('recognises JPEG, PNG and WebP signatures', () => {
    expect(sniffMediaType(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]))).toBe('image/jpeg');
    expect(sniffMediaType(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe('image/png');
    expect(sniffMediaType(Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')]))).toBe('image/webp');
  });

  it('refuses everything else, including truncated signatures', () => {
    for (const bytes of [Buffer.alloc(0), Buffer.from([0xff, 0xd8]), Buffer.from('GIF89a'), Buffer.from('%PDF-1.7'), Buffer.from('RIFF0000WAVE'), Buffer.from('<svg/>')]) {
      expect(sniffMediaType(bytes)).toBeNull();
    }
  });
});

describe('one-cycle learning-rate schedule', () => {
  const total = 1000, max = 0.004;
  it('warms up linearly from max/10 over 15% of the steps, peaks at max, then decays to max/200', () => {
    expect(oneCycleLr(0, total, max)).toBeCloseTo(max / 10, 12);
    expect(oneCycleLr(75, total, max)).toBeCloseTo(max / 10 + (max - max / 10) / 2, 12);
    expect(oneCycleLr(150, total, max)).toBeCloseTo(max, 12);
    expect(oneCycleLr(total, total, max)).toBeCloseTo(max / 200, 12);
  });
  it('never rises after the peak and stays within its bounds', () => {
    let previous = Infinity;
    for (let step = 150; step <= total; step++) {
      const lr = oneCycleLr(step, total, max);
      expect(lr).toBeLessThanOrEqual(previous + 1e-15);
      expect(lr).toBeGreaterThanOrEqual(max / 200 - 1e-15);
      previous = lr;
    }
  });
});

describe('rollback follows production history as a stack', () => {
  const promote = (id: string) => ({ modelVersionId: id, toStage: 'PRODUCTION' as const, kind: 'PROMOTE' as const });
  const rollback = (id: string) => ({ modelVersionId: id, toStage: 'ARCHIVED' as const, kind: 'ROLLBACK' as const });
  it('goes back one promotion, then another, never to a withdrawn version', () => {
    expect(previousProduction([])).toBeNull();
    expect(previousProduction([promote('v1')])).toBeNull();
    expect(previousProduction([promote('v1'), promote('v2'), promote('v3')])).toBe('v2');
    expect(previousProduction([promote('v1'), promote('v2'), promote('v3'), rollback('v3')])).toBe('v1');
    expect(previousProduction([promote('v1'), promote('v2'), rollback('v2'), promote('v3')])).toBe('v1');
  });
});

describe('decision thresholds', () => {
  it('widens the inconclusive band until each side reaches the target accuracy', () => {
    // P(male) and truth (1 = male): the two confident ends are right, the middle is mixed.
    const p = [0.02, 0.05, 0.12, 0.3, 0.45, 0.55, 0.75, 0.9, 0.95, 0.98];
    const y = [0, 0, 0, 1, 0, 0, 1, 1, 1, 1];
    const t = chooseThresholds(p, y, 0.99);
    expect(t.female).toBeCloseTo(0.12, 12);
    expect(t.male).toBeCloseTo(0.75, 12);
    expect(p.map((v) => decide(v, t))).toEqual(['FEMALE', 'FEMALE', 'FEMALE', 'INCONCLUSIVE', 'INCONCLUSIVE', 'INCONCLUSIVE', 'MALE', 'MALE', 'MALE', 'MALE']);
  });
  it('never decides against the side of 0.5 it is on', () => {
    const t = { female: 0.6, male: 0.4 }; // a nonsensical band still cannot flip a decision
    expect(decide(0.45, t)).toBe('FEMALE');
    expect(decide(0.55, t)).toBe('MALE');
  });
});

describe('shared helpers', () => {
  it('mapLimit keeps input order and never has more than `limit` calls in flight', async () => {
    let inFlight = 0, most = 0;
    const delays = [30, 5, 20, 1, 15, 2, 8];
    const out = await mapLimit(delays, 3, async (ms, i) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return `${i}:${ms}`;
    });
    expect(out).toEqual(delays.map((ms, i) => `${i}:${ms}`));
    expect(most).toBe(3);
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
  it('sha256Hex gives the standard digest of bytes and of a string\'s UTF-8', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex('abc')).toBe(abc);
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(abc);
  });
});
