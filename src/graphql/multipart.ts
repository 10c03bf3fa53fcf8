// The GraphQL multipart request layer (https://github.com/jaydenseric/graphql-multipart-request-spec),
// built from graphql-upload's parts (busboy, fs-capacitor, its Upload class and scalar) but with an
// orchestration that cannot hang or leak, which graphql-upload 17's own middleware does not give:
//  - who may send files is decided before a byte of the body is read: anonymous, CSRF-refused and
//    file-less roles are answered at once and nothing is spooled;
//  - the byte ceiling is the largest any operation of the caller's role accepts;
//  - a malformed request (no boundary, bad JSON, duplicate file fields, ...) is answered 400 at once
//    and the connection closed, instead of waiting for a body nobody reads;
//  - a request whose declared length is at most `memoryMaxBytes` keeps its files in memory (an eye
//    crop is a few kilobytes: a temp file per upload cost more than parsing it); larger or
//    unsized (chunked) requests spool to temp files through fs-capacitor;
//  - every temp file the request created is released when the response closes, on every path
//    (success, error, duplicate fields, client abort);
//  - uploads the resolver never sees (a mapped part that never arrives, a bad file name) reject
//    with BAD_USER_INPUT, so the error model holds even where type-graphql awaits the upload.
import { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import busboy from 'busboy';
import { WriteStream } from 'fs-capacitor';
import Upload from 'graphql-upload/Upload.mjs';
import type { Config } from '../config.js';
import { AppError, badInput, ErrorCode } from '../errors.js';
import type { RoleName } from '../modules/auth/roles.js';

const MAX_OPERATIONS_BYTES = 1024 * 1024;
const MAX_FILENAME_CHARS = 255;
const SPEC = 'see the GraphQL multipart request spec';

/** An error answered before GraphQL runs, with its HTTP status and stable code. */
export class MultipartError extends AppError {
  constructor(readonly status: number, code: ErrorCode, message: string) {
    super(code, message);
  }
}
const protocolError = (message: string) => new MultipartError(400, ErrorCode.BAD_REQUEST, `${message} (${SPEC})`);

/**
 * The largest file any operation of the role accepts: investigators upload evidence images,
 * admins dataset images and ZIP archives; auditors change nothing, so they upload nothing.
 */
export function uploadCeiling(role: RoleName, config: Config): number {
  switch (role) {
    case 'INVESTIGATOR':
      return config.uploads.maxFileBytes;
    case 'ADMIN':
      return Math.max(config.uploads.maxFileBytes, config.archive.maxBytes);
    default:
      return 0;
  }
}

/** A file name the rest of the system can store and show: no control characters, bounded length. */
export function filenameProblem(filename: string): string | undefined {
  if (filename.length > MAX_FILENAME_CHARS) return `a file name is longer than ${MAX_FILENAME_CHARS} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(filename)) return 'a file name contains control characters (such as NUL)';
  return undefined;
}

/** Sets `value` at a dotted path inside the operations object, refusing prototype keys. */
function setAtPath(target: unknown, path: string, value: unknown): boolean {
  const keys = path.split('.');
  let node = target as Record<string, unknown>;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return false;
    if (node === null || typeof node !== 'object' || !Object.prototype.hasOwnProperty.call(node, key)) return false;
    if (i === keys.length - 1) {
      node[key] = value;
      return true;
    }
    node = node[key] as Record<string, unknown>;
  }
  return false;
}

/** Whether the Content-Type names multipart/form-data with a usable boundary. */
function boundaryProblem(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return match ? undefined : 'The multipart Content-Type has no valid boundary';
}

export interface MultipartOptions {
  maxFileBytes: number;
  maxFiles: number;
  /** Where file parts are spooled until the response closes. */
  tempDir: string;
  /** Requests with a Content-Length up to this keep their files in memory instead (0: never). */
  memoryMaxBytes: number;
}

/** Where one file part is kept until the response closes: a temp file, or memory for small requests. */
interface Spool {
  /** Receives the part; `fail` ends it with an error that readers get. */
  receive(stream: Readable): void;
  fail(error: Error): void;
  read(opts?: { highWaterMark?: number; encoding?: BufferEncoding }): Readable;
  release(): void;
}

function fileSpool(tempDir: string): Spool {
  const capacitor = new WriteStream({ tmpdir: () => tempDir });
  let source: Readable | undefined;
  capacitor.on('error', () => {
    source?.unpipe();
    source?.resume();
  });
  return {
    receive: (stream) => void (source = stream).pipe(capacitor),
    fail: (error) => {
      source?.unpipe();
      capacitor.destroy(error);
    },
    read: (opts) => capacitor.createReadStream(opts),
    release: () => capacitor.release(),
  };
}

/**
 * A part held in memory. Readers get the whole file once it has arrived (the request is small by
 * construction), or the error that ended it.
 */
function memorySpool(): Spool {
  const chunks: Buffer[] = [];
  let source: Readable | undefined;
  let failed = false;
  let settle: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  const whole = new Promise<Buffer>((resolve, reject) => (settle = { resolve, reject }));
  whole.catch(() => undefined); // a part nobody reads may fail unobserved
  return {
    receive: (stream) => {
      source = stream;
      stream.on('data', (chunk: Buffer) => void (failed || chunks.push(chunk)));
      stream.once('end', () => settle!.resolve(Buffer.concat(chunks)));
    },
    fail: (error) => {
      failed = true;
      source?.resume();
      chunks.length = 0;
      settle!.reject(error);
    },
    read: (opts) => Readable.from((async function* () {
      yield await whole;
    })(), { objectMode: false, highWaterMark: opts?.highWaterMark, encoding: opts?.encoding }),
    release: () => {
      chunks.length = 0;
    },
  };
}

/**
 * Parses a multipart GraphQL request into `operations` with Upload promises in place of files.
 * Resolves once `operations` and `map` are read (files keep streaming into temp files); rejects
 * with a MultipartError for anything malformed. Temp files are released when `res` closes.
 */
export function parseMultipart(req: Request, res: Response, options: MultipartOptions): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const boundary = boundaryProblem(req.headers['content-type']);
    if (boundary) return reject(protocolError(boundary));

    const spools: Spool[] = [];
    const declared = Number(req.headers['content-length']);
    const inMemory = Number.isFinite(declared) && declared > 0 && declared <= options.memoryMaxBytes;
    const uploads = new Map<string, Upload>();
    const arrived = new Set<string>();
    let operations: Record<string, unknown> | undefined;
    let mapped = false;
    let failed: AppError | undefined;
    let released = false;

    const releaseAll = () => {
      released = true;
      for (const spool of spools) spool.release();
    };
    res.once('close', releaseAll);

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        defParamCharset: 'utf8',
        limits: { fieldSize: MAX_OPERATIONS_BYTES, fields: 2, fileSize: options.maxFileBytes, files: options.maxFiles, parts: options.maxFiles + 2 },
      });
    } catch (err) {
      return reject(protocolError((err as Error).message));
    }

    const fail = (error: AppError) => {
      if (failed) return;
      failed = error;
      for (const [key, upload] of uploads) if (!arrived.has(key)) upload.reject(error);
      req.unpipe(parser);
      parser.destroy();
      // Whatever is still on the wire is discarded (the response closes the connection).
      req.resume();
      reject(error);
    };
    const tooLarge = (message: string) => new MultipartError(413, ErrorCode.PAYLOAD_TOO_LARGE, message);

    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(tooLarge(`The "${name}" field is larger than ${MAX_OPERATIONS_BYTES} bytes`));
      if (name === 'operations') {
        try {
          operations = { root: JSON.parse(value) };
        } catch {
          return fail(protocolError('The "operations" field is not valid JSON'));
        }
        if (typeof operations.root !== 'object' || operations.root === null) return fail(protocolError('The "operations" field must be an object or an array'));
        return;
      }
      if (name !== 'map') return fail(protocolError(`Unexpected field "${name.slice(0, 50)}"`));
      if (!operations) return fail(protocolError('The "map" field must follow "operations"'));
      let map: unknown;
      try {
        map = JSON.parse(value);
      } catch {
        return fail(protocolError('The "map" field is not valid JSON'));
      }
      if (typeof map !== 'object' || map === null || Array.isArray(map)) return fail(protocolError('The "map" field must be an object'));
      const entries = Object.entries(map);
      if (entries.length > options.maxFiles) return fail(tooLarge(`At most ${options.maxFiles} files per request`));
      for (const [key, paths] of entries) {
        if (!Array.isArray(paths) || paths.length === 0 || paths.length > 10) return fail(protocolError(`The map entry "${key.slice(0, 50)}" must be a list of 1 to 10 paths`));
        const upload = new Upload();
        uploads.set(key, upload);
        for (const path of paths) {
          if (typeof path !== 'string' || !setAtPath(operations, `root.${path}`, upload)) {
            return fail(protocolError(`The map entry "${key.slice(0, 50)}" names a path that is not in the operations`));
          }
        }
      }
      mapped = true;
      resolve(operations.root);
    });

    parser.on('file', (name, stream, info) => {
      const upload = uploads.get(name);
      if (!mapped || !upload || arrived.has(name)) {
        stream.on('error', () => undefined);
        stream.resume();
        if (!mapped) return fail(protocolError('Files must follow the "map" field'));
        if (arrived.has(name)) return fail(protocolError(`The file field "${name.slice(0, 50)}" appears twice`));
        return; // a part nobody mapped is skipped
      }
      arrived.add(name);
      const problem = filenameProblem(info.filename ?? '');
      if (problem) {
        stream.on('error', () => undefined);
        stream.resume();
        upload.reject(badInput(`The upload was refused: ${problem}`));
        return;
      }
      const spool = inMemory ? memorySpool() : fileSpool(options.tempDir);
      spools.push(spool);
      if (released) spool.release();
      let fileError: AppError | undefined;
      stream.on('limit', () => {
        fileError = tooLarge(`The file "${info.filename}" is larger than the limit of ${options.maxFileBytes} bytes`);
        spool.fail(fileError);
      });
      stream.on('error', (err: Error) => {
        fileError = badInput(`The file "${info.filename}" could not be received: ${err.message}`);
        spool.fail(fileError);
      });
      spool.receive(stream);
      upload.resolve({
        filename: info.filename ?? '',
        mimetype: info.mimeType,
        encoding: info.encoding,
        createReadStream: (opts?: { highWaterMark?: number; encoding?: BufferEncoding }) => {
          if (fileError) throw fileError;
          if (failed || released) throw failed ?? badInput('The request ended before the file was read');
          const stream = spool.read(opts);
          // The parser's own limit may destroy the stream after its reader stopped listening (the
          // operation's own limit tripped first): that must not be an unhandled 'error'.
          stream.on('error', () => undefined);
          return stream;
        },
      });
    });

    parser.once('filesLimit', () => fail(tooLarge(`At most ${options.maxFiles} files per request`)));
    parser.once('partsLimit', () => fail(tooLarge(`At most ${options.maxFiles} files per request`)));
    parser.once('fieldsLimit', () => fail(protocolError('Only the "operations" and "map" fields are allowed')));
    // Busboy's errors are about a part (its headers or bytes, e.g. a raw NUL in a file name).
    parser.on('error', (err: Error) => fail(new MultipartError(400, ErrorCode.BAD_USER_INPUT, `A part of the upload is malformed: ${err.message}`)));
    parser.once('finish', () => {
      if (!operations) return fail(protocolError('The "operations" field is missing'));
      if (!mapped) return fail(protocolError('The "map" field is missing'));
      for (const [key, upload] of uploads) {
        if (!arrived.has(key)) upload.reject(badInput(`The file for map entry "${key.slice(0, 50)}" is missing from the request`));
      }
    });
    req.once('close', () => {
      if (!req.readableEnded) fail(new MultipartError(499, ErrorCode.BAD_REQUEST, 'The client disconnected during the upload'));
    });
    req.pipe(parser);
  });
}
