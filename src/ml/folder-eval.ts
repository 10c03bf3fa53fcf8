/**
 * Streaming evaluation of a bundle on a folder (female/ and male/ subfolders) and on a folder of
 * images that are not eyes: files are listed, then read, decoded and scored in chunks, so memory
 * stays bounded however large the folder. `--split validation` first indexes the folder (hash and
 * decodability of every file, nothing kept) to rebuild the model's person-aware validation split.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { mapLimit } from '../shared/concurrency.js';
import { sha256Hex } from '../shared/hash.js';
import { CLASS_ORDER, dataFingerprint, decodeImage, numberedRunGroups, type Label } from './data.js';
import { splitView, trainingSplit } from './split.js';
import { evaluate, metricIntervals, wilsonInterval, type Decision } from './evaluation.js';
import type { Classifier } from './inference.js';

const IMAGE_FILE = /\.(jpe?g|png|webp|gif|tiff?|avif|bmp)$/i;

export interface FolderEntry { file: string; id: string; label: Label | null; group?: string }

/** The files of a female/ male/ folder, with run-of-numbers groups (see numberedRunGroups); nothing is read. */
export async function listLabelledFolder(dir: string): Promise<FolderEntry[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const out: FolderEntry[] = [];
  let found = 0;
  for (const label of CLASS_ORDER) {
    const sub = entries.find((e) => e.isDirectory() && e.name.toLowerCase() === label.toLowerCase());
    if (!sub) continue;
    found++;
    const names = (await fs.readdir(path.join(dir, sub.name), { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
    const groups = numberedRunGroups(names, `${label.toLowerCase()}/`);
    names.forEach((name, k) => out.push({ file: path.join(dir, sub.name, name), id: path.join(sub.name, name), label, group: groups[k] }));
  }
  if (found < 2) throw new Error(`${dir} must contain female/ and male/ subfolders`);
  return out;
}

/** Every image file under dir (recursively), unlabelled; `id` is the path relative to dir. */
export async function listImageFiles(dir: string): Promise<FolderEntry[]> {
  const out: FolderEntry[] = [];
  const walk = async (d: string) => {
    for (const e of (await fs.readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && IMAGE_FILE.test(e.name)) out.push({ file: full, id: path.relative(dir, full), label: null });
    }
  };
  await walk(dir);
  return out;
}

export interface Progress { phase: 'index' | 'score'; done: number; total: number }

/**
 * The model's person-aware validation entries of a folder, found without keeping any image: every
 * file is hashed and test-decoded in chunks; the split is then made exactly as in training.
 */
export async function validationEntries(entries: FolderEntry[], size: number, seed: number, validationSplit: number, expectFingerprint: string,
  onProgress?: (p: Progress) => void): Promise<FolderEntry[]> {
  const indexed: Array<{ e: FolderEntry; label: Label; hash: string; group: string | null }> = [];
  for (let s = 0; s < entries.length; s += 256) {
    const chunk = entries.slice(s, s + 256);
    const rows = await mapLimit(chunk, 4, async (e) => {
      const bytes = new Uint8Array(await fs.readFile(e.file));
      try { await decodeImage(bytes, size); } catch { return null; }
      return { e, label: e.label as Label, hash: sha256Hex(bytes), group: e.group ?? null };
    });
    for (const r of rows) if (r) indexed.push(r);
    onProgress?.({ phase: 'index', done: Math.min(entries.length, s + 256), total: entries.length });
  }
  // The split is the trainer's own (src/ml/split.ts); the fingerprint proves it is the same data.
  const { kept, labels, groups } = splitView(indexed);
  const fingerprint = dataFingerprint({ size, count: kept.length, pixels: new Uint8Array(0), labels, ids: [], hashes: kept.map((k) => k.hash), groups });
  if (fingerprint !== expectFingerprint) throw new Error('--split validation needs the data the model was trained on (the data fingerprint differs)');
  return trainingSplit({ labels, groups }, { validationSplit, seed }).val.map((i) => ({ ...kept[i].e, group: groups[i] }));
}

export interface ScoredEntry { entry: FolderEntry; pMale: number; guard: number | null; decision: Decision }

/**
 * Read, decode and score entries in chunks; returns one small record per image and the timings:
 * end to end (reading and decoding included) and forward passes only.
 */
export async function scoreEntries(classifier: Classifier, entries: FolderEntry[], onProgress?: (p: Progress) => void, chunkSize = 256,
  transform?: (bytes: Uint8Array) => Promise<Uint8Array>):
  Promise<{ scored: ScoredEntry[]; skipped: Array<{ id: string; reason: string }>; seconds: number; forwardSeconds: number }> {
  const S = classifier.meta.inputSize, per = S * S * 3;
  const scored: ScoredEntry[] = [], skipped: Array<{ id: string; reason: string }> = [];
  const t0 = performance.now();
  let forwardMs = 0;
  for (let s = 0; s < entries.length; s += chunkSize) {
    const chunk = entries.slice(s, s + chunkSize);
    const decoded = await mapLimit(chunk, 4, async (e) => {
      try {
        const bytes = new Uint8Array(await fs.readFile(e.file));
        return await decodeImage(transform ? await transform(bytes) : bytes, S);
      } catch (err) {
        skipped.push({ id: e.id, reason: err instanceof Error ? err.message : String(err) });
        return null;
      }
    });
    const ok = chunk.map((e, i) => ({ e, px: decoded[i] })).filter((x): x is { e: FolderEntry; px: Uint8Array } => x.px !== null);
    const px = new Uint8Array(ok.length * per);
    ok.forEach((x, i) => px.set(x.px, i * per));
    const tf0 = performance.now();
    const r = await classifier.scorePixelsAsync(px, ok.length);
    forwardMs += performance.now() - tf0;
    ok.forEach((x, i) => {
      const guard = r.guard ? r.guard[i] : null;
      scored.push({ entry: x.e, pMale: r.pMale[i], guard, decision: classifier.decisionFor(r.pMale[i], guard) });
    });
    onProgress?.({ phase: 'score', done: Math.min(entries.length, s + chunkSize), total: entries.length });
  }
  return { scored, skipped, seconds: (performance.now() - t0) / 1000, forwardSeconds: forwardMs / 1000 };
}

const rate = (k: number, n: number) => ({ rate: n ? k / n : Number.NaN, interval: wilsonInterval(k, n), count: k, n });

/** Figures of scored eye images: metrics, intervals, and per-class INCONCLUSIVE and NOT_AN_EYE rates. */
export function eyeReport(scored: ScoredEntry[], classifier: Classifier) {
  const labels = Uint8Array.from(scored, (s) => (s.entry.label === 'MALE' ? 1 : 0));
  const pMale = Float64Array.from(scored, (s) => s.pMale);
  const decisions = scored.map((s) => s.decision);
  const groups = scored.map((s) => s.entry.group ?? s.entry.id);
  const m = evaluate(pMale, labels, classifier.meta.thresholds, decisions);
  const perClass = Object.fromEntries(CLASS_ORDER.map((label, c) => {
    const mine = scored.filter((_, i) => labels[i] === c);
    return [label.toLowerCase(), {
      n: mine.length,
      inconclusive: rate(mine.filter((s) => s.decision === 'INCONCLUSIVE').length, mine.length),
      not_an_eye: rate(mine.filter((s) => s.decision === 'NOT_AN_EYE').length, mine.length),
      decided_correct: rate(mine.filter((s) => s.decision === label).length, mine.filter((s) => s.decision === 'FEMALE' || s.decision === 'MALE').length),
    }];
  }));
  return { metrics: m, intervals: metricIntervals(m, pMale, labels, groups, decisions), perClass };
}

/** Figures of scored non-eye images: share refused (NOT_AN_EYE), by kind (file-name prefix before '-' or sub-folder). */
export function notEyeReport(scored: ScoredEntry[]) {
  const kindOf = (id: string) => (id.includes(path.sep) ? id.split(path.sep)[0] : path.basename(id).split(/[-_.]/)[0]);
  const kinds = [...new Set(scored.map((s) => kindOf(s.entry.id)))].sort();
  const refused = (xs: ScoredEntry[]) => xs.filter((s) => s.decision === 'NOT_AN_EYE').length;
  return {
    refused: rate(refused(scored), scored.length),
    byKind: Object.fromEntries(kinds.map((k) => { const xs = scored.filter((s) => kindOf(s.entry.id) === k); return [k, rate(refused(xs), xs.length)]; })),
    accepted: scored.filter((s) => s.decision !== 'NOT_AN_EYE').map((s) => ({ id: s.entry.id, decision: s.decision, pMale: s.pMale, guard: s.guard })),
  };
}
