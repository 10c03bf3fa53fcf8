/** Person-aware splits: run-of-numbers groups, and no split ever divides a group. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { canonicalOrder, decodeItems, groupSplit, numberedRunGroups, readLabelledFolder } from '../../src/ml/data.js';
import { mulberry32 } from '../../src/ml/rng.js';
import { runGroupsOf } from '../../src/modules/datasets/archive.js';
import { EYE_FIXTURES_DIR } from '../support/images.js';

/** Every group's members are all in train or all in validation. */
function expectGroupsIntact(groups: readonly string[], split: { train: number[]; val: number[] }): void {
  const side = new Map<string, 'train' | 'val'>();
  for (const [name, idx] of [['train', split.train], ['val', split.val]] as const) {
    for (const i of idx) {
      const seen = side.get(groups[i]);
      if (seen && seen !== name) throw new Error(`group ${groups[i]} is on both sides of the split`);
      side.set(groups[i], name);
    }
  }
  expect(new Set([...split.train, ...split.val]).size).toBe(groups.length);
  expect(split.train.length + split.val.length).toBe(groups.length);
}

describe('groups', () => {
  test('a run of consecutive file numbers is one group; a missing number ends it; unnumbered files get none', () => {
    const names = ['1.jpg', '2.jpg', '3.jpg', '5.jpg', '6.png', '9.jpg', 'notes.jpg', '10.jpg', 'a7.jpg'];
    expect(numberedRunGroups(names, 'female/')).toEqual([
      'female/run-1', 'female/run-1', 'female/run-1', 'female/run-5', 'female/run-5', 'female/run-9', undefined, 'female/run-9', undefined,
    ]);
    // Order of listing does not matter.
    expect(numberedRunGroups(['3.jpg', '1.jpg', '2.jpg'])).toEqual(['run-1', 'run-1', 'run-1']);
  });

  test('imports group per folder: the same numbers in female/ and male/ are different people', () => {
    const g = runGroupsOf(['female/1.jpg', 'female/2.jpg', 'male/1.jpg', 'male/2.jpg', 'male/4.jpg', 'top/male/7.jpg', 'readme.txt']);
    expect(g.get('female/1.jpg')).toBe('female/run-1');
    expect(g.get('female/2.jpg')).toBe('female/run-1');
    expect(g.get('male/2.jpg')).toBe('male/run-1');
    expect(g.get('male/4.jpg')).toBe('male/run-4');
    expect(g.get('top/male/7.jpg')).toBe('top/male/run-7');
    expect(g.has('readme.txt')).toBe(false);
  });

  test('the split never divides a group, for many random group layouts and seeds', () => {
    for (let trial = 0; trial < 200; trial++) {
      const r = mulberry32(trial + 1);
      const n = 20 + Math.floor(r() * 400);
      const labels = new Uint8Array(n), groups: string[] = [];
      let g = 0;
      for (let i = 0; i < n; i++) {
        if (i === 0 || r() < 0.45) g++; // runs of 1 to several images
        labels[i] = g % 3 === 0 ? 1 : 0;
        // now and then a person with images under both labels
        if (r() < 0.02) labels[i] = 1 - labels[i];
        groups.push(`p${g}`);
      }
      const split = groupSplit(labels, groups, 0.05 + r() * 0.45, trial);
      expectGroupsIntact(groups, split);
      expect(split.val.length).toBeGreaterThan(0);
    }
  });

  test('whole groups go to validation and the class shares stay near the asked fraction', () => {
    const labels = new Uint8Array(3000).map((_, i) => (i < 1300 ? 0 : 1));
    const groups = Array.from(labels, (l, i) => `${l}:${Math.floor(i / 3)}`); // people with three images each
    const split = groupSplit(labels, groups, 0.2, 42);
    expectGroupsIntact(groups, split);
    const valFemale = split.val.filter((i) => labels[i] === 0).length, valMale = split.val.length - valFemale;
    expect(Math.abs(valFemale - 260)).toBeLessThanOrEqual(3);
    expect(Math.abs(valMale - 340)).toBeLessThanOrEqual(3);
    expect(groupSplit(labels, groups, 0.2, 42)).toEqual(split);
    expect(groupSplit(labels, groups, 0.2, 43).val).not.toEqual(split.val);
  });

  test('the split depends on the items, not on the order they were listed in', () => {
    const items = Array.from({ length: 60 }, (_, i) => ({ label: i % 2 ? 'MALE' : 'FEMALE', hash: `h${(i * 37) % 60}`, group: `g${Math.floor(i / 4)}` }));
    const splitOf = (list: typeof items) => {
      const { kept } = canonicalOrder(list);
      const s = groupSplit(Uint8Array.from(kept, (k) => (k.label === 'MALE' ? 1 : 0)), kept.map((k) => k.group), 0.25, 9);
      return s.val.map((i) => kept[i].hash).sort();
    };
    expect(splitOf([...items].reverse())).toEqual(splitOf(items));
  });

  test('a labelled folder of numbered files is read with its run groups, and the decoded set keeps them apart in the split', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'groups-'));
    try {
      for (const sub of ['female', 'male']) mkdirSync(path.join(dir, sub));
      const numbers = [1, 2, 3, 7, 8, 12, 13, 14, 15, 20, 21, 30, 31, 32, 40];
      for (const [k, n] of numbers.entries()) {
        for (const sub of ['female', 'male']) {
          const png = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: (k * 17) % 256, g: sub === 'male' ? 200 : 40, b: n } } }).png().toBuffer();
          writeFileSync(path.join(dir, sub, `${n}.png`), png);
        }
      }
      const items = await readLabelledFolder(dir);
      expect(items.find((i) => i.id === path.join('male', '13.png'))!.group).toBe('male/run-12');
      const { set } = await decodeItems(items, 16);
      expect(new Set(set.groups).size).toBe(12); // 6 runs per class
      for (let seed = 0; seed < 20; seed++) expectGroupsIntact(set.groups, groupSplit(set.labels, set.groups, 0.3, seed));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the repository's eye fixtures: runs found, split intact", async () => {
    const items = await readLabelledFolder(EYE_FIXTURES_DIR);
    const { set } = await decodeItems(items, 16);
    expect(set.groups.every((g) => g.startsWith('g:female/run-') || g.startsWith('g:male/run-'))).toBe(true);
    expectGroupsIntact(set.groups, groupSplit(set.labels, set.groups, 0.2, 42));
  });
});
