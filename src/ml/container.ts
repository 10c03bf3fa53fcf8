/**
 * Binary container used by bundles and checkpoints:
 *   8 bytes magic "EYECLF\0\x01" | uint32 LE header length | header JSON (UTF-8) | payload bytes
 * The header is self-describing (kind, formatVersion, payload layout, payload SHA-256).
 */
import { sha256Hex } from '../shared/hash.js';
import { BundleFormatError } from './errors.js';

const MAGIC = Uint8Array.from([0x45, 0x59, 0x45, 0x43, 0x4c, 0x46, 0x00, 0x01]); // "EYECLF\0\x01"

export interface ContainerHeader { kind: string; formatVersion: number; payloadBytes: number; payloadSha256: string; [k: string]: unknown }

export function encodeContainer(header: Omit<ContainerHeader, 'payloadBytes' | 'payloadSha256'>, payload: Uint8Array): Uint8Array {
  const full = { ...header, payloadBytes: payload.length, payloadSha256: sha256Hex(payload) };
  const json = new TextEncoder().encode(JSON.stringify(full));
  const out = new Uint8Array(MAGIC.length + 4 + json.length + payload.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, json.length, true);
  out.set(json, MAGIC.length + 4);
  out.set(payload, MAGIC.length + 4 + json.length);
  return out;
}

export function decodeHeader(bytes: Uint8Array, expectKind: string): { header: ContainerHeader; payloadOffset: number } {
  if (!(bytes instanceof Uint8Array) || bytes.length < MAGIC.length + 4) throw new BundleFormatError(`not an eyecase ${expectKind}: too short`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new BundleFormatError(`not an eyecase ${expectKind}: bad magic bytes`);
  }
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  if (MAGIC.length + 4 + len > bytes.length) throw new BundleFormatError(`damaged ${expectKind}: header runs past the end`);
  let header: ContainerHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + len))) as ContainerHeader;
  } catch {
    throw new BundleFormatError(`damaged ${expectKind}: header is not valid JSON`);
  }
  if (header.kind !== expectKind) throw new BundleFormatError(`expected an eyecase ${expectKind} but got a '${String(header.kind)}'`);
  return { header, payloadOffset: MAGIC.length + 4 + len };
}

export function decodeContainer(bytes: Uint8Array, expectKind: string): { header: ContainerHeader; payload: Uint8Array } {
  const { header, payloadOffset } = decodeHeader(bytes, expectKind);
  const payload = bytes.subarray(payloadOffset);
  if (payload.length !== header.payloadBytes) throw new BundleFormatError(`damaged ${expectKind}: payload is ${payload.length} bytes, header says ${header.payloadBytes}`);
  const sha = sha256Hex(payload);
  if (sha !== header.payloadSha256) throw new BundleFormatError(`damaged ${expectKind}: payload checksum mismatch`);
  return { header, payload };
}

/** Pack Float32Arrays end to end (4-byte aligned copy). */
export function packFloat32(arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((s, a) => s + a.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const a of arrays) { out.set(a, o); o += a.length; }
  return new Uint8Array(out.buffer);
}

export function unpackFloat32(bytes: Uint8Array, sizes: number[]): Float32Array[] {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const all = new Float32Array(copy.buffer);
  const out: Float32Array[] = [];
  let o = 0;
  for (const s of sizes) { out.push(all.subarray(o, o + s)); o += s; }
  if (o !== all.length) throw new BundleFormatError(`damaged payload: expected ${o} floats, found ${all.length}`);
  return out;
}
