/** The neutral description of HSM objects that custos reads, records in bundles and recreates. */

export const USAGE_FLAGS = [
  'encrypt',
  'decrypt',
  'sign',
  'verify',
  'signRecover',
  'verifyRecover',
  'wrap',
  'unwrap',
  'derive',
] as const;
export type UsageFlag = (typeof USAGE_FLAGS)[number];
export type Usage = Partial<Record<UsageFlag, boolean>>;

/** The usage flags PKCS#11 defines for each class of key object. */
export const SECRET_USAGE_FLAGS: readonly UsageFlag[] = [
  'encrypt',
  'decrypt',
  'sign',
  'verify',
  'wrap',
  'unwrap',
  'derive',
];
export const PRIVATE_USAGE_FLAGS: readonly UsageFlag[] = [
  'decrypt',
  'sign',
  'signRecover',
  'unwrap',
  'derive',
];
export const PUBLIC_USAGE_FLAGS: readonly UsageFlag[] = [
  'encrypt',
  'verify',
  'verifyRecover',
  'wrap',
  'derive',
];

export type KeyClass = 'secret' | 'private' | 'public';

/** How a check value was computed, so a restore computes it the same way. */
export type CheckMethod =
  | 'aes-ecb-zero' // first 3 bytes of AES-ECB(key, 0^128): the classic KCV
  | 'hmac-sha256' // first 3 bytes of HMAC-SHA256(key, "custos check value")
  | 'token' // the module's own CKA_CHECK_VALUE (non-AES secrets that cannot sign)
  | 'spki-sha256' // first 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo
  | 'none'; // nothing can be computed without exposing the key

export interface CheckValue {
  method: CheckMethod;
  value: string;
}

export interface PublicKeyRecord {
  label: string;
  keyType: string;
  usage: Usage;
  /** RSA modulus and exponent, hex. */
  modulus?: string;
  publicExponent?: string;
  /** EC domain parameters (DER) and point (DER OCTET STRING), hex. */
  ecParams?: string;
  ecPoint?: string;
}

export interface CertificateRecord {
  label: string;
  /** DER certificate, base64. */
  value: string;
  subject?: string;
  issuer?: string;
  serialNumber?: string;
}

/** One backed-up key: everything needed to recreate it, and its wrapped value. */
export interface KeyRecord {
  class: 'secret' | 'private';
  keyType: string;
  label: string;
  /** CKA_ID, hex. */
  id: string;
  bits: number;
  usage: Usage;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  ecParams?: string;
  modulus?: string;
  publicExponent?: string;
  checkValue: CheckValue;
  /**
   * AES-KWP (RFC 5649) of the key under the backup KEK: raw value for secrets, PKCS#8 for private
   * keys.
   */
  wrapped: string;
  publicKey?: PublicKeyRecord;
  certificates: CertificateRecord[];
}

export interface SkippedKey {
  class: KeyClass;
  keyType: string;
  label: string;
  id: string;
  reason: string;
}

/** A key as listed by inventory. */
export interface InventoryRow {
  label: string;
  id: string;
  class: KeyClass;
  keyType: string;
  bits: number;
  extractable: boolean;
  sensitive: boolean;
  checkValue: CheckValue;
}

export function describeKey(k: { label: string; id: string }): string {
  return k.id ? `"${k.label}" (id ${k.id})` : `"${k.label}"`;
}

/**
 * A secret key that can sign has as check value the first three bytes of HMAC-SHA256 over this
 * message.
 */
export const HMAC_CHECK_MESSAGE = Buffer.from('custos check value', 'utf8');
