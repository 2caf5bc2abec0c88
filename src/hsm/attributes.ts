/**
 * PKCS#11 attribute names, key types and templates, translated to and from custos's neutral
 * records.
 */
import { P } from './module.js';
import {
  PRIVATE_USAGE_FLAGS,
  PUBLIC_USAGE_FLAGS,
  SECRET_USAGE_FLAGS,
  type KeyRecord,
  type PublicKeyRecord,
  type CertificateRecord,
  type Usage,
  type UsageFlag,
} from '../core/keys.js';

type AttrValue = number | boolean | string | Buffer;
export interface Attr {
  type: number;
  value?: AttrValue;
}

export const USAGE_ATTRIBUTE: Record<UsageFlag, number> = {
  encrypt: P.CKA_ENCRYPT,
  decrypt: P.CKA_DECRYPT,
  sign: P.CKA_SIGN,
  verify: P.CKA_VERIFY,
  signRecover: P.CKA_SIGN_RECOVER,
  verifyRecover: P.CKA_VERIFY_RECOVER,
  wrap: P.CKA_WRAP,
  unwrap: P.CKA_UNWRAP,
  derive: P.CKA_DERIVE,
};

const PREFERRED_KEY_TYPE_NAMES = new Set([
  'EC',
  'EC_EDWARDS',
  'EC_MONTGOMERY',
  'GENERIC_SECRET',
  'DES3',
  'AES',
  'RSA',
  'DSA',
  'DH',
]);
const keyTypeNames = new Map<number, string>();
const keyTypeCodes = new Map<string, number>();
for (const [name, value] of Object.entries(P)) {
  if (!name.startsWith('CKK_') || typeof value !== 'number') continue;
  const short = name.slice(4);
  keyTypeCodes.set(short, value);
  if (!keyTypeNames.has(value) || PREFERRED_KEY_TYPE_NAMES.has(short))
    keyTypeNames.set(value, short);
}

export function keyTypeName(code: number): string {
  return keyTypeNames.get(code) ?? `0x${code.toString(16)}`;
}

export function keyTypeCode(name: string): number {
  const code =
    keyTypeCodes.get(name) ??
    (/^0x[0-9a-f]+$/.test(name) ? parseInt(name.slice(2), 16) : undefined);
  if (code === undefined) throw new Error(`unknown key type ${name}`);
  return code;
}

export function ulong(buf: Buffer | undefined): number {
  if (!buf || buf.length === 0) return 0;
  return buf.length >= 8 ? Number(buf.readBigUInt64LE(0)) : buf.readUInt32LE(0);
}

export function bool(buf: Buffer | undefined): boolean {
  return !!buf && buf.length > 0 && buf[0] !== 0;
}

export function usageTemplate(usage: Usage, flags: readonly UsageFlag[]): Attr[] {
  return flags.map((f) => ({ type: USAGE_ATTRIBUTE[f], value: usage[f] === true }));
}

/**
 * Usage flags set explicitly, in the order listed: those in `allowed` true, every other one false.
 */
export function onlyUsage(allowed: readonly UsageFlag[], listed: readonly UsageFlag[]): Attr[] {
  return listed.map((f) => ({ type: USAGE_ATTRIBUTE[f], value: allowed.includes(f) }));
}

/** A private key that never leaves its token: private, sensitive, not extractable. */
export const NEVER_LEAVES: readonly Attr[] = [
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_SENSITIVE, value: true },
  { type: P.CKA_EXTRACTABLE, value: false },
];

/** Template for a restored key: every security attribute set explicitly, always sensitive. */
export function unwrapTemplate(
  k: Pick<KeyRecord, 'class' | 'keyType' | 'label' | 'id' | 'extractable' | 'usage'>,
): Attr[] {
  const cls = k.class === 'secret' ? P.CKO_SECRET_KEY : P.CKO_PRIVATE_KEY;
  return [
    { type: P.CKA_CLASS, value: cls },
    { type: P.CKA_KEY_TYPE, value: keyTypeCode(k.keyType) },
    { type: P.CKA_TOKEN, value: true },
    // Always private: a file-store token keeps non-private objects readable on disk.
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: k.extractable },
    { type: P.CKA_LABEL, value: k.label },
    { type: P.CKA_ID, value: Buffer.from(k.id, 'hex') },
    ...usageTemplate(k.usage, k.class === 'secret' ? SECRET_USAGE_FLAGS : PRIVATE_USAGE_FLAGS),
  ];
}

export function publicKeyTemplate(pub: PublicKeyRecord, id: string): Attr[] {
  const t: Attr[] = [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
    { type: P.CKA_KEY_TYPE, value: keyTypeCode(pub.keyType) },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_LABEL, value: pub.label },
    { type: P.CKA_ID, value: Buffer.from(id, 'hex') },
    ...usageTemplate(pub.usage, PUBLIC_USAGE_FLAGS),
  ];
  if (pub.modulus) t.push({ type: P.CKA_MODULUS, value: Buffer.from(pub.modulus, 'hex') });
  if (pub.publicExponent)
    t.push({ type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from(pub.publicExponent, 'hex') });
  if (pub.ecParams) t.push({ type: P.CKA_EC_PARAMS, value: Buffer.from(pub.ecParams, 'hex') });
  if (pub.ecPoint) t.push({ type: P.CKA_EC_POINT, value: Buffer.from(pub.ecPoint, 'hex') });
  return t;
}

export function certificateTemplate(cert: CertificateRecord, id: string): Attr[] {
  const t: Attr[] = [
    { type: P.CKA_CLASS, value: P.CKO_CERTIFICATE },
    { type: P.CKA_CERTIFICATE_TYPE, value: P.CKC_X_509 },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_LABEL, value: cert.label },
    { type: P.CKA_ID, value: Buffer.from(id, 'hex') },
    { type: P.CKA_VALUE, value: Buffer.from(cert.value, 'base64') },
  ];
  if (cert.subject) t.push({ type: P.CKA_SUBJECT, value: Buffer.from(cert.subject, 'hex') });
  if (cert.issuer) t.push({ type: P.CKA_ISSUER, value: Buffer.from(cert.issuer, 'hex') });
  if (cert.serialNumber)
    t.push({ type: P.CKA_SERIAL_NUMBER, value: Buffer.from(cert.serialNumber, 'hex') });
  return t;
}

/**
 * A transient AES key custos makes for itself (backup KEK, transport key): a session object,
 * sensitive, with every usage flag set explicitly and only `usage` allowed.
 */
export function sessionAesTemplate(label: string, extractable: boolean, usage: Usage): Attr[] {
  return [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: extractable },
    ...usageTemplate(usage, SECRET_USAGE_FLAGS),
    { type: P.CKA_LABEL, value: label },
  ];
}
