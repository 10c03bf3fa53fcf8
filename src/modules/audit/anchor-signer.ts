// The server key that signs the audit chain's anchors (Ed25519, node:crypto). It comes from the
// configuration (AUDIT_SIGNING_KEY, a PEM) or from a file (AUDIT_SIGNING_KEY_FILE, by default
// under DATA_DIR), which is generated on first use so that the zero-config start has one.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256Hex } from '../../shared/hash.js';

/** A public key's id: the SHA-256 of its DER (SPKI) encoding, as anchors and exports name it. */
export const publicKeyId = (key: KeyObject): string => sha256Hex(key.export({ type: 'spki', format: 'der' }));

export class AnchorSigner {
  /** SHA-256 of the public key (DER), hex: names the key in every anchor it signed. */
  readonly keyId: string;
  readonly publicKeyPem: string;
  private readonly publicKey: KeyObject;

  private constructor(private readonly privateKey: KeyObject) {
    this.publicKey = createPublicKey(privateKey);
    if (this.publicKey.asymmetricKeyType !== 'ed25519') throw new Error('the audit signing key must be an Ed25519 key');
    this.publicKeyPem = this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.keyId = publicKeyId(this.publicKey);
  }

  static fromPem(pem: string): AnchorSigner {
    return new AnchorSigner(createPrivateKey(pem));
  }

  /** Reads the key file, or creates it (mode 0600) if it does not exist; safe when processes race. */
  static fromFile(file: string): AnchorSigner {
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      try {
        fs.writeFileSync(file, pem, { flag: 'wx', mode: 0o600 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    return AnchorSigner.fromPem(fs.readFileSync(file, 'utf8'));
  }

  sign(message: string): string {
    return sign(null, Buffer.from(message, 'utf8'), this.privateKey).toString('base64');
  }

  verify(message: string, signature: string): boolean {
    try {
      return verify(null, Buffer.from(message, 'utf8'), this.publicKey, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }
}
