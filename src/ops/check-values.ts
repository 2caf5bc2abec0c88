/** Check values for keys on a token, and the proofs that a restored key is the recorded one. */
import { verify as verifySignature } from 'node:crypto';
import type { CheckValue, KeyRecord } from '../core/keys.js';
import { spkiCheckValue, spkiOf } from '../crypto/check-values.js';
import type { KeyObject, Token } from '../hsm/token.js';

/**
 * The public key object that pairs with a key: same type and CKA_ID, preferring one that also has
 * the same label (ids are not always unique); the same label alone when the key has no id.
 */
export function matchingPublicKey<T extends { class: string; keyType: string; id: string; label: string }>(objects: readonly T[], key: { keyType: string; id: string; label: string }): T | undefined {
  const candidates = objects.filter((p) => p.class === 'public' && p.keyType === key.keyType && (key.id !== '' ? p.id === key.id : p.label === key.label));
  return candidates.find((p) => p.label === key.label) ?? (candidates.length === 1 ? candidates[0] : undefined);
}

/** The public parts of an asymmetric key: from the key itself (public keys, RSA private keys) or its public object. */
function publicPartsOf(key: KeyObject, publicObject?: KeyObject): Parameters<typeof spkiOf>[0] {
  if (key.class === 'public' || (key.modulus && key.publicExponent)) return key;
  return publicObject ?? {};
}

export function checkValueOf(token: Token, key: KeyObject, publicObject?: KeyObject, method?: CheckValue['method']): CheckValue {
  if (key.class === 'secret') return token.secretCheckValue(key, method);
  const spki = spkiOf(publicPartsOf(key, publicObject));
  return spki ? { method: 'spki-sha256', value: spkiCheckValue(spki) } : { method: 'none', value: '' };
}

export type Proof = 'check value' | 'check value + signature' | 'signature' | 'none';

/**
 * Proves a restored key is the recorded one. Secret keys: the check value recomputed inside the
 * target HSM. Private keys: the public part recomputed (RSA), and a signature made by the restored
 * key that verifies with the recorded public key.
 */
export function proveRestored(token: Token, restored: KeyObject, record: KeyRecord): { ok: boolean; proof: Proof; checkValue: CheckValue } {
  if (record.class === 'secret') {
    const cv = token.secretCheckValue(restored, record.checkValue.method, true);
    if (record.checkValue.method === 'none') return { ok: true, proof: 'none', checkValue: cv };
    return { ok: cv.method === record.checkValue.method && cv.value === record.checkValue.value, proof: 'check value', checkValue: cv };
  }
  const recordedSpki = spkiOf({ modulus: record.modulus, publicExponent: record.publicExponent, ecParams: record.publicKey?.ecParams ?? record.ecParams, ecPoint: record.publicKey?.ecPoint });
  const own = spkiOf({ modulus: restored.modulus, publicExponent: restored.publicExponent });
  const cv: CheckValue = own ? { method: 'spki-sha256', value: spkiCheckValue(own) } : record.checkValue;
  if (own && cv.value !== record.checkValue.value) return { ok: false, proof: 'check value', checkValue: cv };
  const challenge = recordedSpki ? token.signChallenge(restored) : null;
  if (challenge && recordedSpki) {
    const key = { key: recordedSpki, format: 'der' as const, type: 'spki' as const, dsaEncoding: 'ieee-p1363' as const };
    const ok = verifySignature('sha256', challenge.data, key, challenge.signature);
    return { ok, proof: own ? 'check value + signature' : 'signature', checkValue: cv };
  }
  return { ok: true, proof: own ? 'check value' : 'none', checkValue: cv };
}
