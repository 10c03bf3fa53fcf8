// Offline check of a case export (npm run verify-export -- <file.zip>): every file against the
// manifest's SHA-256 and size, nothing unlisted, every image against its own name and the evidence
// that cites it, every prediction against the model card of its version, and every audit event
// against its hash. Reports exactly what does not match.
import { createHash, createPublicKey, verify } from 'node:crypto';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { publicKeyId } from '../audit/anchor-signer.js';
import { anchorMessage } from '../audit/audit-anchor.service.js';
import { eventHash } from '../audit/audit.service.js';
import { EXPORT_FORMAT, type ExportManifest, MANIFEST } from './export-format.js';

export interface ExportVerification {
  ok: boolean;
  /** Files whose SHA-256 was computed (the manifest included). */
  checkedFiles: number;
  auditEvents: number;
  problems: string[];
}

interface Seen {
  sha256: string;
  size: number;
}

const JSON_LINES = new Set(['evidence.jsonl', 'predictions.jsonl', 'audit.jsonl']);

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => (err ? reject(err) : resolve(zip!))));
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream!))));
}

/** Reads every entry once: hashes it, keeps the manifest, and parses the JSON-lines files. */
async function readAll(file: string, problems: string[]) {
  const zip = await openZip(file);
  const seen = new Map<string, Seen>();
  const lines = new Map<string, unknown[]>();
  let manifest: Buffer | null = null;
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      void (async () => {
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        if (seen.has(entry.fileName)) problems.push(`${entry.fileName}: appears more than once in the ZIP`);
        const stream = await readEntry(zip, entry);
        const hash = createHash('sha256');
        let size = 0;
        const chunks: Buffer[] = [];
        const parsed: unknown[] = [];
        stream.on('data', (c: Buffer) => {
          hash.update(c);
          size += c.length;
          if (entry.fileName === MANIFEST) chunks.push(c);
        });
        if (JSON_LINES.has(entry.fileName)) {
          let n = 0;
          for await (const line of readline.createInterface({ input: stream, crlfDelay: Infinity })) {
            n++;
            if (!line.trim()) continue;
            try {
              parsed.push(JSON.parse(line));
            } catch {
              problems.push(`${entry.fileName} line ${n}: not valid JSON`);
            }
          }
          lines.set(entry.fileName, parsed);
        } else {
          await new Promise<void>((res, rej) => stream.on('end', res).on('error', rej));
        }
        if (entry.fileName === MANIFEST) manifest = Buffer.concat(chunks);
        seen.set(entry.fileName, { sha256: hash.digest('hex'), size });
        zip.readEntry();
      })().catch(reject);
    });
    zip.readEntry();
  });
  return { seen, lines, manifest: manifest as Buffer | null };
}

/** Whether the head's signature is the given (or, without one, the manifest's own) public key's. */
function checkHeadSignature(head: NonNullable<ExportManifest['auditChainHead']>, trustedKeyPem: string | undefined, problems: string[]): void {
  const pem = trustedKeyPem ?? head.publicKey;
  try {
    const key = createPublicKey(pem);
    const message = anchorMessage({ seq: BigInt(head.seq), hash: head.hash, createdAt: new Date(head.anchoredAt), keyId: head.keyId });
    const keyId = publicKeyId(key);
    if (keyId !== head.keyId) problems.push(`${MANIFEST}: the chain head was signed by key ${head.keyId}, not by ${trustedKeyPem ? 'the trusted key given' : 'the key in the manifest'} (${keyId})`);
    else if (!verify(null, Buffer.from(message, 'utf8'), key, Buffer.from(head.signature, 'base64'))) problems.push(`${MANIFEST}: the chain head's signature does not match its seq, hash and time`);
  } catch (err) {
    problems.push(`${MANIFEST}: the chain head's signature cannot be checked (${(err as Error).message})`);
  }
}

/**
 * `trustedKeyPem`: the server's audit public key (PEM), obtained independently of the export; without
 * it the signature is checked against the key the manifest carries, which shows the head was not
 * altered after signing but not who signed it.
 */
