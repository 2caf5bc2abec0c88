import { describe, expect, test } from 'vitest';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { curveBits, ecSpki, NAMED_CURVES, rawEcPoint, rsaSpki } from '../../src/core/der.js';
import {
  SPKI_CHECK_BYTES,
  sha256Hex,
  spkiCheckValue,
  spkiOf,
} from '../../src/crypto/check-values.js';

const fromB64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');

function nodeSpki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** DER OCTET STRING around `body` (what CKA_EC_POINT should hold), built here by hand. */
function octetString(body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([0x04, ...len]), body]);
}

// DER-encoded named-curve OIDs, as PKCS#11 CKA_EC_PARAMS holds them (from RFC 5480 / SEC 2).
const CURVES = [
  { node: 'prime256v1', oid: '06082a8648ce3d030107', size: 32, bits: 256 },
  { node: 'secp384r1', oid: '06052b81040022', size: 48, bits: 384 },
  { node: 'secp521r1', oid: '06052b81040023', size: 66, bits: 521 },
  { node: 'secp256k1', oid: '06052b8104000a', size: 32, bits: 256 },
] as const;

/** True if `b` parses as exactly one DER OCTET STRING (tag, length, and that many bytes). */
function isWholeOctetString(b: Buffer): boolean {
  if (b[0] !== 0x04 || b.length < 2) return false;
  const first = b[1] as number;
  if (first < 0x80) return 2 + first === b.length;
  const n = first & 0x7f;
  if (n === 0 || n > 2 || b.length < 2 + n) return false;
  const len = n === 1 ? (b[2] as number) : ((b[2] as number) << 8) | (b[3] as number);
  return 2 + n + len === b.length;
}

/**
 * A P-224 key (not in the custos curve table, no JWK in node): its raw point from node's own SPKI.
 */
function p224Key() {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp224r1' });
  const spki = nodeSpki(publicKey);
  const raw = spki.subarray(-57);
  expect(raw[0]).toBe(0x04);
  expect(spki[spki.length - 58]).toBe(0x00); // BIT STRING unused-bits byte
  return { publicKey, raw };
}

function ecKey(curve: string, size: number) {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = fromB64u(jwk.x);
  const y = fromB64u(jwk.y);
  expect(x).toHaveLength(size);
  return { publicKey, raw: Buffer.concat([Buffer.from([0x04]), x, y]), x, y };
}

