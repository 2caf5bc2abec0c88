// PKCS#11 attribute values and templates (src/hsm/attributes.ts): the numbers are PKCS#11 2.40's,
// written out here, not read from pkcs11js, so a renamed or renumbered constant shows.
import { describe, expect, test } from 'vitest';
import { P } from '../../src/hsm/call.js';
import {
  bool,
  certificateTemplate,
  keyTypeCode,
  keyTypeName,
  publicKeyTemplate,
  sessionAesTemplate,
  ulong,
  unwrapTemplate,
  usageTemplate,
} from '../../src/hsm/attributes.js';
import type { KeyRecord } from '../../src/core/keys.js';
import { attr } from './hsm-fake.js';

describe('key types', () => {
  test.each([
    [0x0, 'RSA'],
    [0x1, 'DSA'],
    [0x3, 'EC'], // also CKK_ECDSA: the current name is used
    [0x10, 'GENERIC_SECRET'],
    [0x15, 'DES3'],
    [0x1f, 'AES'],
    [0x2b, 'SHA256_HMAC'],
  ])('%i is %s, and back', (code, name) => {
    expect(keyTypeName(code)).toBe(name);
    expect(keyTypeCode(name)).toBe(code);
  });

  test('an old alias still reads; an unknown code is kept in hex and read back', () => {
    expect(keyTypeCode('ECDSA')).toBe(3);
    expect(keyTypeName(0x40)).toBe('0x40');
    expect(keyTypeCode('0x40')).toBe(0x40);
    expect(keyTypeName(0x80000001)).toBe('0x80000001');
    expect(keyTypeCode(keyTypeName(0x80000001))).toBe(0x80000001);
    expect(() => keyTypeCode('CHACHA')).toThrow('unknown key type CHACHA');
    expect(() => keyTypeCode('0xZZ')).toThrow();
  });
});

describe('attribute values as pkcs11js hands them over', () => {
  test('CK_ULONG: 8 bytes little-endian, 4 on 32-bit modules, absent or empty is 0', () => {
    expect(ulong(Buffer.from([0x00, 0x01, 0, 0, 0, 0, 0, 0]))).toBe(256);
    expect(ulong(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]))).toBe(2 ** 32 - 1);
    expect(ulong(Buffer.from([0x20, 0x00, 0x00, 0x00]))).toBe(32);
    expect(ulong(Buffer.alloc(0))).toBe(0);
    expect(ulong(undefined)).toBe(0);
  });

  test('CK_BBOOL: any non-zero first byte is true', () => {
    expect(bool(Buffer.from([1]))).toBe(true);
    expect(bool(Buffer.from([0xff]))).toBe(true);
    expect(bool(Buffer.from([0]))).toBe(false);
    expect(bool(Buffer.alloc(0))).toBe(false);
    expect(bool(undefined)).toBe(false);
  });
});

const secret: KeyRecord = {
  class: 'secret',
  keyType: 'AES',
  label: 'payments-kek',
  id: '0a0b',
  bits: 256,
  usage: { wrap: true, unwrap: true },
  private: false,
  sensitive: false,
  extractable: true,
  checkValue: { method: 'none', value: '' },
  wrapped: '',
  certificates: [],
};

