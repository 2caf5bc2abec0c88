/** Check values for keys on a token, and the proofs that a restored key is the recorded one. */
import { verify as verifySignature } from 'node:crypto';
import type { CheckValue, KeyRecord } from '../core/keys.js';
import { spkiCheckValue, spkiOf } from '../crypto/check-values.js';
import type { KeyObject, Token } from '../hsm/token.js';
import type { Handle } from '../hsm/module.js';

/**
 * The public key object that pairs with a key: same type and CKA_ID, preferring one that also has
 * the same label (ids are not always unique); the same label alone when the key has no id.
 */
export function matchingPublicKey<
  T extends { class: string; keyType: string; id: string; label: string },
>(objects: readonly T[], key: { keyType: string; id: string; label: string }): T | undefined {
  const candidates = objects.filter(
    (p) =>
      p.class === 'public' &&
      p.keyType === key.keyType &&
      (key.id !== '' ? p.id === key.id : p.label === key.label),
  );
  return (
    candidates.find((p) => p.label === key.label) ??
    (candidates.length === 1 ? candidates[0] : undefined)
  );
}

/**
 * The public parts of an asymmetric key: from the key itself (public keys, RSA private keys) or its
 * public object.
 */
function publicPartsOf(key: KeyObject, publicObject?: KeyObject): Parameters<typeof spkiOf>[0] {
  if (key.class === 'public' || (key.modulus && key.publicExponent)) return key;
  return publicObject ?? {};
}

/**
 * The check value custos records for a key (secret: computed in the HSM; asymmetric: from the
 * public key).
 */
export function checkValueOf(token: Token, key: KeyObject, publicObject?: KeyObject): CheckValue {
  if (key.class === 'secret') return token.secretCheckValue(key);
  const spki = spkiOf(publicPartsOf(key, publicObject));
  return spki
    ? { method: 'spki-sha256', value: spkiCheckValue(spki) }
    : { method: 'none', value: '' };
}

export type Proof =
  | 'check value'
  | 'check value + rewrap'
  | 'rewrap'
  | 'check value + signature'
  | 'signature'
  | 'none';

export interface Proved {
  ok: boolean;
  proof: Proof;
  checkValue: CheckValue;
}

/**
 * Proves a secret key on the target is the recorded one: its check value recomputed inside the
 * target HSM, and its re-wrap under the bundle KEK compared with the recorded blob (RFC 5649 is
 * deterministic, so equal blobs mean equal keys). Either suffices when the other is unavailable
 * (e.g. a module that keeps no CKA_CHECK_VALUE on unwrapped keys); a mismatch in either fails.
 */
function proveSecret(token: Token, key: KeyObject, record: KeyRecord, kek: Handle): Proved {
  const cv = token.secretCheckValue(key, record.checkValue.method, true);
  const cvKnown = record.checkValue.method !== 'none' && cv.method !== 'none';
  const cvOk = cv.method === record.checkValue.method && cv.value === record.checkValue.value;
  const rewrapped = token.rewrap(kek, key);
  const rewrapOk = rewrapped === null ? null : rewrapped.toString('base64') === record.wrapped;
  const checkValue = cvKnown ? cv : record.checkValue;
  if ((cvKnown && !cvOk) || rewrapOk === false)
    return { ok: false, proof: cvKnown && !cvOk ? 'check value' : 'rewrap', checkValue };
  const proof: Proof = cvKnown
    ? rewrapOk
      ? 'check value + rewrap'
      : 'check value'
    : rewrapOk
      ? 'rewrap'
      : 'none';
  return { ok: true, proof, checkValue };
}

/**
 * Proves a key on the target is the recorded one. Secret keys: see proveSecret. Private keys: the
 * public part recomputed (RSA), and a signature made by the key that verifies with the recorded
 * public key. `proof: 'none'` means nothing could be checked.
 */
export function proveRestored(
  token: Token,
  restored: KeyObject,
  record: KeyRecord,
  kek: Handle,
): Proved {
  if (record.class === 'secret') return proveSecret(token, restored, record, kek);
  const recordedSpki = spkiOf({
    modulus: record.modulus,
    publicExponent: record.publicExponent,
    ecParams: record.publicKey?.ecParams ?? record.ecParams,
    ecPoint: record.publicKey?.ecPoint,
  });
  const own = spkiOf({ modulus: restored.modulus, publicExponent: restored.publicExponent });
  const cv: CheckValue = own
    ? { method: 'spki-sha256', value: spkiCheckValue(own) }
    : record.checkValue;
  if (own && cv.value !== record.checkValue.value)
    return { ok: false, proof: 'check value', checkValue: cv };
  const challenge = recordedSpki ? token.signChallenge(restored) : null;
  if (challenge && recordedSpki) {
    const key = {
      key: recordedSpki,
      format: 'der' as const,
      type: 'spki' as const,
      dsaEncoding: 'ieee-p1363' as const,
    };
    const ok = verifySignature('sha256', challenge.data, key, challenge.signature);
    return { ok, proof: own ? 'check value + signature' : 'signature', checkValue: cv };
  }
  return { ok: true, proof: own ? 'check value' : 'none', checkValue: cv };
}
