// Check values custos records and the proof that a restored key is the recorded one
// (src/ops/check-values.ts). Public check values are compared with node:crypto's own DER
// SubjectPublicKeyInfo (SPEC.md: spki-sha256 is the first 8 bytes of its SHA-256); signatures are
// made by node:crypto keys, standing in for the token's.
import { describe, expect, test } from 'vitest';
import { createHash, generateKeyPairSync, sign, type KeyObject as NodeKey } from 'node:crypto';
import type { CheckValue, KeyRecord } from '../../src/core/keys.js';
import type { KeyObject, Token } from '../../src/hsm/token.js';
import { checkValueOf, matchingPublicKey, proveRestored } from '../../src/ops/check-values.js';

const spkiCheck = (k: NodeKey) =>
  createHash('sha256')
    .update(k.export({ type: 'spki', format: 'der' }))
    .digest()
    .subarray(0, 8)
    .toString('hex');

const b64hex = (s: string) => Buffer.from(s, 'base64url').toString('hex');
function rsaParts(k: NodeKey) {
  const jwk = k.export({ format: 'jwk' });
  return { modulus: b64hex(jwk.n as string), publicExponent: b64hex(jwk.e as string) };
}
/** CKA_EC_PARAMS (the curve OID, DER) and CKA_EC_POINT (DER OCTET STRING) of a P-256 key. */
function ecParts(k: NodeKey) {
  const jwk = k.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x as string, 'base64url'),
    Buffer.from(jwk.y as string, 'base64url'),
  ]);
  return {
    ecParams: '06082a8648ce3d030107',
    ecPoint: Buffer.concat([Buffer.from([4, point.length]), point]).toString('hex'),
  };
}

function keyObject(more: Partial<KeyObject>): KeyObject {
  return {
    handle: Buffer.alloc(8),
    label: 'k',
    id: '01',
    class: 'private',
    objectClass: 3,
    keyType: 'RSA',
    bits: 2048,
    usage: { sign: true },
    private: true,
    sensitive: true,
    extractable: true,
    labelIsText: true,
    onToken: true,
    ...more,
  };
}

interface FakeToken {
  secretCheckValue: (k: KeyObject, method?: string, compute?: boolean) => CheckValue;
  rewrap: (kek: Buffer, k: KeyObject) => Buffer | null;
  signChallenge: (k: KeyObject) => { data: Buffer; signature: Buffer } | null;
  asked: unknown[][];
}
function fakeToken(more: Partial<FakeToken> = {}): Token & FakeToken {
  const asked: unknown[][] = [];
  return {
    asked,
    secretCheckValue: (k: KeyObject, method?: string, compute?: boolean) => {
      asked.push([k.label, method, compute]);
      return { method: 'aes-ecb-zero', value: 'abcdef' };
    },
    rewrap: () => null,
    signChallenge: () => null,
    ...more,
  } as unknown as Token & FakeToken;
}

describe('matchingPublicKey', () => {
  const pub = (label: string, id: string, keyType = 'RSA') => ({
    class: 'public',
    keyType,
    id,
    label,
  });

  test('same type and CKA_ID; among several, the one with the same label', () => {
    const objects = [pub('a', '01'), pub('b', '01'), pub('c', '02')];
    expect(matchingPublicKey(objects, { keyType: 'RSA', id: '01', label: 'b' })).toBe(objects[1]);
    expect(matchingPublicKey(objects, { keyType: 'RSA', id: '02', label: 'zzz' })).toBe(objects[2]);
    // two with the id and neither with the label: no guess
    expect(matchingPublicKey(objects, { keyType: 'RSA', id: '01', label: 'x' })).toBeUndefined();
  });

  test('another type, another class or another id never matches; no id means the same label', () => {
    const objects = [pub('a', '01', 'EC'), { ...pub('a', '01'), class: 'private' }];
    expect(matchingPublicKey(objects, { keyType: 'RSA', id: '01', label: 'a' })).toBeUndefined();
    const noId = [pub('a', ''), pub('b', '')];
    expect(matchingPublicKey(noId, { keyType: 'RSA', id: '', label: 'b' })).toBe(noId[1]);
    expect(matchingPublicKey(noId, { keyType: 'RSA', id: '', label: 'c' })).toBeUndefined();
  });
});