describe('rsaSpki', () => {
  test.each([
    [2048, 65537],
    [2048, 3],
    [1024, 65537],
    [3072, 65537],
  ])("RSA-%i e=%i matches node:crypto's SPKI", (modulusLength, publicExponent) => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength, publicExponent });
    const jwk = publicKey.export({ format: 'jwk' });
    const n = fromB64u(jwk.n);
    const e = fromB64u(jwk.e);
    const expected = nodeSpki(publicKey);
    expect(rsaSpki(n, e).equals(expected)).toBe(true);
    // PKCS#11 may hand back the modulus with leading zero bytes, or a 4-byte exponent.
    expect(
      rsaSpki(
        Buffer.concat([Buffer.alloc(2), n]),
        Buffer.concat([Buffer.alloc(4 - e.length), e]),
      ).equals(expected),
    ).toBe(true);
    // Through the hex record path, and the check value is the hash of node's SPKI.
    const spki = spkiOf({ modulus: n.toString('hex'), publicExponent: e.toString('hex') });
    expect(spki?.equals(expected)).toBe(true);
    expect(spkiCheckValue(spki!)).toBe(
      createHash('sha256')
        .update(expected)
        .digest('hex')
        .slice(0, 2 * SPKI_CHECK_BYTES),
    );
  });

  test('the check value of different keys differs', () => {
    const a = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const b = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(spkiCheckValue(nodeSpki(a))).not.toBe(spkiCheckValue(nodeSpki(b)));
    expect(spkiCheckValue(nodeSpki(a))).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('ecSpki', () => {
  test.each(CURVES)(
    "$node matches node:crypto's SPKI from a raw or DER-wrapped point",
    ({ node, oid, size }) => {
      const { publicKey, raw } = ecKey(node, size);
      const expected = nodeSpki(publicKey);
      const params = Buffer.from(oid, 'hex');
      expect(ecSpki(params, raw).equals(expected)).toBe(true);
      expect(ecSpki(params, octetString(raw)).equals(expected)).toBe(true);
      expect(
        spkiOf({ ecParams: oid, ecPoint: octetString(raw).toString('hex') })?.equals(expected),
      ).toBe(true);
      expect(spkiOf({ ecParams: oid, ecPoint: raw.toString('hex') })?.equals(expected)).toBe(true);
    },
  );

  test('a compressed point, raw or wrapped, gives the SPKI node:crypto reads as the same key', () => {
    const { publicKey, x, y } = ecKey('prime256v1', 32);
    const compressed = Buffer.concat([Buffer.from([0x02 | ((y[31] as number) & 1)]), x]);
    const params = Buffer.from(CURVES[0].oid, 'hex');
    for (const point of [compressed, octetString(compressed)]) {
      const spki = ecSpki(params, point);
      expect(spki.subarray(-33).equals(compressed)).toBe(true);
      const back = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({
        format: 'jwk',
      });
      expect(back).toEqual(publicKey.export({ format: 'jwk' }));
    }
  });

  test('a curve not in the table, DER-wrapped point (the PKCS#11 form)', () => {
    // secp224r1: OID 1.3.132.0.33
    const { publicKey, raw } = p224Key();
    expect(
      ecSpki(Buffer.from('06052b81040021', 'hex'), octetString(raw)).equals(nodeSpki(publicKey)),
    ).toBe(true);
  });

  test('a curve not in the table, raw point (some modules store it so)', () => {
    // Without the curve size rawEcPoint has to tell a raw point 04 || X || Y from an OCTET
    // STRING wrapper. Only points that cannot be read as a whole, well-formed OCTET STRING are
    // used here, so the answer is never ambiguous; about 1 in 100 of them starts 04 LL 02/03/04.
    const params = Buffer.from('06052b81040021', 'hex');
    const wrong: string[] = [];
    let checked = 0;
    for (let i = 0; i < 3000 && wrong.length < 3; i++) {
      const { publicKey, raw } = p224Key();
      if (isWholeOctetString(raw)) continue;
      checked++;
      if (!ecSpki(params, raw).equals(nodeSpki(publicKey)))
        wrong.push(raw.subarray(0, 4).toString('hex'));
    }
    expect(checked).toBeGreaterThan(0);
    expect(wrong, 'raw points whose SPKI came out wrong (first bytes shown)').toEqual([]);
  });

  test('spkiOf is null when the public parts are missing', () => {
    expect(spkiOf({})).toBeNull();
    expect(spkiOf({ modulus: 'c0ffee' })).toBeNull();
    expect(spkiOf({ publicExponent: '010001' })).toBeNull();
    expect(spkiOf({ ecParams: CURVES[0].oid })).toBeNull();
    expect(spkiOf({ ecPoint: '04' })).toBeNull();
  });
});

describe('rawEcPoint and curveBits', () => {
  test.each(CURVES)('$node: raw stays raw, wrapped is unwrapped', ({ node, oid, size, bits }) => {
    const params = Buffer.from(oid, 'hex');
    expect(curveBits(params)).toBe(bits);
    const { raw } = ecKey(node, size);
    expect(rawEcPoint(raw, params).equals(raw)).toBe(true);
    const wrapped = octetString(raw);
    expect(wrapped.length).toBe(raw.length + (raw.length < 0x80 ? 2 : 3));
    expect(rawEcPoint(wrapped, params).equals(raw)).toBe(true);
  });

  test('the curve table holds the OIDs of RFC 5480 / SEC 2', () => {
    expect(Object.keys(NAMED_CURVES).sort()).toEqual(CURVES.map((c) => c.oid).sort());
    expect(curveBits(Buffer.from('06052b81040021', 'hex'))).toBe(0);
    expect(curveBits(Buffer.alloc(0))).toBe(0);
  });
});

describe('sha256Hex', () => {
  test('FIPS 180-2 vectors', () => {
    expect(sha256Hex(Buffer.from('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(sha256Hex(Buffer.alloc(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});
