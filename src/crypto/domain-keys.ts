/**
 * The keys of an escrow domain, all done in software on public data or on the domain secret:
 * the secret itself (an age identity, whose text is what custodians split), the authority key
 * derived from it, and checks of the ECDSA P-256 signatures that enrolled HSMs make.
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign, verify } from 'node:crypto';
import {
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
} from 'age-encryption';
import type { SealType } from '../core/domain.js';
import { ED25519_SPKI_PREFIX } from '../core/der.js';
import type { Signer } from './ed25519.js';
import { wipe } from './wipe.js';

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const AUTHORITY_INFO = 'custos-domain/1 authority';

export interface DomainSecret {
  /** The age identity's text (`AGE-SECRET-KEY-…`) as bytes: what is split. Wipe when done. */
  identity: Buffer;
  recipient: string;
}

export async function freshDomainSecret(type: SealType): Promise<DomainSecret> {
  const text =
    type === 'age-x25519' ? await generateX25519Identity() : await generateHybridIdentity();
  return { identity: Buffer.from(text, 'ascii'), recipient: await identityToRecipient(text) };
}

/** The recipient of a reassembled identity, or null when the bytes are not an age identity. */
export async function recipientOfIdentity(identity: Uint8Array): Promise<string | null> {
  const text = Buffer.from(identity).toString('ascii');
  if (!/^AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]+$/.test(text)) return null;
  try {
    return await identityToRecipient(text);
  } catch {
    return null;
  }
}

/**
 * The domain's authority key: Ed25519 from HKDF over the identity, so only a quorum can sign with
 * it.
 */
export function authoritySigner(identity: Uint8Array): Signer {
  const seed = Buffer.from(hkdfSync('sha256', identity, Buffer.alloc(0), AUTHORITY_INFO, 32));
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  wipe(seed);
  const raw = createPublicKey(privateKey)
    .export({ format: 'der', type: 'spki' })
    .subarray(ED25519_SPKI_PREFIX.length);
  return { publicKey: Buffer.from(raw), sign: (data) => sign(null, data, privateKey) };
}

/**
 * Checks an ECDSA P-256 signature (r ‖ s, as PKCS#11 CKM_ECDSA returns it) over SHA-256 of the
 * data.
 */
export function verifyEcdsaP256(
  spkiBase64: string,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    const key = createPublicKey({
      key: Buffer.from(spkiBase64, 'base64'),
      format: 'der',
      type: 'spki',
    });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      return false;
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/** How enrolments name each other: the SHA-256 of the key's SPKI, hex. */
export function spkiFingerprint(spkiBase64: string): string {
  return createHash('sha256').update(Buffer.from(spkiBase64, 'base64')).digest('hex');
}