describe('checkValueOf', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  test("RSA: the SPKI check value equals node:crypto's, from the private key's own modulus", () => {
    const k = keyObject({ ...rsaParts(rsa.publicKey) });
    expect(checkValueOf(fakeToken(), k)).toEqual({
      method: 'spki-sha256',
      value: spkiCheck(rsa.publicKey),
    });
    expect(
      checkValueOf(fakeToken(), keyObject({ class: 'public', ...rsaParts(rsa.publicKey) })),
    ).toEqual({ method: 'spki-sha256', value: spkiCheck(rsa.publicKey) });
  });

  test("EC: from the matching public key object, equal to node:crypto's; without one, none", () => {
    const priv = keyObject({ keyType: 'EC', ecParams: ecParts(ec.publicKey).ecParams });
    const pubObject = keyObject({ class: 'public', keyType: 'EC', ...ecParts(ec.publicKey) });
    expect(checkValueOf(fakeToken(), priv, pubObject)).toEqual({
      method: 'spki-sha256',
      value: spkiCheck(ec.publicKey),
    });
    expect(checkValueOf(fakeToken(), priv)).toEqual({ method: 'none', value: '' });
  });

  test('a secret key: what the token computes', () => {
    const token = fakeToken();
    const k = keyObject({ class: 'secret', keyType: 'AES', label: 'aes' });
    expect(checkValueOf(token, k)).toEqual({ method: 'aes-ecb-zero', value: 'abcdef' });
    expect(token.asked).toEqual([['aes', undefined, undefined]]);
  });
});

describe('proveRestored: a secret key', () => {
  const kek = Buffer.alloc(8);
  const blob = Buffer.from('recorded blob');
  const record = (checkValue: CheckValue): KeyRecord => ({
    class: 'secret',
    keyType: 'AES',
    label: 'k',
    id: '01',
    bits: 256,
    usage: { encrypt: true },
    private: true,
    sensitive: true,
    extractable: false,
    checkValue,
    wrapped: blob.toString('base64'),
    certificates: [],
  });
  const KCV: CheckValue = { method: 'aes-ecb-zero', value: 'abcdef' };
  const NONE: CheckValue = { method: 'none', value: '' };

  test.each([
    // recorded, computed on the target, re-wrap on the target, outcome
    ['both agree', KCV, KCV, blob, true, 'check value + rewrap'],
    ['no re-wrap there', KCV, KCV, null, true, 'check value'],
    ['no check value there', KCV, NONE, blob, true, 'rewrap'],
    ['none recorded', NONE, KCV, blob, true, 'rewrap'],
    ['nothing can be checked', KCV, NONE, null, true, 'none'],
    ['the check value differs', KCV, { ...KCV, value: 'abcdee' }, blob, false, 'check value'],
    [
      'the check value differs, re-wrap agrees',
      KCV,
      { ...KCV, value: '000000' },
      blob,
      false,
      'check value',
    ],
    ['the re-wrap differs', KCV, KCV, Buffer.from('other'), false, 'rewrap'],
    ['the re-wrap differs, no check value', NONE, NONE, Buffer.from('other'), false, 'rewrap'],
    [
      'computed by another method',
      KCV,
      { method: 'token', value: 'abcdef' },
      null,
      false,
      'check value',
    ],
  ] as const)('%s', (_title, recorded, computed, rewrapped, ok, proof) => {
    const token = fakeToken({
      secretCheckValue: (k, method, compute) => {
        token.asked.push([k.label, method, compute]);
        return computed;
      },
      rewrap: () => rewrapped,
    });
    const out = proveRestored(token, keyObject({ class: 'secret' }), record(recorded), kek);
    expect({ ok: out.ok, proof: out.proof }).toEqual({ ok, proof });
    // the check value is recomputed as it was recorded, inside the target
    expect(token.asked).toEqual([['k', recorded.method, true]]);
  });
});

