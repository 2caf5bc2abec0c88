import { describe, expect, test } from 'vitest';
import { createCipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { aesKcv, equalBytes, freshKek, hmacWithKek } from '../../src/crypto/aes.js';
import { kwpUnwrap } from './helpers.js';
import { BUNDLE_MAC_PURPOSE } from '../../src/core/bundle.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** The first three bytes of AES-ECB(key, 0^128), computed here with node:crypto directly. */
function oracleKcv(key: Buffer): string {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.alloc(16)), c.final()])
    .subarray(0, 3)
    .toString('hex');
}

describe('aesKcv', () => {
  test('published AES zero-key vectors (AES(0^k, 0^128))', () => {
    // AES-128: 66e94bd4ef8a2c3b884cfa59ca342b2e; AES-192: aae06992acbf52a3e8f4a96ec9300bd7;
    // AES-256: dc95c078a2408989ad48a21492842087.
    expect(aesKcv(Buffer.alloc(16))).toBe('66e94b');
    expect(aesKcv(Buffer.alloc(24))).toBe('aae069');
    expect(aesKcv(Buffer.alloc(32))).toBe('dc95c0');
  });

  test('FIPS-197 key 000102..1f: matches node:crypto computed directly', () => {
    const key = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    expect(aesKcv(key)).toBe(oracleKcv(key));
    expect(aesKcv(key)).toMatch(/^[0-9a-f]{6}$/);
  });

  test('random keys of each size match node:crypto computed directly', () => {
    for (const n of [16, 24, 32]) {
      for (let i = 0; i < 20; i++) {
        const key = randomBytes(n);
        expect(aesKcv(key)).toBe(oracleKcv(key));
      }
    }
  });

  test('a KCV does not depend on anything but the key', () => {
    const key = randomBytes(32);
    expect(aesKcv(key)).toBe(aesKcv(Uint8Array.from(key)));
    expect(aesKcv(key)).not.toBe(aesKcv(Buffer.from(key.map((b, i) => (i === 0 ? b ^ 1 : b)))));
  });
});

describe('kwpUnwrap (RFC 5649)', () => {
  // RFC 5649 section 6. The KEK is 192 bits, so this is AES-192 key wrap with padding.
  const KEK = hex('5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8');

  test('RFC 5649 §6: 20-octet key', () => {
    const wrapped = hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');
    expect(kwpUnwrap(KEK, wrapped).toString('hex')).toBe(
      'c37b7e6492584340bed12207808941155068f738',
    );
  });

  test('RFC 5649 §6: 7-octet key', () => {
    const wrapped = hex('afbeb0f07dfbf541 9200f2ccb50bb24f');
    expect(kwpUnwrap(KEK, wrapped).toString('hex')).toBe('466f7250617369');
  });

  test('RFC 5649 vectors with any bit changed, or under another KEK, are refused', () => {
    const wrapped = hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');
    for (let bit = 0; bit < wrapped.length * 8; bit++) {
      const copy = Buffer.from(wrapped);
      copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(() => kwpUnwrap(KEK, copy), `bit ${bit}`).toThrow();
    }
    const otherKek = Buffer.from(KEK);
    otherKek[23] = (otherKek[23] as number) ^ 1;
    expect(() => kwpUnwrap(otherKek, wrapped)).toThrow();
    expect(() => kwpUnwrap(KEK, wrapped.subarray(0, 24))).toThrow();
    expect(() => kwpUnwrap(KEK, wrapped.subarray(0, 31))).toThrow();
  });

  test('AES-256 KEK (the custos KEK): unwraps what OpenSSL id-aes256-wrap-pad wrapped, for many lengths', () => {
    const kek = freshKek();
    expect(kek).toHaveLength(32);
    for (const n of [1, 7, 8, 9, 16, 20, 32, 33, 64, 1217]) {
      const key = randomBytes(n);
      const c = createCipheriv('id-aes256-wrap-pad', kek, hex('a65959a6'));
      const wrapped = Buffer.concat([c.update(key), c.final()]);
      expect(wrapped.length).toBe(8 + Math.ceil(n / 8) * 8);
      expect(kwpUnwrap(kek, wrapped).equals(key)).toBe(true);
      expect(() => kwpUnwrap(freshKek(), wrapped)).toThrow();
    }
  });
});

describe('hmacWithKek', () => {
  test('is HMAC-SHA256 under HKDF-SHA256(kek, no salt, "custos " + purpose)', () => {
    const kek = randomBytes(32);
    const data = Buffer.from('custos-bundle/1\n{}\n');
    const macKey = Buffer.from(
      hkdfSync('sha256', kek, Buffer.alloc(0), Buffer.from(`custos ${BUNDLE_MAC_PURPOSE}`), 32),
    );
    expect(
      hmacWithKek(kek, BUNDLE_MAC_PURPOSE, data).equals(
        createHmac('sha256', macKey).update(data).digest(),
      ),
    ).toBe(true);
    // Never HMAC keyed with the KEK itself.
    expect(
      hmacWithKek(kek, BUNDLE_MAC_PURPOSE, data).equals(
        createHmac('sha256', kek).update(data).digest(),
      ),
    ).toBe(false);
  });

  test('separates purposes, keys and data', () => {
    const kek = randomBytes(32);
    const data = randomBytes(100);
    const mac = hmacWithKek(kek, BUNDLE_MAC_PURPOSE, data);
    expect(mac).toHaveLength(32);
    expect(hmacWithKek(kek, BUNDLE_MAC_PURPOSE, data).equals(mac)).toBe(true);
    expect(hmacWithKek(kek, 'custos-bundle/2 mac', data).equals(mac)).toBe(false);
    expect(hmacWithKek(randomBytes(32), BUNDLE_MAC_PURPOSE, data).equals(mac)).toBe(false);
    expect(
      hmacWithKek(kek, BUNDLE_MAC_PURPOSE, Buffer.concat([data, Buffer.alloc(1)])).equals(mac),
    ).toBe(false);
  });
});

describe('equalBytes and freshKek', () => {
  test('equalBytes compares content and length without throwing', () => {
    expect(equalBytes(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(equalBytes(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(equalBytes(Buffer.from('abc'), Buffer.from('ab'))).toBe(false);
    expect(equalBytes(Buffer.alloc(0), Buffer.alloc(0))).toBe(true);
  });

  test('freshKek gives 32 new random bytes each time', () => {
    const a = freshKek();
    const b = freshKek();
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
  });
});
