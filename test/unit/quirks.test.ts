// The module quirks custos knows (src/hsm/quirks.ts), one by one. The same quirks are exercised
// against the real modules in test/e2e/hsm-layer.test.ts and test/e2e/nss.test.ts.
import { describe, expect, test } from 'vitest';
import {
  CKA_NSS_DB,
  bareEcPoint,
  hasNoSerial,
  isNssSoftoken,
  nssDbAttribute,
  pinLimits,
  readsStoreAtInitialise,
  sameTokenIdentity,
  tokenName,
  userSetsOwnPin,
  withoutCopyable,
} from '../../src/hsm/quirks.js';
import { P } from '../../src/hsm/call.js';

const NSS = {
  label: 'nss-a',
  serial: '0000000000000000',
  manufacturer: 'Mozilla Foundation',
  model: 'NSS 3',
};
const SOFTHSM = {
  label: 'vault',
  serial: '5d8e3a1f9c0b2e47',
  manufacturer: 'SoftHSM project',
  model: 'SoftHSM v2',
};
const POINT = Buffer.concat([Buffer.from([0x04]), Buffer.alloc(64, 7)]);

describe('nss-db-attribute: NSS unwraps an EC private key only with CKA_NSS_DB, the bare public point', () => {
  test('an EC private key for NSS gets CKA_NSS_DB (0xD5A0DB00) with the point out of its DER OCTET STRING', () => {
    const der = Buffer.concat([Buffer.from([0x04, 0x41]), POINT]).toString('hex');
    expect(nssDbAttribute(NSS, { class: 'private', keyType: 'EC', ecPoint: der })).toEqual([
      { type: CKA_NSS_DB, value: POINT },
    ]);
    expect(CKA_NSS_DB).toBe(0xd5a0db00);
  });

  test('nothing for other modules, secret keys or RSA keys', () => {
    expect(nssDbAttribute(SOFTHSM, { class: 'private', keyType: 'EC', ecPoint: '04' })).toEqual([]);
    expect(nssDbAttribute(NSS, { class: 'private', keyType: 'RSA' })).toEqual([]);
    expect(nssDbAttribute(NSS, { class: 'secret', keyType: 'AES' })).toEqual([]);
  });

  test('an EC private key without a recorded public point cannot go into NSS: said why, not attempted', () => {
    expect(nssDbAttribute(NSS, { class: 'private', keyType: 'EC' })).toMatch(
      /NSS softoken needs the public point \(CKA_NSS_DB\)/,
    );
  });

  test('bareEcPoint: short and long DER lengths are taken off; a bare point or anything else is left as it is', () => {
    expect(bareEcPoint(Buffer.concat([Buffer.from([0x04, 0x41]), POINT]))).toEqual(POINT);
    const big = Buffer.concat([Buffer.from([0x04]), Buffer.alloc(132, 1)]);
    expect(bareEcPoint(Buffer.concat([Buffer.from([0x04, 0x81, 0x85]), big]))).toEqual(big);
    expect(bareEcPoint(POINT)).toEqual(POINT);
    expect(bareEcPoint(Buffer.from([0x04, 0x05, 1, 2]))).toEqual(Buffer.from([0x04, 0x05, 1, 2]));
  });
});

describe('copyable-unknown: a 2.20 module does not know CKA_COPYABLE', () => {
  test('the template without it keeps every other attribute, in order', () => {
    const t = [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_COPYABLE, value: false },
      { type: P.CKA_VALUE, value: Buffer.alloc(32) },
    ];
    expect(withoutCopyable(t)).toEqual([t[0], t[2]]);
  });
});

describe('zero-serial: NSS gives every token the serial 0000000000000000', () => {
  test('identity: label and serial, and where the serial is all zero, model and maker too', () => {
    expect(hasNoSerial(NSS.serial)).toBe(true);
    expect(hasNoSerial(SOFTHSM.serial)).toBe(false);
    expect(sameTokenIdentity(NSS, { ...NSS })).toBe(true);
    expect(sameTokenIdentity(NSS, { ...NSS, label: 'nss-b' })).toBe(false);
    expect(sameTokenIdentity(NSS, { ...NSS, model: 'Other 1', manufacturer: 'Other' })).toBe(false);
    // a real serial is enough on its own
    expect(sameTokenIdentity(SOFTHSM, { ...SOFTHSM, model: 'renamed' })).toBe(true);
    expect(sameTokenIdentity(SOFTHSM, { ...SOFTHSM, serial: '5d8e3a1f9c0b2e48' })).toBe(false);
  });

  test('messages name such a token by model and maker, not by a serial that says nothing', () => {
    expect(tokenName(NSS)).toBe('"nss-a" (NSS 3, Mozilla Foundation; no serial number)');
    expect(tokenName(SOFTHSM)).toBe('"vault" (serial 5d8e3a1f9c0b2e47)');
  });
});

describe('pin-length-range: what ulMinPinLen and ulMaxPinLen say, as limits', () => {
  test.each([
    ['SoftHSM2', 4, 255, { min: 4, max: 255 }],
    ['NSS softoken (0 to 500)', 0, 500, { min: 1, max: 500 }],
    ['no limit (CK_EFFECTIVELY_INFINITE, 0)', 0, 0, { min: 1, max: Infinity }],
    [
      'unknown (CK_UNAVAILABLE_INFORMATION, 32-bit)',
      2 ** 32 - 1,
      2 ** 32 - 1,
      { min: 1, max: Infinity },
    ],
    [
      'unknown (CK_UNAVAILABLE_INFORMATION, 64-bit)',
      2 ** 64 - 1,
      2 ** 64 - 1,
      { min: 1, max: Infinity },
    ],
    ['a maximum below the minimum', 8, 6, { min: 8, max: 8 }],
  ])('%s', (_name, minPinLen, maxPinLen, want) => {
    expect(pinLimits({ minPinLen, maxPinLen })).toEqual(want);
  });
});

describe('user-sets-own-pin: NSS has no security officer once its database has a password', () => {
  test('NSS softoken changes the user PIN as the user; other modules through the security officer', () => {
    expect(isNssSoftoken(NSS)).toBe(true);
    expect(userSetsOwnPin(NSS)).toBe(true);
    expect(userSetsOwnPin(SOFTHSM)).toBe(false);
    expect(userSetsOwnPin({ manufacturer: 'Mozilla Foundation', model: 'Something else' })).toBe(
      false,
    );
  });
});

describe('store-read-at-initialise: SoftHSM2 reads its store of tokens at C_Initialize only', () => {
  test('SoftHSM2 is read again by initialising it again; other modules are not', () => {
    expect(readsStoreAtInitialise({ manufacturerID: 'SoftHSM'.padEnd(32, ' ') })).toBe(true);
    expect(readsStoreAtInitialise({ manufacturerID: 'Mozilla Foundation'.padEnd(32, ' ') })).toBe(
      false,
    );
    expect(readsStoreAtInitialise({ manufacturerID: 'SoftHSM project'.padEnd(32, ' ') })).toBe(
      false,
    );
  });
});
