/**
 * Where PKCS#11 modules differ from the standard, or from each other, in ways custos must know.
 * Each quirk is named, says which modules have it, and is tested (test/unit/quirks.test.ts, and
 * the NSS end-to-end tests). Nothing outside this file tests for a module by name.
 *
 * Differences custos handles without naming a module (they are checked on every token):
 * - which AES key wrap mechanism is RFC 5649 (a known-answer test, wrapping.ts);
 * - usage flags a module turns on or off when it unwraps a key (every created key is read back
 *   and corrected, objects.ts);
 * - which RSA-OAEP hashes a module takes (tried for real, transport.ts).
 */
import type { TokenIdentity } from '../core/bundle.js';
import { P } from './call.js';
import type { Attr } from './attributes.js';

/** Mozilla NSS softoken (libsoftokn3), as its tokens describe themselves. */
export function isNssSoftoken(token: Pick<TokenIdentity, 'manufacturer' | 'model'>): boolean {
  return token.manufacturer === 'Mozilla Foundation' && /^NSS\b/.test(token.model);
}

// ------------------------------------------------------------------ NSS: CKA_NSS_DB on private-key
// unwrap

/** NSS's vendor attribute CKA_NSS_DB (CKA_NSS + 0xDB00; CKA_NETSCAPE_DB in older headers). */
export const CKA_NSS_DB = 0xd5a0db00;

/**
 * Quirk `nss-db-attribute`: NSS softoken will not unwrap an EC private key
 * (CKR_TEMPLATE_INCOMPLETE)
 * unless the template carries CKA_NSS_DB, the public point it files the key under (it stores the
 * bare point, without the DER OCTET STRING around CKA_EC_POINT). Returns the extra attributes, or
 * why they cannot be made (the record has no public point).
 */
export function nssDbAttribute(
  token: Pick<TokenIdentity, 'manufacturer' | 'model'>,
  key: { class: string; keyType: string; ecPoint?: string },
): Attr[] | string {
  if (!isNssSoftoken(token) || key.class !== 'private' || key.keyType !== 'EC') return [];
  if (!key.ecPoint)
    return 'NSS softoken needs the public point (CKA_NSS_DB) to unwrap an EC private key, and the record has no public key for it';
  return [{ type: CKA_NSS_DB, value: bareEcPoint(Buffer.from(key.ecPoint, 'hex')) }];
}

/**
 * The point inside a DER OCTET STRING (CKA_EC_POINT as the standard has it), or the bytes as they
 * are.
 */
export function bareEcPoint(ecPoint: Buffer): Buffer {
  if (ecPoint[0] !== 0x04 || ecPoint.length < 2) return ecPoint;
  const first = ecPoint[1] as number;
  if (first < 0x80) return first === ecPoint.length - 2 ? ecPoint.subarray(2) : ecPoint;
  const n = first & 0x7f;
  if (n < 1 || n > 2 || ecPoint.length < 2 + n) return ecPoint;
  const len = n === 1 ? (ecPoint[2] as number) : ecPoint.readUInt16BE(2);
  return len === ecPoint.length - 2 - n ? ecPoint.subarray(2 + n) : ecPoint;
}

// ------------------------------------------------------------------ older modules: CKA_COPYABLE

/**
 * Quirk `copyable-unknown`: CKA_COPYABLE is PKCS#11 2.40; a module built for 2.20 (opencryptoki 3.8
 * among them) refuses a template that names it with CKR_ATTRIBUTE_TYPE_INVALID. custos sets it
 * false on its transient keys where it can; where the module does not know the attribute, no
 * C_CopyObject can copy the key with other attributes either, so the template is used without it.
 */
export function withoutCopyable(template: readonly Attr[]): Attr[] {
  return template.filter((a) => a.type !== P.CKA_COPYABLE);
}

// ------------------------------------------------------------------ serial numbers that are all
// zero

/**
 * Quirk `zero-serial`: NSS softoken gives every token the serial 0000000000000000; so do some
 * others.
 */
export function hasNoSerial(serial: string): boolean {
  return /^[0\s]*$/.test(serial);
}

/**
 * Whether two token identities name the same token. Label and serial first; where the serial says
 * nothing (quirk `zero-serial`), manufacturer and model must match too — still weaker than a
 * serial, which messages say.
 */
export function sameTokenIdentity(a: TokenIdentity, b: TokenIdentity): boolean {
  if (a.label !== b.label || a.serial !== b.serial) return false;
  if (!hasNoSerial(a.serial)) return true;
  return a.manufacturer === b.manufacturer && a.model === b.model;
}

/** A token as messages name it: by serial, or by model and maker where the serial is all zero. */
export function tokenName(t: TokenIdentity): string {
  return hasNoSerial(t.serial)
    ? `"${t.label}" (${t.model || 'model unknown'}, ${t.manufacturer || 'maker unknown'}; no serial number)`
    : `"${t.label}" (serial ${t.serial})`;
}

// ------------------------------------------------------------------ PIN length ranges

/**
 * CK_UNAVAILABLE_INFORMATION and CK_EFFECTIVELY_INFINITE (0), as pkcs11js hands a CK_ULONG over.
 */
const UNAVAILABLE = 2 ** 32 - 1;

/**
 * Quirk `pin-length-range`: ulMinPinLen/ulMaxPinLen are not always a usable range. NSS softoken
 * says
 * 0 to 500; some modules say 0 for "no limit" (CK_EFFECTIVELY_INFINITE), or all ones for
 * "unknown" (CK_UNAVAILABLE_INFORMATION, as 2^32−1 or 2^64−1). Returns limits to check a PIN
 * against: at least 1 character, at most `max` (Infinity when the module sets none).
 */
export function pinLimits(info: { minPinLen: number; maxPinLen: number }): {
  min: number;
  max: number;
} {
  const known = (n: number) => Number.isFinite(n) && n >= 0 && n < UNAVAILABLE;
  const min = known(info.minPinLen) ? Math.max(1, info.minPinLen) : 1;
  const max = known(info.maxPinLen) && info.maxPinLen > 0 ? info.maxPinLen : Infinity;
  return { min, max: Math.max(min, max) };
}

// ------------------------------------------------------------------ NSS: no security officer

/**
 * Quirk `user-sets-own-pin`: NSS softoken has no security officer once its database has a password
 * (C_Login as CKU_SO is CKR_USER_TYPE_INVALID), so C_InitPIN cannot replace the user PIN. There the
 * user changes it: logged in with the current PIN, C_SetPIN(current, new).
 */
export function userSetsOwnPin(token: Pick<TokenIdentity, 'manufacturer' | 'model'>): boolean {
  return isNssSoftoken(token);
}

// ------------------------------------------------------------------ SoftHSM2: its store, read once

/**
 * Quirk `store-read-at-initialise`: SoftHSM2 reads its store of tokens at C_Initialize and never
 * again in that process, so a token created meanwhile, or one whose files another process was
 * writing just then, stays out of its slot list until the module is initialised again.
 */
export function readsStoreAtInitialise(module: { manufacturerID: string }): boolean {
  return module.manufacturerID.trim() === 'SoftHSM';
}
