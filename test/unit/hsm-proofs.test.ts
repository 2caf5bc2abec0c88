// Check values and test signatures computed inside a token (src/hsm/proofs.ts), on the in-memory
// stand-in (hsm-fake.ts), whose AES-ECB, HMAC and RSA signing are node:crypto's. The expected
// values are computed here with node:crypto from SPEC.md's definitions: aes-ecb-zero is the first
// 3 bytes of AES-ECB(key, 0^128), hmac-sha256 the first 3 of HMAC-SHA-256(key, "custos check
// value").
import { describe, expect, test } from 'vitest';
import { createCipheriv, createHmac, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { P } from '../../src/hsm/call.js';
import { secretCheckValue, signChallenge } from '../../src/hsm/proofs.js';
import type { KeyObject } from '../../src/hsm/objects.js';
import { FakeModule, fakeSession, type FakeOptions } from './hsm-fake.js';
import { catchCustos } from './helpers.js';

function kcv(key: Buffer): string {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return c.update(Buffer.alloc(16)).subarray(0, 3).toString('hex');
}
const hmacCheck = (key: Buffer) =>
  createHmac('sha256', key).update('custos check value').digest().subarray(0, 3).toString('hex');

function setup(options: FakeOptions = {}) {
  const lib = new FakeModule(options);
  return { lib, t: fakeSession(lib) };
}

function key(lib: FakeModule, value: Buffer, more: Partial<KeyObject>): KeyObject {
  return {
    handle: lib.add({ template: [], value }),
    label: 'k1',
    id: '01',
    class: 'secret',
    objectClass: P.CKO_SECRET_KEY,
    keyType: 'AES',
    bits: value.length * 8,
    usage: {},
    private: true,
    sensitive: true,
    extractable: true,
    labelIsText: true,
    onToken: true,
    ...more,
  };
}

const REFUSALS = [
  ['CKR_MECHANISM_INVALID', P.CKR_MECHANISM_INVALID],
  ['CKR_MECHANISM_PARAM_INVALID', P.CKR_MECHANISM_PARAM_INVALID],
  ['CKR_FUNCTION_NOT_SUPPORTED', P.CKR_FUNCTION_NOT_SUPPORTED],
  ['CKR_KEY_FUNCTION_NOT_PERMITTED', P.CKR_KEY_FUNCTION_NOT_PERMITTED],
  ['CKR_KEY_TYPE_INCONSISTENT', P.CKR_KEY_TYPE_INCONSISTENT],
  ['CKR_KEY_SIZE_RANGE', P.CKR_KEY_SIZE_RANGE],
] as const;
const FAILURES = [
  ['CKR_DEVICE_ERROR', P.CKR_DEVICE_ERROR],
  ['CKR_GENERAL_ERROR', P.CKR_GENERAL_ERROR],
  ['CKR_SESSION_HANDLE_INVALID', P.CKR_SESSION_HANDLE_INVALID],
  ['CKR_USER_NOT_LOGGED_IN', P.CKR_USER_NOT_LOGGED_IN],
  ['CKR_ARGUMENTS_BAD', P.CKR_ARGUMENTS_BAD],
] as const;

describe('secretCheckValue', () => {
  test('AES: the KCV computed in the token equals AES-ECB of a zero block (node:crypto), for 128, 192 and 256 bits', () => {
    const { lib, t } = setup();
    for (const n of [16, 24, 32]) {
      const value = randomBytes(n);
      const cv = secretCheckValue(t, key(lib, value, { usage: { encrypt: true } }));
      expect(cv).toEqual({ method: 'aes-ecb-zero', value: kcv(value) });
    }
    const [init] = lib.calls.filter((c) => c.fn === 'C_EncryptInit');
    expect((init?.args[1] as { mechanism: number }).mechanism).toBe(P.CKM_AES_ECB);
  });

  test("AES: the module's own 3-byte CKA_CHECK_VALUE is taken as it is, unless a computed one is asked for", () => {
    const { lib, t } = setup();
    const value = randomBytes(32);
    const k = key(lib, value, { usage: { encrypt: true }, tokenCheckValue: 'abcdef' });
    expect(secretCheckValue(t, k)).toEqual({ method: 'aes-ecb-zero', value: 'abcdef' });
    expect(lib.count('C_Encrypt')).toBe(0);
    expect(secretCheckValue(t, k, 'aes-ecb-zero', true)).toEqual({
      method: 'aes-ecb-zero',
      value: kcv(value),
    });
  });

  test('AES that may not encrypt: the token check value, else none; never an encryption attempt', () => {
    const { lib, t } = setup();
    const value = randomBytes(32);
    expect(secretCheckValue(t, key(lib, value, { tokenCheckValue: '010203' }))).toEqual({
      method: 'aes-ecb-zero',
      value: '010203',
    });
    expect(secretCheckValue(t, key(lib, value, {}))).toEqual({ method: 'none', value: '' });
    // a check value of another length is not a KCV
    expect(secretCheckValue(t, key(lib, value, { tokenCheckValue: '0102' }))).toEqual({
      method: 'none',
      value: '',
    });
    expect(lib.count('C_EncryptInit')).toBe(0);
  });

  test('a secret that can sign: HMAC-SHA-256 over "custos check value" (node:crypto)', () => {
    const { lib, t } = setup();
    const value = randomBytes(32);
    const k = key(lib, value, { keyType: 'GENERIC_SECRET', usage: { sign: true } });
    expect(secretCheckValue(t, k)).toEqual({ method: 'hmac-sha256', value: hmacCheck(value) });
    const [init] = lib.calls.filter((c) => c.fn === 'C_SignInit');
    expect((init?.args[1] as { mechanism: number }).mechanism).toBe(P.CKM_SHA256_HMAC);
  });

  test('a secret that cannot sign: the token check value, else none', () => {
    const { lib, t } = setup();
    const value = randomBytes(24);
    expect(
      secretCheckValue(t, key(lib, value, { keyType: 'DES3', tokenCheckValue: '0a0b0c' })),
    ).toEqual({ method: 'token', value: '0a0b0c' });
    expect(secretCheckValue(t, key(lib, value, { keyType: 'DES3' }))).toEqual({
      method: 'none',
      value: '',
    });
    // asked for hmac (as recorded) of a key that may not sign: none, without a call
    expect(
      secretCheckValue(t, key(lib, value, { keyType: 'GENERIC_SECRET' }), 'hmac-sha256'),
    ).toEqual({ method: 'none', value: '' });
    expect(lib.count('C_SignInit')).toBe(0);
  });

  test.each(REFUSALS)(
    'refused with %s: no check value (none), the command carries on',
    (_n, code) => {
      for (const fn of ['C_EncryptInit', 'C_Encrypt', 'C_SignInit', 'C_Sign']) {
        const { lib, t } = setup({ fail: (f) => (f === fn ? code : undefined) });
        const aes = key(lib, randomBytes(32), { usage: { encrypt: true } });
        const hmac = key(lib, randomBytes(32), {
          keyType: 'GENERIC_SECRET',
          usage: { sign: true },
        });
        const want = fn.includes('Sign') ? [aes, hmac] : [hmac, aes];
        // the one whose function fails gives none; the other is unaffected
        expect(secretCheckValue(t, want[1] as KeyObject)).toEqual({ method: 'none', value: '' });
        expect(secretCheckValue(t, want[0] as KeyObject).method).not.toBe('none');
      }
    },
  );

  test.each(FAILURES)('failed with %s: an error, never "none"', (name, code) => {
    for (const fn of ['C_EncryptInit', 'C_Encrypt', 'C_SignInit', 'C_Sign']) {
      const { lib, t } = setup({ fail: (f) => (f === fn ? code : undefined) });
      const k = fn.includes('Sign')
        ? key(lib, randomBytes(32), { keyType: 'GENERIC_SECRET', usage: { sign: true } })
        : key(lib, randomBytes(32), { usage: { encrypt: true } });
      const e = catchCustos(() => secretCheckValue(t, k), 'E_HSM');
      expect(e.message).toMatch(
        new RegExp(`compute the check value of key "k1" on token "vault" \\(${name}\\)$`),
      );
    }
  });
});

describe('signChallenge', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });

  function rsaKey(lib: FakeModule, usage = { sign: true }) {
    return {
      handle: lib.add({ template: [], privateKey: rsa.privateKey }),
      keyType: 'RSA',
      usage,
      label: 'signer',
    };
  }

  test('RSA: a fresh 32-byte challenge, signed PKCS#1 v1.5 over SHA-256, verifies with the public key', () => {
    const { lib, t } = setup();
    const a = signChallenge(t, rsaKey(lib));
    const b = signChallenge(t, rsaKey(lib));
    expect(a?.data).toHaveLength(32);
    expect(a?.data.equals(b?.data as Buffer)).toBe(false);
    expect(verify('sha256', a?.data as Buffer, rsa.publicKey, a?.signature as Buffer)).toBe(true);
    const [init] = lib.calls.filter((c) => c.fn === 'C_SignInit');
    expect((init?.args[1] as { mechanism: number }).mechanism).toBe(P.CKM_SHA256_RSA_PKCS);
  });

  test('EC: CKM_ECDSA over a 32-byte digest (the stand-in does not do ECDSA: no proof)', () => {
    const { lib, t } = setup();
    const k = {
      handle: lib.add({ template: [] }),
      keyType: 'EC',
      usage: { sign: true },
      label: 'e',
    };
    expect(signChallenge(t, k)).toBeNull();
    const init = lib.calls.find((c) => c.fn === 'C_SignInit');
    expect((init?.args[1] as { mechanism: number }).mechanism).toBe(P.CKM_ECDSA);
    expect(lib.calls.find((c) => c.fn === 'C_Sign')?.args[1]).toHaveLength(32);
  });

  test('a key that may not sign, or of another type, is not asked', () => {
    const { lib, t } = setup();
    expect(signChallenge(t, rsaKey(lib, { sign: false }))).toBeNull();
    expect(signChallenge(t, { ...rsaKey(lib), keyType: 'DSA' })).toBeNull();
    expect(lib.count('C_SignInit')).toBe(0);
  });

  test.each(REFUSALS)('refused with %s: no signature proof (null)', (_n, code) => {
    const { lib, t } = setup({ fail: (f) => (f === 'C_Sign' ? code : undefined) });
    expect(signChallenge(t, rsaKey(lib))).toBeNull();
  });

  test.each(FAILURES)('failed with %s: an error', (name, code) => {
    const { lib, t } = setup({ fail: (f) => (f === 'C_SignInit' ? code : undefined) });
    const e = catchCustos(() => signChallenge(t, rsaKey(lib)), 'E_HSM');
    expect(e.message).toMatch(`sign a test challenge with key "signer" on token "vault" (${name})`);
  });
});
