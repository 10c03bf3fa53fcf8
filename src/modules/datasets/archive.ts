// Reading a labelled ZIP archive (female/ and male/ folders) safely, entry by entry.
//
// The archive is first spooled to a temporary file with a byte limit, then opened with yauzl.
// Request-level problems are found by a first pass over the central directory, BEFORE anything is
// imported: not a ZIP (UNSUPPORTED_MEDIA_TYPE), a corrupt directory (BAD_USER_INPUT), more entries
// than allowed or a declared expansion beyond the uncompressed limit (PAYLOAD_TOO_LARGE).
// The second pass inflates one entry at a time, counting the ACTUAL inflated bytes: an entry is
// never inflated beyond the per-file limit (skipped with a reason), an entry that inflates to more
// than its header says is skipped (yauzl asserts the byte count), and if the running total of
// inflated bytes ever passes the uncompressed limit the import stops with PAYLOAD_TOO_LARGE.
// Entry names are checked by us (yauzl's own check would abort the whole archive): absolute
// paths, '..' segments, backslashes, symlinks, encrypted entries and nested archives are skipped
// with a reason. Nothing is ever written to disk under an entry's name.
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { AppError, badInput } from '../../errors.js';
import { uploadError } from '../../graphql/upload.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { numberedRunGroups } from '../../ml/index.js';

export interface ArchiveLimits {
  /** Most entries (files and folders) in the archive. */
  maxEntries: number;
  /** Most bytes all entries together may inflate to. */
  maxUncompressedBytes: number;
  /** Most bytes one entry may inflate to (the per-image upload limit). */
  maxEntryBytes: number;
}

/** What one archive entry yields: the bytes of a labelled file, or why it was skipped. */
export type ArchiveItem =
  | { name: string; label: Sex; bytes: Buffer; group?: string | null }
  | { name: string; label?: Sex; skip: { reason: string; code: string } };

/**
 * Group keys for the numbered files of an import (archive entries or folder files): within each
 * folder, a run of consecutive file numbers (12.jpg, 13.jpg, 14.jpg) is one group, since such runs
 * are very often the eyes of one person; a missing number ends a run. Files without a number get
 * none. Keys look like `<folder>/run-<first number>`.
 */
export function runGroupsOf(names: string[]): Map<string, string> {
  const byFolder = new Map<string, string[]>();
  for (const name of names) {
    const cut = name.lastIndexOf('/');
    const folder = cut >= 0 ? name.slice(0, cut) : '';
    const list = byFolder.get(folder);
    if (list) list.push(name); else byFolder.set(folder, [name]);
  }
  const out = new Map<string, string>();
  for (const [folder, list] of byFolder) {
    const groups = numberedRunGroups(list, folder ? `${folder}/` : '');
    list.forEach((name, i) => { if (groups[i]) out.set(name, groups[i]!); });
  }
  return out;
}

const NESTED_ARCHIVE = /\.(zip|jar|tar|tgz|gz|bz2|xz|zst|7z|rar|lz|lzma|z|cab|iso)$/i;
const LABELS: Record<string, Sex> = { female: 'FEMALE', male: 'MALE' };
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Where this process spools archives (one folder per process, so spools can be accounted for). */
export const SPOOL_ROOT = path.join(os.tmpdir(), `eyecase-archives-${process.pid}`);

/** Streams `source` into a fresh temporary file; refuses more than maxBytes. */
export async function spoolToTempFile(source: Readable, maxBytes: number, what = 'The archive'): Promise<{ file: string; size: number; cleanup: () => Promise<void> }> {
  await fs.mkdir(SPOOL_ROOT, { recursive: true, mode: 0o700 });
  const dir = await fs.mkdtemp(path.join(SPOOL_ROOT, 'archive-'));
  const cleanup = () => fs.rm(dir, { recursive: true, force: true });
  const file = path.join(dir, 'upload.zip');
  let size = 0;
  try {
    await pipeline(
      source,
      async function* limit(chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          size += chunk.length;
          if (size > maxBytes) throw new AppError('PAYLOAD_TOO_LARGE', `${what} is larger than the limit of ${maxBytes} bytes`, { maxBytes });
          yield chunk;
        }
      },
      createWriteStream(file, { flags: 'wx', mode: 0o600 }),
    );
    return { file, size, cleanup };
  } catch (err) {
    await cleanup();
    throw uploadError(err, maxBytes, what);
  }
}

const getFileName = (yauzl as unknown as { getFileNameLowLevel(flags: number, raw: Buffer, extra: unknown[], strict: boolean): string }).getFileNameLowLevel;

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true }, (err, zip) => (err ? reject(err) : resolve(zip!))),
  );
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | null> {
  return new Promise((resolve, reject) => {
    const done = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (e: yauzl.Entry) => (done(), resolve(e));
    const onEnd = () => (done(), resolve(null));
    const onError = (err: Error) => (done(), reject(err));
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function openStream(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream!))));
}

interface ScannedEntry {
  entry: yauzl.Entry;
  name: string;
}

