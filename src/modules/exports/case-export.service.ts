// exportCase: one ZIP of everything about a case, written to a temporary file entry by entry (each
// image streamed from the object store, each list paged from the database), so memory stays
// bounded however large the case is; then uploaded with its size known, recorded in the audit log
// and handed out as a presigned URL. Layout in export-format.ts.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { Db } from '../../db/prisma.js';
import type { SqlDatabase } from '../../db/sql.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { AuditAnchorService } from '../audit/audit-anchor.service.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Principal } from '../auth/roles.js';
import { caseAuditSlice, members } from '../cases/case.store.js';
import type { CaseService } from '../cases/case.service.js';
import { modelCardOf } from '../registry/model-card.js';
import { modelVersionsByIds } from '../registry/registry.store.js';
import { evidencePage, type PageAfter, predictionsPage, reviewsPage } from './case-export.store.js';
import { EXPORT_FORMAT, type ExportManifest, imagePath, MANIFEST, type ManifestFile, modelCardPath } from './export-format.js';

export const EXPORT_PREFIX = 'exports';
const PAGE = 500;

export interface CaseExportResult {
  caseId: string;
  objectKey: string;
  sha256: string;
  byteSize: number;
  fileCount: number;
  auditChainHeadSeq: string | null;
  auditChainHeadHash: string | null;
  url: string;
  expiresInSeconds: number;
  createdAt: Date;
}

/** Pages through rows ordered by (createdAt, id), PAGE at a time. */
async function* paged<T extends { id: string; createdAt: Date }>(fetch: (after: PageAfter) => Promise<T[]>): AsyncGenerator<T> {
  let after: PageAfter = null;
  for (;;) {
    const rows = await fetch(after);
    yield* rows;
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1];
  }
}

async function* jsonLines(rows: AsyncIterable<unknown>): AsyncGenerator<string> {
  for await (const row of rows) yield `${JSON.stringify(row)}\n`;
}

/** Writes entries one after another into a yazl ZIP, hashing each on its way in. */
class ZipWriter {
  readonly files: ManifestFile[] = [];
  private readonly zip = new yazl.ZipFile();
  private failure: Error | null = null;

  constructor(private readonly mtime: Date) {
    this.zip.on('error', (err: Error) => (this.failure = err));
  }

  get output(): NodeJS.ReadableStream {
    return this.zip.outputStream;
  }

  /** Adds one entry and waits until the ZIP has consumed it (so only one is in flight). */
  async add(name: string, source: Readable, compress = true): Promise<void> {
    if (this.failure) throw this.failure;
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const consumed = new Promise<void>((resolve, reject) => {
      tap.on('end', resolve);
      tap.on('error', reject);
      source.on('error', (err) => tap.destroy(err));
    });
    this.zip.addReadStream(tap, name, { compress, mtime: this.mtime });
    source.pipe(tap);
    await consumed;
    this.files.push({ path: name, sha256: hash.digest('hex'), size });
  }

  addLast(name: string, bytes: Buffer): void {
    this.zip.addBuffer(bytes, name, { mtime: this.mtime });
    this.zip.end();
  }
}

export class CaseExportService {
  constructor(
    private readonly db: Db,
    private readonly sql: SqlDatabase,
    private readonly audit: AuditService,
    private readonly anchors: AuditAnchorService,
    private readonly cases: CaseService,
    private readonly store: ObjectStore,
    private readonly urlSeconds: number,
  ) {}

