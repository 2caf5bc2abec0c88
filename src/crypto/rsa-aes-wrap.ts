/**
 * The recipient's side of a handover, in software: read an RSA public key, undo the
 * CKM_RSA_AES_KEY_WRAP layout (RSA-OAEP of an AES key, then AES-KWP), and compute the check value
 * of the unwrapped key the same way the HSM did. Used only by the recipient, with its own private
 * key.
 */
import {
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  constants,
  privateDecrypt,
  type KeyObject,
} from 'node:crypto';
import { CustosError } from '../core/errors.js';
import type { CheckValue } from '../core/keys.js';
import { HMAC_CHECK_MESSAGE } from '../core/keys.js';
import { aesKcv } from './aes.js';
import { spkiCheckValue } from './check-values.js';
import { wipe } from './wipe.js';

export interface RsaPublicKey {
  spki: Buffer;
  bits: number;
  modulus: Buffer;
  publicExponent: Buffer;
}

/**
 * An RSA public key from PEM (SPKI or PKCS#1), a certificate's, or SPKI DER; null if it is not RSA.
 */
export function readRsaPublicKey(pem: string | Buffer): RsaPublicKey | null {
  let key: KeyObject;
  try {
    key =
      typeof pem === 'string'
        ? createPublicKey(pem)
        : createPublicKey({ key: pem, format: 'der', type: 'spki' });
  } catch {
    return null;
  }
  if (key.asymmetricKeyType !== 'rsa') return null;
  const jwk = key.export({ format: 'jwk' });
  const modulus = Buffer.from(jwk.n as string, 'base64url');
  return {
    spki: key.export({ format: 'der', type: 'spki' }),
    bits: modulus.length * 8 - Math.clz32(modulus[0] ?? 0) + 24,
    modulus,
    publicExponent: Buffer.from(jwk.e as string, 'base64url'),
  };
}

/**
 * The recipient key a request names, derived from its SPKI alone: the digest and size written
 * beside it must agree, since people check those and the keys are wrapped to the SPKI.
 */
export function requestRecipient(
  where: string,
  recipient: { spki: string; sha256: string; bits: number },
): RsaPublicKey {
  const der = Buffer.from(recipient.spki, 'base64');
  const rsa = readRsaPublicKey(der);
  if (
    !rsa ||
    !rsa.spki.equals(der) ||
    createHash('sha256').update(der).digest('hex') !== recipient.sha256 ||
    rsa.bits !== recipient.bits ||
    !usableExponent(rsa)
  ) {
    throw new CustosError(
      'E_HANDOVER_FORMAT',
      `${where}: its recipient key does not match the digest and size recorded with it (or is not a usable RSA key)`,
      'the request was edited; do not approve or execute it, and ask for the request as it was made',
    );
  }
  return rsa;
}

/**
 * Public exponents below 65537 (or even ones) are refused: small exponents invite attacks on badly
 * padded RSA.
 */
export function usableExponent(rsa: RsaPublicKey): boolean {
  const e = BigInt(`0x${rsa.publicExponent.toString('hex') || '0'}`);
  return e >= 65537n && e % 2n === 1n;
}

const KWP_IV = Buffer.from('a65959a6', 'hex');

/**
 * Undoes RSA-OAEP + AES-KWP with the recipient's private key; the key bytes, to be wiped by the
 * caller.
 */
export function unwrapRsaAes(
  privateKey: KeyObject,
  wrapped: Buffer,
  oaepHash: 'sha1' | 'sha256',
): Buffer {
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  const aesKey = privateDecrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
    wrapped.subarray(0, modulusBytes),
  );
  try {
    const d = createDecipheriv('id-aes256-wrap-pad', aesKey, KWP_IV);
    return Buffer.concat([d.update(wrapped.subarray(modulusBytes)), d.final()]);
  } finally {
    wipe(aesKey);
  }
}

export function readPrivateKey(pem: string): KeyObject | null {
  try {
    const k = createPrivateKey(pem);
    return k.asymmetricKeyType === 'rsa' ? k : null;
  } catch {
    return null;
  }
}

/**
 * The check value of unwrapped key bytes (a secret key's value, or a private key's PKCS#8), by the
 * recorded method.
 */
export function softwareCheckValue(
  method: CheckValue['method'],
  cls: 'secret' | 'private',
  bytes: Buffer,
): CheckValue {
  if (cls === 'private') {
    const spki = createPublicKey(
      createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' }),
    ).export({ format: 'der', type: 'spki' });
    return { method: 'spki-sha256', value: spkiCheckValue(spki) };
  }
  if (method === 'aes-ecb-zero') return { method, value: aesKcv(bytes) };
  if (method === 'hmac-sha256')
    return {
      method,
      value: createHmac('sha256', bytes)
        .update(HMAC_CHECK_MESSAGE)
        .digest()
        .subarray(0, 3)
        .toString('hex'),
    };
  return { method: 'none', value: '' };
}