/** Where an entry belongs: its label, or why it is skipped. Directories return null (ignored). */
export function classifyEntryName(name: string): { label: Sex } | { skip: string } | null {
  if (name.includes('\0')) return { skip: 'the name contains a NUL character' };
  if (name.includes('\\')) return { skip: 'the name contains a backslash' };
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) return { skip: 'absolute path' };
  const parts = name.split('/');
  if (parts.includes('..')) return { skip: "path traversal ('..')" };
  if (name.endsWith('/')) return null;
  const segments = parts.filter((p) => p !== '' && p !== '.');
  const base = segments[segments.length - 1] ?? '';
  if (base.startsWith('.') || segments.includes('__MACOSX')) return { skip: 'hidden or system file' };
  if (NESTED_ARCHIVE.test(base)) return { skip: 'nested archives are not opened' };
  const folder = segments.length === 2 ? segments[0] : segments.length === 3 ? segments[1] : undefined;
  const label = folder ? LABELS[folder.toLowerCase()] : undefined;
  if (!label) return { skip: 'not directly in a female/ or male/ folder (optionally under one top-level folder)' };
  return { label };
}

/**
 * Opens a spooled archive and checks it as a whole (entry count, declared expansion). Returns an
 * async iterator over its entries; always call close().
 */
export async function openLabelledZip(file: string, limits: ArchiveLimits): Promise<{ entryCount: number; items: AsyncIterable<ArchiveItem>; close: () => void }> {
  const head = Buffer.alloc(4);
  const fh = await fs.open(file, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  // Local file header, or the end-of-central-directory record of an empty archive.
  if (!(head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6)))) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'The archive is not a ZIP file (judged from its content)', { accepted: ['application/zip'] });
  }
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(file);
  } catch (err) {
    throw badInput(`The archive is not a readable ZIP file: ${(err as Error).message}`);
  }
  const close = () => {
    if (zip.isOpen) zip.close();
  };
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The archive has ${zip.entryCount} entries; the limit is ${limits.maxEntries}`, { maxEntries: limits.maxEntries, entries: zip.entryCount });
    }
    const entries: ScannedEntry[] = [];
    let declared = 0;
    for (;;) {
      let entry: yauzl.Entry | null;
      try {
        entry = await nextEntry(zip);
      } catch (err) {
        throw badInput(`The archive is corrupt: ${(err as Error).message}`);
      }
      if (!entry) break;
      // strict: keep backslashes as they are, so that classifyEntryName() can refuse them.
      const name = getFileName(entry.generalPurposeBitFlag, entry.fileName as unknown as Buffer, entry.extraFields, true);
      entries.push({ entry, name });
      if (!name.endsWith('/')) declared += entry.uncompressedSize;
    }
    if (declared > limits.maxUncompressedBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The archive would expand to ${declared} bytes; the limit is ${limits.maxUncompressedBytes}`, {
        maxUncompressedBytes: limits.maxUncompressedBytes,
        declaredBytes: declared,
      });
    }
    return { entryCount: entries.length, items: readEntries(zip, entries, limits, runGroupsOf(entries.map((e) => e.name).filter((n) => !n.endsWith('/')))), close };
  } catch (err) {
    close();
    throw err;
  }
}

async function* readEntries(zip: yauzl.ZipFile, entries: ScannedEntry[], limits: ArchiveLimits, groups: Map<string, string>): AsyncGenerator<ArchiveItem> {
  let inflatedTotal = 0;
  for (const { entry, name } of entries) {
    const where = classifyEntryName(name);
    if (where === null) continue;
    if ('skip' in where) {
      yield { name, skip: { reason: where.skip, code: 'BAD_USER_INPUT' } };
      continue;
    }
    const { label } = where;
    const skip = (reason: string, code = 'BAD_USER_INPUT'): ArchiveItem => ({ name, label, skip: { reason, code } });
    const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
    if (mode === S_IFLNK) {
      yield skip('symbolic links are not followed');
      continue;
    }
    if (entry.isEncrypted()) {
      yield skip('encrypted entries are not supported');
      continue;
    }
    if (entry.uncompressedSize > limits.maxEntryBytes) {
      yield skip(`larger than the per-file limit of ${limits.maxEntryBytes} bytes (${entry.uncompressedSize} bytes)`, 'PAYLOAD_TOO_LARGE');
      continue;
    }
    let stream: Readable;
    try {
      stream = await openStream(zip, entry);
    } catch (err) {
      yield skip(`cannot be read: ${(err as Error).message}`);
      continue;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let problem: ArchiveItem | undefined;
    try {
      for await (const chunk of stream) {
        size += (chunk as Buffer).length;
        inflatedTotal += (chunk as Buffer).length;
        if (inflatedTotal > limits.maxUncompressedBytes) {
          throw new AppError('PAYLOAD_TOO_LARGE', `The archive inflates to more than the limit of ${limits.maxUncompressedBytes} bytes; the import stopped at "${name}"`, {
            maxUncompressedBytes: limits.maxUncompressedBytes,
          });
        }
        if (size > limits.maxEntryBytes) {
          problem = skip(`inflates to more than the per-file limit of ${limits.maxEntryBytes} bytes`, 'PAYLOAD_TOO_LARGE');
          break;
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof AppError) throw err;
      problem = skip(`cannot be inflated: ${(err as Error).message}`);
    } finally {
      stream.destroy();
    }
    yield problem ?? { name, label, bytes: Buffer.concat(chunks), group: groups.get(name) ?? null };
  }
}
