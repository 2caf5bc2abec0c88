/**
 * What a token can show about a key without letting it out: check values of secret keys
 * (computed inside the HSM) and signatures over a fresh challenge by private keys. A token that
 * does not offer the mechanism, or a key that may not be used so, gives no such proof (the other
 * proofs remain); any other failure — a device error above all — is an error, never a "none".
 */
import { createHash, randomBytes } from 'node:crypto';
import { HMAC_CHECK_MESSAGE, type CheckValue, type Usage } from '../core/keys.js';
import { KEY_REFUSES, P, Refused, UNSUPPORTED, attempt, type Handle } from './call.js';
import type { KeyObject, ObjectSession } from './objects.js';

/**
 * Why a check value or a test signature may be unavailable: the mechanism, or this key's use of it.
 */
const NO_PROOF = [...UNSUPPORTED, ...KEY_REFUSES];

/**
 * The check value of a secret key, computed inside the HSM: for AES the KCV (the module's own
 * CKA_CHECK_VALUE when it keeps one, which the standard defines the same way, unless
 * `computeWhenAllowed` asks for an AES-ECB of our own), for other secrets an HMAC when the key
 * may sign, else the module's check value.
 */
export function secretCheckValue(
  t: ObjectSession,
  key: KeyObject,
  method?: CheckValue['method'],
  computeWhenAllowed = false,
): CheckValue {
  const want =
    method ??
    (key.keyType === 'AES'
      ? 'aes-ecb-zero'
      : key.usage.sign
        ? 'hmac-sha256'
        : key.tokenCheckValue
          ? 'token'
          : 'none');
  switch (want) {
    case 'aes-ecb-zero':
      if (key.usage.encrypt && (computeWhenAllowed || key.tokenCheckValue?.length !== 6)) {
        const block = computedCheck(t, key, want);
        if (block) return { method: want, value: block.subarray(0, 3).toString('hex') };
      }
      if (key.tokenCheckValue?.length === 6) return { method: want, value: key.tokenCheckValue };
      return { method: 'none', value: '' };
    case 'hmac-sha256': {
      const mac = key.usage.sign ? computedCheck(t, key, want) : null;
      return mac
        ? { method: want, value: mac.subarray(0, 3).toString('hex') }
        : { method: 'none', value: '' };
    }
    case 'token':
      return key.tokenCheckValue
        ? { method: want, value: key.tokenCheckValue }
        : { method: 'none', value: '' };
    default:
      return { method: 'none', value: '' };
  }
}

/**
 * A check value's bytes computed inside the token (AES-ECB of a zero block, or an HMAC of the
 * check message), or null when the token will not compute it.
 */
function computedCheck(
  t: ObjectSession,
  key: KeyObject,
  how: 'aes-ecb-zero' | 'hmac-sha256',
): Buffer | null {
  const out = attempt(
    `compute the check value of key "${key.label}" on token "${t.identity.label}"`,
    NO_PROOF,
    () => {
      if (how === 'aes-ecb-zero') {
        t.lib.C_EncryptInit(t.session, { mechanism: P.CKM_AES_ECB }, key.handle);
        return Buffer.from(t.lib.C_Encrypt(t.session, Buffer.alloc(16), Buffer.alloc(16)));
      }
      t.lib.C_SignInit(t.session, { mechanism: P.CKM_SHA256_HMAC }, key.handle);
      return Buffer.from(t.lib.C_Sign(t.session, HMAC_CHECK_MESSAGE, Buffer.alloc(64)));
    },
  );
  return out instanceof Refused ? null : out;
}

/**
 * Signs a fresh random challenge with a private key, for proving a restored key against the
 * recorded public key. Returns the challenge and the signature (RSA PKCS#1 v1.5 over SHA-256;
 * ECDSA over its SHA-256, r ‖ s), or null when the key may not sign or the token will not.
 */
export function signChallenge(
  t: ObjectSession,
  key: { handle: Handle; keyType: string; usage: Usage; label: string },
): { data: Buffer; signature: Buffer } | null {
  if (!key.usage.sign || (key.keyType !== 'RSA' && key.keyType !== 'EC')) return null;
  const data = randomBytes(32);
  const out = attempt(
    `sign a test challenge with key "${key.label}" on token "${t.identity.label}"`,
    NO_PROOF,
    () => {
      if (key.keyType === 'RSA') {
        t.lib.C_SignInit(t.session, { mechanism: P.CKM_SHA256_RSA_PKCS }, key.handle);
        return Buffer.from(t.lib.C_Sign(t.session, data, Buffer.alloc(2048)));
      }
      t.lib.C_SignInit(t.session, { mechanism: P.CKM_ECDSA }, key.handle);
      return Buffer.from(
        t.lib.C_Sign(t.session, createHash('sha256').update(data).digest(), Buffer.alloc(512)),
      );
    },
  );
  return out instanceof Refused ? null : { data, signature: out };
}
