// Reading GraphQL multipart uploads (graphql-upload 17) into memory with a hard size limit.
// Eye images are small; a Buffer with a known length is also what the object store needs.
import type { FileUpload } from 'graphql-upload/processRequest.mjs';
import { AppError } from '../errors.js';

export type { FileUpload };
export { default as GraphQLUpload } from 'graphql-upload/GraphQLUpload.mjs';

export interface ReadUpload {
  bytes: Buffer;
  filename: string;
  mimetype: string;
}

export async function readUpload(upload: Promise<FileUpload> | FileUpload, maxBytes: number): Promise<ReadUpload> {
  let file: FileUpload;
  try {
    file = await upload;
  } catch (err) {
    throw uploadError(err, maxBytes, 'The file');
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of file.createReadStream()) {
      total += (chunk as Buffer).length;
      if (total > maxBytes) throw new AppError('PAYLOAD_TOO_LARGE', `The file "${file.filename}" is larger than the limit of ${maxBytes} bytes`, { maxBytes });
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw uploadError(err, maxBytes, `The file "${file.filename}"`);
  }
  return { bytes: Buffer.concat(chunks), filename: file.filename, mimetype: file.mimetype };
}

/** The one mapping of upload failures (the multipart parser's 413, broken streams) to AppErrors. */
export function uploadError(err: unknown, maxBytes: number, what: string): AppError {
  if (err instanceof AppError) return err;
  if ((err as { status?: number })?.status === 413) return new AppError('PAYLOAD_TOO_LARGE', `${what} is larger than the limit of ${maxBytes} bytes`, { maxBytes });
  return new AppError('BAD_USER_INPUT', `${what} could not be received: ${(err as Error)?.message ?? 'upload failed'}`);
}