describe('proveRestored: a private key', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer =
    (key: NodeKey, p1363 = false) =>
    () => {
      const data = Buffer.from('fresh challenge');
      const signature = sign('sha256', data, p1363 ? { key, dsaEncoding: 'ieee-p1363' } : key);
      return { data, signature };
    };
  const rsaRecord = (): KeyRecord => ({
    class: 'private',
    keyType: 'RSA',
    label: 'k',
    id: '01',
    bits: 2048,
    usage: { sign: true },
    private: true,
    sensitive: true,
    extractable: false,
    ...rsaParts(rsa.publicKey),
    checkValue: { method: 'spki-sha256', value: spkiCheck(rsa.publicKey) },
    wrapped: '',
    certificates: [],
  });

  test('RSA: the modulus read back and a signature by the restored key, verified with the recorded public key', () => {
    const restored = keyObject({ ...rsaParts(rsa.publicKey) });
    const good = proveRestored(
      fakeToken({ signChallenge: signer(rsa.privateKey) }),
      restored,
      rsaRecord(),
      Buffer.alloc(8),
    );
    expect(good).toEqual({
      ok: true,
      proof: 'check value + signature',
      checkValue: { method: 'spki-sha256', value: spkiCheck(rsa.publicKey) },
    });
    const forged = proveRestored(
      fakeToken({ signChallenge: signer(otherRsa.privateKey) }),
      restored,
      rsaRecord(),
      Buffer.alloc(8),
    );
    expect(forged.ok).toBe(false);
    const unsigned = proveRestored(fakeToken(), restored, rsaRecord(), Buffer.alloc(8));
    expect({ ok: unsigned.ok, proof: unsigned.proof }).toEqual({ ok: true, proof: 'check value' });
  });

  test('RSA: another modulus on the target fails on the check value, before any signature', () => {
    let asked = 0;
    const token = fakeToken({
      signChallenge: () => {
        asked++;
        return signer(rsa.privateKey)();
      },
    });
    const out = proveRestored(
      token,
      keyObject({ ...rsaParts(otherRsa.publicKey) }),
      rsaRecord(),
      Buffer.alloc(8),
    );
    expect(out).toEqual({
      ok: false,
      proof: 'check value',
      checkValue: { method: 'spki-sha256', value: spkiCheck(otherRsa.publicKey) },
    });
    expect(asked).toBe(0);
  });

  test('EC: an ECDSA signature (r ‖ s) checked against the recorded public key', () => {
    const record: KeyRecord = {
      ...rsaRecord(),
      keyType: 'EC',
      modulus: undefined,
      publicExponent: undefined,
      ecParams: ecParts(ec.publicKey).ecParams,
      publicKey: { label: 'k', keyType: 'EC', usage: { verify: true }, ...ecParts(ec.publicKey) },
      checkValue: { method: 'spki-sha256', value: spkiCheck(ec.publicKey) },
    };
    const restored = keyObject({ keyType: 'EC' });
    const good = proveRestored(
      fakeToken({ signChallenge: signer(ec.privateKey, true) }),
      restored,
      record,
      Buffer.alloc(8),
    );
    expect(good).toEqual({ ok: true, proof: 'signature', checkValue: record.checkValue });
    const bad = proveRestored(
      fakeToken({ signChallenge: signer(otherEc.privateKey, true) }),
      restored,
      record,
      Buffer.alloc(8),
    );
    expect({ ok: bad.ok, proof: bad.proof }).toEqual({ ok: false, proof: 'signature' });
    // a DER signature is not what a token gives (CKM_ECDSA is r ‖ s): it does not verify
    const der = proveRestored(
      fakeToken({ signChallenge: signer(ec.privateKey, false) }),
      restored,
      record,
      Buffer.alloc(8),
    );
    expect(der.ok).toBe(false);
    // recorded without its public key: nothing to check against
    const none = proveRestored(
      fakeToken({ signChallenge: signer(ec.privateKey, true) }),
      restored,
      { ...record, publicKey: undefined },
      Buffer.alloc(8),
    );
    expect({ ok: none.ok, proof: none.proof }).toEqual({ ok: true, proof: 'none' });
  });
});
