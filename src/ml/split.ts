/**
 * The engine's train/validation split, in one place. The trainer splits its decoded set with
 * trainingSplit(); the registry finds the same validation images without decoding anything with
 * validationSelection(), which orders the items as decodeItems() does (canonicalOrder), gives them
 * the same class indices and group keys, and splits them with trainingSplit(). The two agree as long
 * as every item decodes, which holds for dataset items (each was fully decoded at upload).
 */
import { canonicalOrder, groupKeyOf, groupSplit, type ImageSet, type Label } from './data.js';
import type { Hyperparameters } from './hyperparameters.js';

export type SplitParameters = Pick<Hyperparameters, 'validationSplit' | 'seed'>;

/** What the split sees of an item: its label, the SHA-256 of its bytes and its group (person). */
export interface SplitItem {
  label: Label;
  hash: string;
  group?: string | null;
}

/** The person-aware split of a decoded set (indices into it), as the trainer makes it. */
export function trainingSplit(set: Pick<ImageSet, 'labels' | 'groups'>, hp: SplitParameters): { train: number[]; val: number[] } {
  return groupSplit(set.labels, set.groups, hp.validationSplit, hp.seed);
}

/** Items as the decoded set holds them: canonical order, duplicates dropped, class indices and group keys. */
export function splitView<T extends SplitItem>(items: T[]): { kept: T[]; labels: Uint8Array; groups: string[] } {
  const { kept } = canonicalOrder(items);
  return { kept, labels: Uint8Array.from(kept, (it) => (it.label === 'MALE' ? 1 : 0)), groups: kept.map((it) => groupKeyOf(it.group, it.hash)) };
}

/** The items a model trained on `items` with `hp` was validated on, in the set's order. */
export function validationSelection<T extends SplitItem>(items: T[], hp: SplitParameters): T[] {
  const { kept, labels, groups } = splitView(items);
  return trainingSplit({ labels, groups }, hp).val.map((i) => kept[i]);
}