describe('templates', () => {
  test('a restored key is always a sensitive, private token object, every usage flag set explicitly', () => {
    const t = unwrapTemplate(secret);
    expect(attr(t, 0x0)).toBe(0x4); // CKA_CLASS: CKO_SECRET_KEY
    expect(attr(t, 0x100)).toBe(0x1f); // CKA_KEY_TYPE: CKK_AES
    expect(attr(t, 0x1)).toBe(true); // CKA_TOKEN
    // recorded as not private and not sensitive: restored private and sensitive all the same
    expect(attr(t, 0x2)).toBe(true); // CKA_PRIVATE
    expect(attr(t, 0x103)).toBe(true); // CKA_SENSITIVE
    expect(attr(t, 0x162)).toBe(true); // CKA_EXTRACTABLE, as recorded
    expect(attr(t, 0x3)).toBe('payments-kek');
    expect(attr(t, 0x102)).toEqual(Buffer.from([0x0a, 0x0b]));
    const usage = Object.fromEntries(
      [0x104, 0x105, 0x106, 0x108, 0x10a, 0x10c, 0x107, 0x109].map((a) => [a, attr(t, a)]),
    );
    // encrypt, decrypt, wrap, unwrap, sign, verify, derive: false unless recorded; never absent
    expect(usage).toEqual({
      0x104: false, // CKA_ENCRYPT
      0x105: false, // CKA_DECRYPT
      0x106: true, // CKA_WRAP
      0x107: true, // CKA_UNWRAP
      0x108: false, // CKA_SIGN
      0x10a: false, // CKA_VERIFY
      0x10c: false, // CKA_DERIVE
      0x109: undefined, // CKA_SIGN_RECOVER is not a secret key's
    });
    expect(new Set(t.map((a) => a.type)).size).toBe(t.length);
  });

  test('a private key: CKO_PRIVATE_KEY, its own usage flags, and CKA_EXTRACTABLE as recorded', () => {
    const t = unwrapTemplate({
      ...secret,
      class: 'private',
      keyType: 'EC',
      usage: { sign: true },
      extractable: false,
    });
    expect(attr(t, 0x0)).toBe(0x3);
    expect(attr(t, 0x100)).toBe(0x3);
    expect(attr(t, 0x162)).toBe(false);
    expect(attr(t, 0x108)).toBe(true); // sign
    expect(attr(t, 0x109)).toBe(false); // sign recover, explicitly
    expect(attr(t, 0x104)).toBeUndefined(); // no CKA_ENCRYPT on a private key
  });

  test('a transient AES key: a session object, sensitive, only the usage asked for', () => {
    const t = sessionAesTemplate('custos transient KEK', false, { wrap: true, unwrap: true });
    expect(attr(t, 0x1)).toBe(false); // CKA_TOKEN
    expect(attr(t, 0x103)).toBe(true);
    expect(attr(t, 0x162)).toBe(false);
    expect(attr(t, 0x106)).toBe(true);
    expect(attr(t, 0x104)).toBe(false);
    expect(attr(t, 0x108)).toBe(false);
    expect(attr(t, 0x3)).toBe('custos transient KEK');
  });

  test('usageTemplate: one attribute per flag asked for, true only where the usage says so', () => {
    expect(
      usageTemplate({ encrypt: true, verify: false }, ['encrypt', 'verify', 'derive']),
    ).toEqual([
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_VERIFY, value: false },
      { type: P.CKA_DERIVE, value: false },
    ]);
  });

  test('a public key and a certificate are public token objects with what was recorded', () => {
    const pub = publicKeyTemplate(
      {
        label: 'signer',
        keyType: 'RSA',
        usage: { verify: true },
        modulus: 'c0ffee',
        publicExponent: '010001',
      },
      'ab',
    );
    expect(attr(pub, 0x0)).toBe(0x2); // CKO_PUBLIC_KEY
    expect(attr(pub, 0x2)).toBe(false);
    expect(attr(pub, 0x120)).toEqual(Buffer.from('c0ffee', 'hex')); // CKA_MODULUS
    expect(attr(pub, 0x122)).toEqual(Buffer.from('010001', 'hex')); // CKA_PUBLIC_EXPONENT
    expect(attr(pub, 0x180)).toBeUndefined(); // no CKA_EC_PARAMS for RSA
    expect(attr(pub, 0x10a)).toBe(true);
    const cert = certificateTemplate({ label: 'signer', value: 'MAo=', subject: '3000' }, 'ab');
    expect(attr(cert, 0x0)).toBe(0x1); // CKO_CERTIFICATE
    expect(attr(cert, 0x80)).toBe(0x0); // CKA_CERTIFICATE_TYPE: CKC_X_509
    expect(attr(cert, 0x11)).toEqual(Buffer.from([0x30, 0x0a])); // CKA_VALUE
    expect(attr(cert, 0x101)).toEqual(Buffer.from([0x30, 0x00])); // CKA_SUBJECT
    expect(attr(cert, 0x81)).toBeUndefined(); // no issuer recorded, none set
  });
});
