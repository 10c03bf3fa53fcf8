// The layout of a case export, shared by the writer (CaseExportService) and the offline checker
// (verify-export). One ZIP:
//   manifest.json             format, case, exporter, audit chain head, SHA-256 and size of every other file
//   case.json                 the case and its members
//   evidence.jsonl            one evidence item per line, with its image's SHA-256 and file name
//   images/<sha256>.<ext>     the evidence images, byte for byte
//   predictions.jsonl         every prediction, with its model version and artifact SHA-256
//   reviews.jsonl             every review of those predictions
//   audit.jsonl               the case's slice of the audit log (each event with its hash links)
//   model-cards/v<N>-<id>.json  the model card of every version behind a prediction
export const EXPORT_FORMAT = 'eyecase-case-export/1';
export const MANIFEST = 'manifest.json';

export interface ManifestFile {
  path: string;
  sha256: string;
  size: number;
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  case: { id: string; reference: string };
  exportedAt: string;
  exportedBy: { keyId: string; name: string };
  /**
   * The last audit event when the export began, anchored and signed by the server's Ed25519 key
   * (audit-anchor.service.ts): the audit slice goes up to it.
   */
  auditChainHead: { seq: string; hash: string; anchoredAt: string; keyId: string; signature: string; publicKey: string } | null;
  files: ManifestFile[];
}

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };

export const imagePath = (sha256: string, mediaType: string) => `images/${sha256}.${EXTENSIONS[mediaType] ?? 'bin'}`;
export const modelCardPath = (version: number, id: string) => `model-cards/v${version}-${id}.json`;
