// Where imported files come from: GraphQL uploads and folders on disk. Both yield ImportCandidates
// (bytes + label, or a per-file skip with a reason) one at a time, so memory stays bounded.
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../errors.js';
import type { Sex } from '../../generated/prisma/enums.js';
import { type FileUpload, readUpload, uploadError } from '../../graphql/upload.js';
import { runGroupsOf } from './archive.js';
import type { ImportCandidate } from './dataset-import.service.js';

/**
 * Uploaded files, each read with the per-file limit; a file that fails becomes a SKIPPED result.
 * groupKeys[i], when given, is the group (person) of files[i].
 */
export async function* uploadedFiles(files: Array<Promise<FileUpload> | FileUpload>, label: Sex, maxBytes: number, groupKeys?: Array<string | null>): AsyncGenerator<ImportCandidate> {
  for (const [i, pending] of files.entries()) {
    let name = `files[${i}]`;
    try {
      const file = await pending;
      name = file.filename || name;
      const read = await readUpload(file, maxBytes);
      yield { name, label, bytes: read.bytes, group: groupKeys?.[i] ?? null };
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError('BAD_USER_INPUT', `The file could not be received: ${(err as Error)?.message ?? 'upload failed'}`);
      yield { name, label, skip: { reason: e.message, code: e.code } };
    }
  }
}

/** Awaits an upload promise, turning the multipart parser's errors into AppErrors. */
export async function receivedUpload(upload: Promise<FileUpload> | FileUpload, maxBytes: number, what = 'The archive'): Promise<FileUpload> {
  try {
    return await upload;
  } catch (err) {
    throw uploadError(err, maxBytes, what);
  }
}

const FOLDERS: Array<[string, Sex]> = [
  ['female', 'FEMALE'],
  ['male', 'MALE'],
];

/** The files of <dir>/female and <dir>/male (sorted), with run-of-numbers groups (runGroupsOf), for the import CLI. */
export async function listLabelledFolder(dir: string): Promise<Array<{ path: string; name: string; label: Sex; group: string | null }>> {
  const found: Array<{ path: string; name: string; label: Sex; group: string | null }> = [];
  let anyFolder = false;
  for (const [folder, label] of FOLDERS) {
    const full = path.join(dir, folder);
    const st = await fs.stat(full).catch(() => null);
    if (!st?.isDirectory()) continue;
    anyFolder = true;
    for (const name of (await fs.readdir(full)).sort()) found.push({ path: path.join(full, name), name: `${folder}/${name}`, label, group: null });
  }
  if (!anyFolder) throw new AppError('BAD_USER_INPUT', `${dir} has neither a female/ nor a male/ folder`);
  const groups = runGroupsOf(found.map((f) => f.name));
  return found.map((f) => ({ ...f, group: groups.get(f.name) ?? null }));
}

/** Reads the listed files one at a time; symlinks, folders, hidden and oversized files are skipped. */
export async function* folderFiles(files: Array<{ path: string; name: string; label: Sex; group?: string | null }>, maxBytes: number): AsyncGenerator<ImportCandidate> {
  for (const f of files) {
    const skip = (reason: string, code = 'BAD_USER_INPUT'): ImportCandidate => ({ name: f.name, label: f.label, skip: { reason, code } });
    const st = await fs.lstat(f.path).catch(() => null);
    if (!st) yield skip('disappeared while importing');
    else if (st.isSymbolicLink()) yield skip('symbolic links are not followed');
    else if (!st.isFile()) yield skip('not a regular file');
    else if (path.basename(f.path).startsWith('.')) yield skip('hidden file');
    else if (st.size > maxBytes) yield skip(`larger than the per-file limit of ${maxBytes} bytes (${st.size} bytes)`, 'PAYLOAD_TOO_LARGE');
    else {
      try {
        yield { name: f.name, label: f.label, bytes: await fs.readFile(f.path), group: f.group ?? null };
      } catch (err) {
        yield skip(`cannot be read: ${(err as Error).message}`);
      }
    }
  }
}
