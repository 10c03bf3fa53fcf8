/**
 * The registry compares models on the validation images it finds with validationSelection(),
 * without decoding anything; the trainer validates on trainingSplit() of its decoded set. For a
 * small dataset with groups, duplicates and any listing order, the two are the same images.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { dataFingerprint, decodeItems, type LabelledItem } from '../../src/ml/data.js';
import { validationEntries } from '../../src/ml/folder-eval.js';
import { mulberry32, shuffleInPlace } from '../../src/ml/rng.js';
import { trainingSplit, validationSelection } from '../../src/ml/split.js';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** 40 small PNGs per class; some people (groups) have several images, the rest none. */
async function smallDataset(): Promise<LabelledItem[]> {
  const items: LabelledItem[] = [];
  for (const label of ['FEMALE', 'MALE'] as const) {
    for (let n = 0; n < 40; n++) {
      const bytes = await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: n * 6, g: label === 'MALE' ? 220 : 30, b: (n * 37) % 256 } } }).png().toBuffer();
      items.push({ bytes: new Uint8Array(bytes), label, id: `${label}-${n}`, group: n % 5 === 4 ? null : `${label}-person-${Math.floor(n / 3)}` });
    }
  }
  // A byte-identical copy with the same label (kept once) and one with the other label (kept twice).
  items.push({ ...items[7], id: 'copy-same-label' });
  items.push({ ...items[9], label: 'MALE', id: 'copy-other-label', group: null });
  return items;
}

describe('validationSelection', () => {
  let items: LabelledItem[];
  beforeAll(async () => {
    items = await smallDataset();
  });

  /** The images the trainer validates on (decodeItems, then its split): ids and label:hash keys. */
  async function trainerValidation(list: LabelledItem[], hp: { validationSplit: number; seed: number }) {
    const { set } = await decodeItems(list, 8);
    const val = trainingSplit(set, hp).val;
    return { ids: val.map((i) => set.ids[i]), keys: val.map((i) => `${set.labels[i] ? 'MALE' : 'FEMALE'}:${set.hashes[i]}`) };
  }

  const selection = (list: LabelledItem[], hp: { validationSplit: number; seed: number }) =>
    validationSelection(list.map((it) => ({ ...it, hash: sha256(it.bytes) })), hp);

  test.each([
    { validationSplit: 0.2, seed: 42 },
    { validationSplit: 0.3, seed: 7 },
    { validationSplit: 0.5, seed: 1234 },
  ])('equals the validation set the trainer uses (split $validationSplit, seed $seed)', async (hp) => {
    const expected = await trainerValidation(items, hp);
    expect(expected.ids.length).toBeGreaterThan(5);
    expect(selection(items, hp).map((it) => it.id)).toEqual(expected.ids);
  });

  test('does not depend on the order the items are listed in (the database returns them in any order)', async () => {
    const hp = { validationSplit: 0.25, seed: 3 };
    const expected = await trainerValidation(items, hp);
    const shuffled = shuffleInPlace([...items], mulberry32(99));
    expect(selection(shuffled, hp).map((it) => `${it.label}:${it.hash}`)).toEqual(expected.keys);
  });

  test('the folder evaluator (evaluate --split validation) finds the same images from files', async () => {
    const hp = { validationSplit: 0.25, seed: 11 };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'split-folder-'));
    try {
      const entries = await Promise.all(items.map(async (it, n) => {
        const file = path.join(dir, `${n}.png`);
        await writeFile(file, it.bytes);
        return { file, id: it.id!, label: it.label, group: it.group ?? undefined };
      }));
      const { set } = await decodeItems(items, 8);
      const expected = await trainerValidation(items, hp);
      const found = await validationEntries(entries, 8, hp.seed, hp.validationSplit, dataFingerprint(set));
      expect(found.map((e) => e.id)).toEqual(expected.ids);
      await expect(validationEntries(entries.slice(1), 8, hp.seed, hp.validationSplit, dataFingerprint(set))).rejects.toThrow(/fingerprint differs/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