  async export(actor: Principal, caseId: string): Promise<CaseExportResult> {
    const kase = await this.cases.get(actor, caseId);
    // The chain's head now, anchored and signed: the export carries a head that a later rewrite of
    // the log cannot match.
    const head = await this.anchors.currentAnchoredHead(`export of case ${kase.reference}`);
    const exportedAt = new Date();
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'eyecase-export-'));
    const zipPath = path.join(dir, 'case.zip');
    try {
      const zipHash = createHash('sha256');
      const writer = new ZipWriter(exportedAt);
      const written = pipeline(
        writer.output,
        new Transform({ transform: (chunk: Buffer, _e, done) => (zipHash.update(chunk), done(null, chunk)) }),
        fs.createWriteStream(zipPath),
      );
      let manifest: ExportManifest;
      try {
        manifest = await this.writeEntries(writer, actor, kase, head, exportedAt);
        writer.addLast(MANIFEST, Buffer.from(JSON.stringify(manifest, null, 2)));
      } catch (err) {
        // A source failed (the object store, the database): stop writing, keep nothing.
        (writer.output as Readable).destroy(err as Error);
        await written.catch(() => undefined);
        throw err;
      }
      await written;
      const sha256 = zipHash.digest('hex');
      const { size } = await fs.promises.stat(zipPath);
      const objectKey = `${EXPORT_PREFIX}/${caseId}/${exportedAt.toISOString().replace(/[:.]/g, '-')}-${sha256.slice(0, 16)}.zip`;
      await this.store.putFile(objectKey, zipPath, 'application/zip');
      try {
        await this.sql.transaction((tx) =>
          this.audit.append(tx, actor, {
            action: 'case.export',
            entityType: 'Case',
            entityId: caseId,
            details: { objectKey, sha256, byteSize: size, files: manifest.files.length + 1, auditChainHead: manifest.auditChainHead },
          }),
        );
      } catch (err) {
        // No export without its record.
        await this.store.delete(objectKey).catch(() => undefined);
        throw err;
      }
      return {
        caseId,
        objectKey,
        sha256,
        byteSize: size,
        fileCount: manifest.files.length + 1,
        auditChainHeadSeq: head.seq.toString(),
        auditChainHeadHash: head.hash,
        url: await this.store.presignedGetUrl(objectKey, this.urlSeconds),
        expiresInSeconds: this.urlSeconds,
        createdAt: exportedAt,
      };
    } finally {
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  }

  private async writeEntries(
    writer: ZipWriter,
    actor: Principal,
    kase: Awaited<ReturnType<CaseService['get']>>,
    head: Awaited<ReturnType<AuditAnchorService['currentAnchoredHead']>>,
    exportedAt: Date,
  ): Promise<ExportManifest> {
    const caseId = kase.id;
    const caseMembers = await members(this.sql, caseId);
    await writer.add('case.json', Readable.from([JSON.stringify({ ...kase, members: caseMembers }, null, 2)]));

    const evidence = () => paged((after) => evidencePage(this.db, caseId, after, PAGE));
    await writer.add(
      'evidence.jsonl',
      Readable.from(
        jsonLines(
          (async function* () {
            for await (const e of evidence()) {
              const { image, ...row } = e;
              yield { ...row, image: { sha256: image.sha256, mediaType: image.mediaType, byteSize: image.byteSize, width: image.width, height: image.height, file: imagePath(image.sha256, image.mediaType) } };
            }
          })(),
        ),
      ),
    );
    for await (const e of evidence()) {
      await writer.add(imagePath(e.image.sha256, e.image.mediaType), Readable.from(await this.store.getStream(e.image.objectKey)), false);
    }

    const versionIds = new Set<string>();
    const predictions = paged((after) => predictionsPage(this.db, caseId, after, PAGE));
    await writer.add(
      'predictions.jsonl',
      Readable.from(
        jsonLines(
          (async function* () {
            for await (const p of predictions) {
              versionIds.add(p.modelVersionId);
              yield p;
            }
          })(),
        ),
      ),
    );
    const reviews = paged((after) => reviewsPage(this.db, caseId, after, PAGE));
    await writer.add('reviews.jsonl', Readable.from(jsonLines(reviews)));

    const sql = this.sql;
    await writer.add(
      'audit.jsonl',
      Readable.from(
        jsonLines(
          (async function* () {
            let afterSeq = 0n;
            for (;;) {
              const rows = await caseAuditSlice(sql, caseId, { afterSeq, untilSeq: head.seq, limit: PAGE });
              // seq as decimal text: JSON has no 64-bit integers.
              yield* rows.map((r) => ({ ...r, seq: r.seq.toString() }));
              if (rows.length < PAGE) return;
              afterSeq = rows[rows.length - 1].seq;
            }
          })(),
        ),
      ),
    );

    for (const mv of await modelVersionsByIds(this.db, [...versionIds])) {
      await writer.add(modelCardPath(mv.version, mv.id), Readable.from([JSON.stringify(modelCardOf(mv), null, 2)]));
    }

    return {
      format: EXPORT_FORMAT,
      case: { id: caseId, reference: kase.reference },
      exportedAt: exportedAt.toISOString(),
      exportedBy: { keyId: actor.keyId, name: actor.name },
      auditChainHead: { seq: head.seq.toString(), hash: head.hash, anchoredAt: head.createdAt.toISOString(), keyId: head.keyId, signature: head.signature, publicKey: head.publicKey },
      files: writer.files,
    };
  }
}
