/**
 * The recipient's software side of a handover: a request's recipient key must be the key its
 * recorded digest and size describe; a blob built here in the CKM_RSA_AES_KEY_WRAP layout (node's
 * OAEP and OpenSSL's id-aes256-wrap-pad, not custos's code) unwraps to the key it was made from.
 */
import { describe, expect, test } from 'vitest';
import {
  createCipheriv,
  createHash,
  createHmac,
  constants,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import {
  readRsaPublicKey,
  requestRecipient,
  softwareCheckValue,
  unwrapRsaAes,
} from '../../src/crypto/rsa-aes-wrap.js';
import { catchCustos } from './helpers.js';

const pair = generateKeyPairSync('rsa', { modulusLength: 3072 });
const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
const recipient = {
  spki: spki.toString('base64'),
  sha256: createHash('sha256').update(spki).digest('hex'),
  bits: 3072,
};

describe('requestRecipient', () => {
  test('accepts the key its digest and size describe, and returns its modulus and exponent', () => {
    const rsa = requestRecipient('r', recipient);
    expect(rsa.bits).toBe(3072);
    expect(rsa.publicExponent.toString('hex')).toBe('010001');
    expect(rsa.spki.equals(spki)).toBe(true);
  });

  test('refuses another key under the recorded digest, a wrong size, a non-RSA key and a small exponent', () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey.export({
      format: 'der',
      type: 'spki',
    });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      format: 'der',
      type: 'spki',
    });
    const e3 = generateKeyPairSync('rsa', {
      modulusLength: 3072,
      publicExponent: 3,
    }).publicKey.export({ format: 'der', type: 'spki' });
    const digestOf = (d: Buffer) => createHash('sha256').update(d).digest('hex');
    for (const bad of [
      { ...recipient, spki: other.toString('base64') },
      { ...recipient, bits: 4096 },
      { spki: ec.toString('base64'), sha256: digestOf(ec), bits: 256 },
      { spki: e3.toString('base64'), sha256: digestOf(e3), bits: 3072 },
      { ...recipient, spki: `${recipient.spki.slice(0, -4)}AAAA` },
    ]) {
      expect(catchCustos(() => requestRecipient('r', bad), 'E_HANDOVER_FORMAT').message).toBe(
        'r: its recipient key does not match the digest and size recorded with it (or is not a usable RSA key)',
      );
    }
  });

  test('readRsaPublicKey reads PEM and DER alike, and says null for anything else', () => {
    expect(
      readRsaPublicKey(pair.publicKey.export({ format: 'pem', type: 'spki' }).toString())?.bits,
    ).toBe(3072);
    expect(readRsaPublicKey(spki)?.bits).toBe(3072);
    expect(readRsaPublicKey('not a key')).toBeNull();
  });
});

describe('unwrapRsaAes and softwareCheckValue', () => {
  const wrapLikeAnHsm = (key: Buffer, oaepHash: 'sha1' | 'sha256') => {
    const aes = randomBytes(32);
    const rsaPart = publicEncrypt(
      { key: pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
      aes,
    );
    const kw = createCipheriv('id-aes256-wrap-pad', aes, Buffer.from('a65959a6', 'hex'));
    return Buffer.concat([rsaPart, kw.update(key), kw.final()]);
  };

  test('an AES key wrapped with OAEP SHA-1 or SHA-256 comes back, with the KCV AES-ECB of a zero block gives', () => {
    const key = randomBytes(32);
    const ecb = createCipheriv('aes-256-ecb', key, null);
    ecb.setAutoPadding(false);
    const kcv = ecb.update(Buffer.alloc(16)).subarray(0, 3).toString('hex');
    for (const hash of ['sha1', 'sha256'] as const) {
      const back = unwrapRsaAes(pair.privateKey, wrapLikeAnHsm(key, hash), hash);
      expect(back.equals(key)).toBe(true);
      expect(softwareCheckValue('aes-ecb-zero', 'secret', back)).toEqual({
        method: 'aes-ecb-zero',
        value: kcv,
      });
    }
    expect(() => unwrapRsaAes(pair.privateKey, wrapLikeAnHsm(key, 'sha256'), 'sha1')).toThrow();
  });

  test('an HMAC key gets HMAC-SHA256 over "custos check value"; a private key the digest of its public key', () => {
    const key = randomBytes(32);
    expect(softwareCheckValue('hmac-sha256', 'secret', key).value).toBe(
      createHmac('sha256', key)
        .update('custos check value')
        .digest()
        .subarray(0, 3)
        .toString('hex'),
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pkcs8 = ec.privateKey.export({ format: 'der', type: 'pkcs8' });
    const want = createHash('sha256')
      .update(ec.publicKey.export({ format: 'der', type: 'spki' }))
      .digest()
      .subarray(0, 8)
      .toString('hex');
    expect(softwareCheckValue('spki-sha256', 'private', pkcs8)).toEqual({
      method: 'spki-sha256',
      value: want,
    });
    expect(softwareCheckValue('token', 'secret', key).method).toBe('none');
  });
});