export async function verifyCaseExport(file: string, trustedKeyPem?: string): Promise<ExportVerification> {
  const problems: string[] = [];
  let read: Awaited<ReturnType<typeof readAll>>;
  try {
    read = await readAll(file, problems);
  } catch (err) {
    return { ok: false, checkedFiles: 0, auditEvents: 0, problems: [`not a readable ZIP file: ${(err as Error).message}`] };
  }
  const { seen, lines } = read;
  if (!read.manifest) return { ok: false, checkedFiles: seen.size, auditEvents: 0, problems: [...problems, `${MANIFEST} is missing: nothing to check the files against`] };
  let manifest: ExportManifest;
  try {
    manifest = JSON.parse(read.manifest.toString('utf8')) as ExportManifest;
  } catch {
    return { ok: false, checkedFiles: seen.size, auditEvents: 0, problems: [...problems, `${MANIFEST} is not valid JSON`] };
  }
  if (manifest.format !== EXPORT_FORMAT) problems.push(`${MANIFEST}: format is ${JSON.stringify(manifest.format)}, expected ${EXPORT_FORMAT}`);
  const files = Array.isArray(manifest.files) ? manifest.files : [];

  // 1. Every listed file is there, byte for byte; nothing is there that is not listed.
  const listed = new Set<string>();
  for (const f of files) {
    listed.add(f.path);
    const actual = seen.get(f.path);
    if (!actual) problems.push(`${f.path}: listed in the manifest but missing from the ZIP`);
    else {
      if (actual.sha256 !== f.sha256) problems.push(`${f.path}: SHA-256 is ${actual.sha256}, the manifest says ${f.sha256}`);
      if (actual.size !== f.size) problems.push(`${f.path}: ${actual.size} bytes, the manifest says ${f.size}`);
    }
  }
  for (const name of seen.keys()) if (name !== MANIFEST && !listed.has(name)) problems.push(`${name}: in the ZIP but not listed in the manifest`);

  // 2. Images are content-addressed: each file's SHA-256 is its name, and each evidence item's image is there.
  for (const [name, actual] of seen) {
    const m = /^images\/([0-9a-f]{64})\.\w+$/.exec(name);
    if (m && m[1] !== actual.sha256) problems.push(`${name}: its content's SHA-256 is ${actual.sha256}, not the one in its name`);
  }
  const evidence = (lines.get('evidence.jsonl') ?? []) as Array<{ id: string; image?: { sha256: string; file: string } }>;
  const imageShas = new Set<string>();
  for (const e of evidence) {
    if (!e.image) continue;
    imageShas.add(e.image.sha256);
    const actual = seen.get(e.image.file);
    if (!actual) problems.push(`evidence ${e.id}: its image ${e.image.file} is missing`);
    else if (actual.sha256 !== e.image.sha256) problems.push(`evidence ${e.id}: image ${e.image.file} has SHA-256 ${actual.sha256}, the evidence record says ${e.image.sha256}`);
  }

  // 3. Each prediction names a model version whose card is in the export, with the same artifact.
  const cards = new Map<string, string>();
  for (const name of seen.keys()) {
    const m = /^model-cards\/v\d+-([0-9a-f-]{36})\.json$/.exec(name);
    if (m) cards.set(m[1], name);
  }
  for (const p of (lines.get('predictions.jsonl') ?? []) as Array<{ id: string; imageSha256: string; modelVersionId: string; artifactSha256: string; modelVersion?: { artifactSha256: string } }>) {
    if (!imageShas.has(p.imageSha256)) problems.push(`prediction ${p.id}: classified image ${p.imageSha256} is not among the evidence`);
    if (!cards.has(p.modelVersionId)) problems.push(`prediction ${p.id}: no model card for its model version ${p.modelVersionId}`);
    if (p.modelVersion && p.modelVersion.artifactSha256 !== p.artifactSha256) problems.push(`prediction ${p.id}: artifact SHA-256 ${p.artifactSha256} differs from its model version's ${p.modelVersion.artifactSha256}`);
  }

  // 4. The audit slice: each event matches its own hash, in chain order, up to the head at export time.
  const audit = (lines.get('audit.jsonl') ?? []) as Array<{ seq: string; createdAt: string; actorKeyId: string | null; actor: string; action: string; entityType: string; entityId: string; details: unknown; prevHash: string; hash: string }>;
  const head = manifest.auditChainHead;
  if (!head) problems.push(`${MANIFEST}: no audit chain head`);
  else checkHeadSignature(head, trustedKeyPem, problems);
  let lastSeq = 0n;
  for (const e of audit) {
    const seq = BigInt(e.seq);
    if (seq <= lastSeq) problems.push(`audit.jsonl: event ${e.seq} is out of order`);
    lastSeq = seq;
    const recomputed = eventHash(e.prevHash, { ...e, createdAt: new Date(e.createdAt) });
    if (recomputed !== e.hash) problems.push(`audit.jsonl: event ${e.seq} (${e.action}) does not match its hash: it was altered after it was written`);
    if (head && seq > BigInt(head.seq)) problems.push(`audit.jsonl: event ${e.seq} is after the chain head ${head.seq} recorded at export time`);
    if (head && seq === BigInt(head.seq) && e.hash !== head.hash) problems.push(`audit.jsonl: event ${e.seq} has hash ${e.hash}, the manifest's chain head says ${head.hash}`);
  }
  return { ok: problems.length === 0, checkedFiles: seen.size, auditEvents: audit.length, problems };
}
