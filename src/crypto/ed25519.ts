/** Ed25519 signatures with raw 32-byte public keys, as stored in bundles and shares. */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

import { ED25519_SPKI_PREFIX as SPKI_PREFIX } from '../core/der.js';

export interface Signer {
  publicKey: Buffer;
  sign(data: Uint8Array): Buffer;
}

/** A one-time dealer key: the private half lives only in this object and is dropped with it. */
export function freshSigner(): Signer {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return { publicKey: Buffer.from(raw), sign: (data) => sign(null, data, privateKey) };
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function verifyEd25519(
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return verify(null, data, publicKeyFromRaw(publicKey), signature);
  } catch {
    return false;
  }
}

/**
 * A key that must outlive this process (a ceremony's): its private half as PKCS#8 DER, to be kept
 * 0600.
 */
export function freshStoredSigner(): { signer: Signer; secret: Buffer } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const secret = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { signer: signerFromSecret(secret), secret };
}

export function signerFromSecret(pkcs8: Buffer): Signer {
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 private key');
  const raw = createPublicKey(privateKey)
    .export({ format: 'der', type: 'spki' })
    .subarray(SPKI_PREFIX.length);
  return { publicKey: Buffer.from(raw), sign: (data) => sign(null, data, privateKey) };
}
