// Edges of the module quirks (src/hsm/quirks.ts) beyond test/unit/quirks.test.ts: DER lengths of
// CKA_EC_POINT, PIN length ranges that are not numbers, and how a token without a serial or a
// model is named.
import { describe, expect, test } from 'vitest';
import {
  bareEcPoint,
  hasNoSerial,
  isNssSoftoken,
  nssDbAttribute,
  pinLimits,
  sameTokenIdentity,
  tokenName,
} from '../../src/hsm/quirks.js';

describe('bareEcPoint', () => {
  test('a two-byte DER length (0x82) is taken off', () => {
    const point = Buffer.alloc(257, 9);
    const der = Buffer.concat([Buffer.from([0x04, 0x82, 0x01, 0x01]), point]);
    expect(bareEcPoint(der)).toEqual(point);
  });

  test.each([
    ['too short to have a length', [0x04]],
    ['empty', []],
    ['a three-byte length form', [0x04, 0x83, 0x00, 0x00, 0x01, 0xaa]],
    ['a long form that claims more than there is', [0x04, 0x81, 0x05, 1, 2]],
    ['a long form cut short', [0x04, 0x82, 0x01]],
    ['a length of zero bytes (0x80)', [0x04, 0x80, 1]],
    ['not an OCTET STRING', [0x03, 0x02, 1, 2]],
  ])('%s: left as it is', (_what, bytes) => {
    const b = Buffer.from(bytes);
    expect(bareEcPoint(b)).toEqual(b);
  });

  test('NSS gets the bare point from a record whose point uses the long form', () => {
    const point = Buffer.concat([Buffer.from([4]), Buffer.alloc(132, 3)]); // P-521
    const der = Buffer.concat([Buffer.from([0x04, 0x81, 0x85]), point]).toString('hex');
    const nss = { manufacturer: 'Mozilla Foundation', model: 'NSS 3' };
    expect(nssDbAttribute(nss, { class: 'private', keyType: 'EC', ecPoint: der })).toEqual([
      { type: 0xd5a0db00, value: point },
    ]);
  });
});

describe('pinLimits', () => {
  test.each([
    ['not a number', NaN, NaN, { min: 1, max: Infinity }],
    ['negative', -1, -5, { min: 1, max: Infinity }],
    ['a minimum of 0 means at least 1', 0, 8, { min: 1, max: 8 }],
    [
      'just under CK_UNAVAILABLE_INFORMATION is a real limit',
      6,
      2 ** 32 - 2,
      { min: 6, max: 2 ** 32 - 2 },
    ],
    ['an unknown minimum with a known maximum', 2 ** 32 - 1, 16, { min: 1, max: 16 }],
  ])('%s', (_what, minPinLen, maxPinLen, want) => {
    expect(pinLimits({ minPinLen, maxPinLen })).toEqual(want);
  });
});

describe('naming tokens', () => {
  const t = (serial: string, more = {}) => ({
    label: 'vault',
    serial,
    manufacturer: 'Acme',
    model: 'HSM 9',
    ...more,
  });

  test('a serial of zeros, spaces or nothing says nothing', () => {
    for (const s of ['', ' ', '0', '0000 0000', '0000000000000000'])
      expect(hasNoSerial(s)).toBe(true);
    for (const s of ['1', '0000000000000001', 'O000']) expect(hasNoSerial(s)).toBe(false);
  });

  test('without a serial, model or maker: said so, not left blank', () => {
    expect(tokenName(t('', { model: '', manufacturer: '' }))).toBe(
      '"vault" (model unknown, maker unknown; no serial number)',
    );
  });

  test('a real serial on one side and zeros on the other are two tokens', () => {
    expect(sameTokenIdentity(t('0000000000000000'), t('5d8e3a1f9c0b2e47'))).toBe(false);
    expect(sameTokenIdentity(t(''), t('0000000000000000'))).toBe(false);
  });

  test('NSS softoken by its maker and model, not by a model that merely starts with NSS', () => {
    const maker = 'Mozilla Foundation';
    expect(isNssSoftoken({ manufacturer: maker, model: 'NSS' })).toBe(true);
    expect(isNssSoftoken({ manufacturer: maker, model: 'NSS 3' })).toBe(true);
    expect(isNssSoftoken({ manufacturer: maker, model: 'NSSX' })).toBe(false);
    expect(isNssSoftoken({ manufacturer: 'Mozilla', model: 'NSS 3' })).toBe(false);
    expect(isNssSoftoken({ manufacturer: `${maker} `, model: 'NSS 3' })).toBe(false);
  });
});
