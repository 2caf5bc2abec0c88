// Choosing the RFC 5649 mechanism from what a token offers, and the wrap, re-wrap, unwrap and KEK
// import around it (src/hsm/wrapping.ts, src/hsm/mechanisms.ts), on an in-memory stand-in for the
// pkcs11js calls (hsm-fake.ts). The stand-in wraps with OpenSSL (node:crypto id-aes256-wrap-pad)
// or, for NSS's CKM_AES_KEY_WRAP_PAD, RFC 3394 over PKCS#7; which one custos accepts is decided by
// custos's known-answer test alone.
import { describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CustosError } from '../../src/core/errors.js';
import type { KeyRecord } from '../../src/core/keys.js';
import { P, Pkcs11Failure } from '../../src/hsm/call.js';
import {
  CKM_AES_KEY_WRAP_KWP,
  CKM_RSA_AES_KEY_WRAP,
  mechanismFlags,
  mechanismName,
  offers,
  wrappingOffer,
} from '../../src/hsm/mechanisms.js';
import {
  WRAP_CANDIDATES,
  importKek,
  knownAnswer,
  rewrapKey,
  rfc5649,
  rfc5649IfAny,
  unwrapKey,
  wrapKey,
} from '../../src/hsm/wrapping.js';
import type { KeyObject } from '../../src/hsm/objects.js';
import { CKA_NSS_DB } from '../../src/hsm/quirks.js';
import {
  FakeModule,
  attr,
  fakeSession,
  rfc5649Unwrap,
  rfc5649Wrap,
  type FakeOptions,
} from './hsm-fake.js';
import { catchCustos } from './helpers.js';

const KWP = CKM_AES_KEY_WRAP_KWP;
const PAD = P.CKM_AES_KEY_WRAP_PAD;
const BOTH = P.CKF_WRAP | P.CKF_UNWRAP;

function token(options: FakeOptions) {
  const lib = new FakeModule(options);
  return { lib, t: fakeSession(lib) };
}

/** SoftHSM2 2.6: PAD is RFC 5649, no KWP. */
const SOFTHSM: FakeOptions = {
  mechanisms: { [PAD]: BOTH, [P.CKM_AES_KEY_WRAP]: BOTH, [P.CKM_AES_ECB]: P.CKF_ENCRYPT },
  wrapKinds: { [PAD]: 'rfc5649' },
};
/** NSS softoken: PAD is RFC 3394 over PKCS#7, KWP is RFC 5649. */
const NSS: FakeOptions = {
  label: 'nss',
  manufacturer: 'Mozilla Foundation',
  model: 'NSS 3',
  mechanisms: { [KWP]: BOTH, [PAD]: BOTH, [P.CKM_AES_ECB]: P.CKF_ENCRYPT },
  wrapKinds: { [KWP]: 'rfc5649', [PAD]: 'rfc3394-pkcs7' },
};
/** A token whose only PAD is the NSS kind, and no KWP. */
const PAD_NOT_5649: FakeOptions = {
  label: 'ica',
  mechanisms: {
    [PAD]: BOTH,
    [P.CKM_RSA_PKCS]: BOTH | P.CKF_ENCRYPT,
    [P.CKM_AES_ECB]: P.CKF_ENCRYPT,
    [P.CKM_SHA256]: P.CKF_DIGEST,
  },
  wrapKinds: { [PAD]: 'rfc3394-pkcs7' },
};

function wrapCalls(lib: FakeModule, fn = 'C_WrapKey'): number[] {
  return lib.calls
    .filter((c) => c.fn === fn)
    .map((c) => (c.args[1] as { mechanism: number }).mechanism);
}

describe('mechanism names and flags', () => {
  test('names the PKCS#11 2.40 mechanisms pkcs11js has no constant for, and unknown codes in hex', () => {
    expect(mechanismName(0x210b)).toBe('CKM_AES_KEY_WRAP_KWP');
    expect(mechanismName(0x210c)).toBe('CKM_AES_KEY_WRAP_PKCS7');
    expect(mechanismName(0x1054)).toBe('CKM_RSA_AES_KEY_WRAP');
    expect(mechanismName(0x210a)).toBe('CKM_AES_KEY_WRAP_PAD');
    expect(mechanismName(P.CKM_RSA_PKCS_OAEP)).toBe('CKM_RSA_PKCS_OAEP');
    expect(mechanismName(0x80001234)).toBe('0x80001234');
    expect(KWP).toBe(0x210b);
    expect(CKM_RSA_AES_KEY_WRAP).toBe(0x1054);
  });

  test('a mechanism the token does not list has no flags; a device error is an error, not "not offered"', () => {
    const { t } = token(SOFTHSM);
    expect(mechanismFlags(t, KWP)).toBeNull();
    expect(mechanismFlags(t, PAD)).toBe(BOTH);
    expect(offers(t, PAD, P.CKF_WRAP)).toBe(true);
    expect(offers(t, P.CKM_AES_ECB, P.CKF_WRAP)).toBe(false);
    expect(offers(t, KWP, P.CKF_WRAP)).toBe(false);
    const broken = token({ ...SOFTHSM, fail: () => P.CKR_DEVICE_ERROR });
    const e = catchCustos(() => offers(broken.t, PAD, P.CKF_WRAP), 'E_HSM');
    expect(e.message).toBe(
      'the HSM failed while trying to read what token "vault" offers (CKM_AES_KEY_WRAP_PAD) (CKR_DEVICE_ERROR)',
    );
  });

  test('what a token offers for wrapping keys: each mechanism with the wrap or unwrap flag, in its order', () => {
    expect(wrappingOffer(token(PAD_NOT_5649).t)).toBe(
      'token "ica" offers for wrapping keys: CKM_RSA_PKCS (wrap, unwrap), CKM_AES_KEY_WRAP_PAD (wrap, unwrap)',
    );
    const unwrapOnly = token({ label: 'x', mechanisms: { [KWP]: P.CKF_UNWRAP, [0x8000abcd]: 0 } });
    expect(wrappingOffer(unwrapOnly.t)).toBe(
      'token "x" offers for wrapping keys: CKM_AES_KEY_WRAP_KWP (unwrap)',
    );
  });

  test('a token that wraps nothing: how many mechanisms it lists, and their names', () => {
    const none = token({
      label: 'hashes',
      mechanisms: { [P.CKM_SHA256]: P.CKF_DIGEST, [P.CKM_AES_ECB]: P.CKF_ENCRYPT },
    });
    expect(wrappingOffer(none.t)).toBe(
      'token "hashes" offers no mechanism that wraps or unwraps keys; its 2 mechanisms are: CKM_SHA256, CKM_AES_ECB',
    );
    expect(wrappingOffer(token({ label: 'empty', mechanisms: {} }).t)).toBe(
      'token "empty" offers no mechanism that wraps or unwraps keys; its 0 mechanisms are: none',
    );
  });
});

describe('rfc5649: the mechanism is chosen by a known-answer test against OpenSSL', () => {
  test('KWP is preferred, in that order, and is the only one tried when it passes', () => {
    expect(WRAP_CANDIDATES.map((m) => [m.name, m.code])).toEqual([
      ['AES-KEY-WRAP-KWP', 0x210b],
      ['AES-KEY-WRAP-PAD', 0x210a],
    ]);
    const { lib, t } = token({
      mechanisms: { [KWP]: BOTH, [PAD]: BOTH, [P.CKM_AES_ECB]: P.CKF_ENCRYPT },
      wrapKinds: { [KWP]: 'rfc5649', [PAD]: 'rfc5649' },
    });
    expect(rfc5649(t, 'wrap').name).toBe('AES-KEY-WRAP-KWP');
    expect(rfc5649(t, 'unwrap').name).toBe('AES-KEY-WRAP-KWP');
    expect(wrapCalls(lib)).toEqual([KWP]);
    expect(wrapCalls(lib, 'C_UnwrapKey')).toEqual([KWP]);
  });

  test('NSS softoken: KWP, even though its PAD is offered too', () => {
    const { lib, t } = token(NSS);
    expect(rfc5649(t, 'wrap').ckm).toBe('CKM_AES_KEY_WRAP_KWP');
    expect(rfc5649(t, 'unwrap').ckm).toBe('CKM_AES_KEY_WRAP_KWP');
    expect(wrapCalls(lib)).not.toContain(PAD);
  });

  test('SoftHSM2: no KWP, and a PAD that is RFC 5649 is used', () => {
    const { lib, t } = token(SOFTHSM);
    expect(rfc5649(t, 'wrap').name).toBe('AES-KEY-WRAP-PAD');
    expect(rfc5649(t, 'unwrap').name).toBe('AES-KEY-WRAP-PAD');
    expect(knownAnswer(t, WRAP_CANDIDATES[0]!, 'wrap')).toBe('not offered');
    // the unwrap test also compared the unwrapped key, by AES-ECB of a zero block
    expect(lib.count('C_Encrypt')).toBe(1);
  });

  test('a PAD that is not RFC 5649 is refused for both uses, naming each result and what the token offers', () => {
    const { t } = token(PAD_NOT_5649);
    const wrap = catchCustos(() => rfc5649(t, 'wrap'), 'E_MECHANISM');
    expect(wrap.message).toBe(
      'token "ica" cannot wrap keys as RFC 5649 (AES key wrap with padding)',
    );
    expect(wrap.details).toEqual([
      'CKM_AES_KEY_WRAP_KWP (0x210b): not offered',
      "CKM_AES_KEY_WRAP_PAD (0x210a): wraps, but not as RFC 5649 (its 48-byte result differs from OpenSSL's id-aes256-wrap-pad)",
      'token "ica" offers for wrapping keys: CKM_RSA_PKCS (wrap, unwrap), CKM_AES_KEY_WRAP_PAD (wrap, unwrap)',
    ]);
    expect(wrap.hint).toMatch(
      /custos needs CKM_AES_KEY_WRAP_KWP, or a CKM_AES_KEY_WRAP_PAD that is/,
    );
    const unwrap = catchCustos(() => rfc5649(t, 'unwrap'), 'E_MECHANISM');
    expect(unwrap.details.slice(0, 2)).toEqual([
      'CKM_AES_KEY_WRAP_KWP (0x210b): not offered',
      'CKM_AES_KEY_WRAP_PAD (0x210a): refused to unwrap an RFC 5649 test blob (CKR_WRAPPED_KEY_INVALID)',
    ]);
    expect(rfc5649IfAny(t, 'wrap')).toBeNull();
  });

  test('a result of the right length is still compared byte for byte', () => {
    // 'careless' wraps a different key under the right KEK: 40 bytes, like the known answer
    const { t } = token({ mechanisms: { [PAD]: BOTH }, wrapKinds: { [PAD]: 'careless' } });
    expect(knownAnswer(t, WRAP_CANDIDATES[1]!, 'wrap')).toBe(
      "wraps, but not as RFC 5649 (its 40-byte result differs from OpenSSL's id-aes256-wrap-pad)",
    );
    const lazy = token({ mechanisms: { [PAD]: BOTH }, wrapKinds: { [PAD]: 'rfc3394-pkcs7' } });
    expect(knownAnswer(lazy.t, WRAP_CANDIDATES[1]!, 'wrap')).toMatch(/^wraps, but not as RFC 5649/);
  });

  test('an unwrap that passes but gives another key is caught where AES-ECB is allowed', () => {
    const careless: FakeOptions = {
      mechanisms: { [PAD]: BOTH, [P.CKM_AES_ECB]: P.CKF_ENCRYPT },
      wrapKinds: { [PAD]: 'careless' },
    };
    expect(knownAnswer(token(careless).t, WRAP_CANDIDATES[1]!, 'unwrap')).toBe(
      'unwraps an RFC 5649 test blob to another key',
    );
    // where the token will not encrypt with the test key, the integrity check is all there is
    const noEcb = token({
      ...careless,
      fail: (fn) => (fn === 'C_EncryptInit' ? P.CKR_KEY_FUNCTION_NOT_PERMITTED : undefined),
    });
    expect(knownAnswer(noEcb.t, WRAP_CANDIDATES[1]!, 'unwrap')).toBeNull();
    // but a device error there is an error
    const broken = token({
      ...careless,
      fail: (fn) => (fn === 'C_Encrypt' ? P.CKR_DEVICE_ERROR : undefined),
    });
    catchCustos(() => knownAnswer(broken.t, WRAP_CANDIDATES[1]!, 'unwrap'), 'E_HSM');
  });

  test('offered without the flag for the use: passed over, said why', () => {
    const { t } = token({
      label: 'half',
      mechanisms: { [KWP]: P.CKF_UNWRAP, [PAD]: P.CKF_WRAP },
      wrapKinds: { [KWP]: 'rfc5649', [PAD]: 'rfc5649' },
    });
    expect(rfc5649(t, 'wrap').name).toBe('AES-KEY-WRAP-PAD');
    expect(rfc5649(t, 'unwrap').name).toBe('AES-KEY-WRAP-KWP');
    const none = token({ label: 'none', mechanisms: { [KWP]: P.CKF_UNWRAP } });
    expect(catchCustos(() => rfc5649(none.t, 'wrap'), 'E_MECHANISM').details[0]).toBe(
      'CKM_AES_KEY_WRAP_KWP (0x210b): offered without the wrap flag',
    );
  });

  test.each([
    ['CKR_MECHANISM_PARAM_INVALID', P.CKR_MECHANISM_PARAM_INVALID],
    ['CKR_FUNCTION_NOT_SUPPORTED', P.CKR_FUNCTION_NOT_SUPPORTED],
    ['CKR_KEY_FUNCTION_NOT_PERMITTED', P.CKR_KEY_FUNCTION_NOT_PERMITTED],
    ['CKR_ARGUMENTS_BAD', P.CKR_ARGUMENTS_BAD],
    ['CKR_WRAPPING_KEY_TYPE_INCONSISTENT', P.CKR_WRAPPING_KEY_TYPE_INCONSISTENT],
  ])('KWP refused with %s: PAD is tried next', (name, code) => {
    const { lib, t } = token({
      mechanisms: { [KWP]: BOTH, [PAD]: BOTH },
      wrapKinds: { [KWP]: 'rfc5649', [PAD]: 'rfc5649' },
      fail: (fn, args) =>
        fn === 'C_WrapKey' && (args[1] as { mechanism: number }).mechanism === KWP
          ? code
          : undefined,
    });
    expect(rfc5649(t, 'wrap').name).toBe('AES-KEY-WRAP-PAD');
    expect(wrapCalls(lib)).toEqual([KWP, PAD]);
    expect(knownAnswer(t, WRAP_CANDIDATES[0]!, 'wrap')).toBe(
      `refused to wrap the test key (${name})`,
    );
  });

  test.each([
    ['CKR_DEVICE_ERROR', P.CKR_DEVICE_ERROR],
    ['CKR_GENERAL_ERROR', P.CKR_GENERAL_ERROR],
    ['CKR_SESSION_HANDLE_INVALID', P.CKR_SESSION_HANDLE_INVALID],
    ['CKR_DEVICE_MEMORY', P.CKR_DEVICE_MEMORY],
  ])(
    'a %s in the known-answer test stops: E_HSM, PAD not tried, test objects destroyed',
    (name, code) => {
      const { lib, t } = token({
        mechanisms: { [KWP]: BOTH, [PAD]: BOTH },
        wrapKinds: { [KWP]: 'rfc5649', [PAD]: 'rfc5649' },
        fail: (fn) => (fn === 'C_WrapKey' ? code : undefined),
      });
      const e = catchCustos(() => rfc5649(t, 'wrap'), 'E_HSM');
      expect(e).toBeInstanceOf(Pkcs11Failure);
      expect((e as Pkcs11Failure).ckr).toBe(code);
      expect(e.message).toMatch(
        new RegExp(
          `run the known-answer test of CKM_AES_KEY_WRAP_KWP on token "vault" \\(${name}\\)$`,
        ),
      );
      expect(wrapCalls(lib)).toEqual([KWP]);
      expect(lib.objects.size).toBe(0);
      expect(lib.destroyed).toHaveLength(2);
      // not cached as "no mechanism": the next try runs the test again
      expect(t.wrapChoice.size).toBe(0);
    },
  );

  test('a failure to create the test keys is E_HSM, whatever the code', () => {
    for (const code of [P.CKR_TEMPLATE_INCONSISTENT, P.CKR_MECHANISM_INVALID, P.CKR_DEVICE_ERROR]) {
      const { t } = token({
        ...SOFTHSM,
        fail: (fn) => (fn === 'C_CreateObject' ? code : undefined),
      });
      let caught: unknown;
      try {
        rfc5649(t, 'wrap');
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(Pkcs11Failure);
      expect((caught as CustosError).message).toMatch(
        /create a session test key for the known-answer test on token "vault"/,
      );
    }
  });

  test('the test keys are session objects, the KEK sensitive and not extractable; all are destroyed', () => {
    const { lib, t } = token(SOFTHSM);
    rfc5649(t, 'wrap');
    rfc5649(t, 'unwrap');
    const created = lib.calls.filter((c) => c.fn === 'C_CreateObject').map((c) => c.args[1]);
    expect(created.length).toBe(3); // KEK and key for wrap, KEK for unwrap
    for (const tpl of created as Parameters<typeof attr>[0][]) {
      expect(attr(tpl, P.CKA_TOKEN)).toBe(false);
      expect(attr(tpl, P.CKA_SENSITIVE)).toBe(true);
    }
    const kek = created[0] as Parameters<typeof attr>[0];
    expect(attr(kek, P.CKA_EXTRACTABLE)).toBe(false);
    expect(attr(kek, P.CKA_WRAP)).toBe(true);
    expect(attr(kek, P.CKA_DECRYPT)).toBe(false);
    expect(lib.objects.size).toBe(0);
  });

  test('the choice is made once per session and use, a refusal too', () => {
    const { lib, t } = token(SOFTHSM);
    const first = rfc5649(t, 'wrap');
    expect(rfc5649(t, 'wrap')).toBe(first);
    expect(lib.count('C_WrapKey')).toBe(1);
    const bad = token(PAD_NOT_5649);
    const e1 = catchCustos(() => rfc5649(bad.t, 'wrap'), 'E_MECHANISM');
    const e2 = catchCustos(() => rfc5649(bad.t, 'wrap'), 'E_MECHANISM');
    expect(e2).toBe(e1);
    expect(bad.lib.count('C_WrapKey')).toBe(1);
  });
});

function secretKey(lib: FakeModule, value: Buffer, more: Partial<KeyObject> = {}): KeyObject {
  const handle = lib.add({ template: [], value });
  return {
    handle,
    label: 'k1',
    id: '01',
    class: 'secret',
    objectClass: P.CKO_SECRET_KEY,
    keyType: 'AES',
    bits: value.length * 8,
    usage: { encrypt: true },
    private: true,
    sensitive: true,
    extractable: true,
    labelIsText: true,
    onToken: true,
    ...more,
  };
}

describe('wrapKey, rewrapKey and importKek', () => {
  test('wraps as OpenSSL unwraps, growing the buffer when the token asks for more', () => {
    const { lib, t } = token(SOFTHSM);
    const kekValue = randomBytes(32);
    const kek = lib.add({ template: [], value: kekValue });
    const m = rfc5649(t, 'wrap');
    for (const value of [randomBytes(32), randomBytes(200), randomBytes(1)]) {
      // bits understated, so the first buffer is too small for the 200-byte value
      const key = secretKey(lib, value, { bits: 256 });
      const blob = wrapKey(t, m, kek, key);
      expect(rfc5649Unwrap(kekValue, blob).equals(value)).toBe(true);
      expect(blob.equals(rfc5649Wrap(kekValue, value))).toBe(true);
    }
    expect(
      lib.calls.filter((c) => c.fn === 'C_WrapKey').map((c) => (c.args[4] as Buffer).length),
    ).toEqual([104, 64, 64, 256, 256]);
  });

  test('a refused wrap names the key and the token; it is not retried', () => {
    let wraps = 0; // the first is the known-answer test's
    const { lib, t } = token({
      ...SOFTHSM,
      fail: (fn) => (fn === 'C_WrapKey' && ++wraps > 1 ? P.CKR_KEY_UNEXTRACTABLE : undefined),
    });
    const m = rfc5649(t, 'wrap');
    const kek = lib.add({ template: [], value: randomBytes(32) });
    const e = catchCustos(() => wrapKey(t, m, kek, secretKey(lib, randomBytes(32))), 'E_HSM');
    expect(e.message).toBe(
      'the token refused to wrap key "k1" on token "vault" (CKR_KEY_UNEXTRACTABLE)',
    );
    expect(lib.count('C_WrapKey')).toBe(2);
  });

  test('re-wrap: a key that may not leave, or no RFC 5649 wrap, is "no proof"; a device error is an error', () => {
    let mode: number | undefined;
    let wraps = 0;
    const { lib, t } = token({
      ...SOFTHSM,
      fail: (fn) => (fn === 'C_WrapKey' && ++wraps > 1 ? mode : undefined),
    });
    const kek = lib.add({ template: [], value: randomBytes(32) });
    const key = secretKey(lib, randomBytes(32));
    expect(rewrapKey(t, kek, key)).not.toBeNull();
    for (const code of [
      P.CKR_KEY_UNEXTRACTABLE,
      P.CKR_KEY_NOT_WRAPPABLE,
      P.CKR_MECHANISM_INVALID,
    ]) {
      mode = code;
      expect(rewrapKey(t, kek, key)).toBeNull();
    }
    for (const code of [P.CKR_DEVICE_ERROR, P.CKR_KEY_HANDLE_INVALID, P.CKR_FUNCTION_FAILED]) {
      mode = code;
      const e = catchCustos(() => rewrapKey(t, kek, key), 'E_HSM');
      expect(e.message).toMatch(/wrap key "k1" (again )?on token "vault"/);
    }
    const bad = token(PAD_NOT_5649);
    expect(rewrapKey(bad.t, kek, key)).toBeNull();
  });

  test('the KEK is imported as a session object that never leaves; without CKA_COPYABLE only where the module does not know it', () => {
    const { lib, t } = token({
      fail: (fn, args) =>
        fn === 'C_CreateObject' &&
        (args[1] as { type: number }[]).some((a) => a.type === P.CKA_COPYABLE)
          ? P.CKR_ATTRIBUTE_TYPE_INVALID
          : undefined,
    });
    const kek = randomBytes(32);
    const h = importKek(t, kek);
    const tries = lib.calls.filter((c) => c.fn === 'C_CreateObject').map((c) => c.args[1]);
    expect(tries).toHaveLength(2);
    const first = tries[0] as Parameters<typeof attr>[0];
    const second = tries[1] as Parameters<typeof attr>[0];
    expect(attr(first, P.CKA_COPYABLE)).toBe(false);
    expect(second.filter((a) => a.type !== P.CKA_COPYABLE)).toEqual(second);
    expect(second).toEqual(first.filter((a) => a.type !== P.CKA_COPYABLE));
    for (const [type, value] of [
      [P.CKA_TOKEN, false],
      [P.CKA_SENSITIVE, true],
      [P.CKA_EXTRACTABLE, false],
      [P.CKA_MODIFIABLE, false],
      [P.CKA_WRAP, true],
      [P.CKA_UNWRAP, true],
      [P.CKA_ENCRYPT, false],
      [P.CKA_DECRYPT, false],
      [P.CKA_SIGN, false],
    ] as const)
      expect(attr(second, type), String(type)).toBe(value);
    expect(lib.get(h).value?.equals(kek)).toBe(true);

    for (const code of [P.CKR_TEMPLATE_INCONSISTENT, P.CKR_DEVICE_ERROR]) {
      const other = token({ fail: (fn) => (fn === 'C_CreateObject' ? code : undefined) });
      const e = catchCustos(() => importKek(other.t, kek), 'E_HSM');
      expect(e.message).toMatch(/import the backup key-encryption key as a session object/);
      expect(other.lib.count('C_CreateObject')).toBe(1);
    }
  });
});

describe('unwrapKey', () => {
  const record = (more: Partial<KeyRecord>): KeyRecord => ({
    class: 'secret',
    keyType: 'AES',
    label: 'k1',
    id: 'a1',
    bits: 256,
    usage: { encrypt: true, decrypt: true },
    private: true,
    sensitive: true,
    extractable: false,
    checkValue: { method: 'none', value: '' },
    wrapped: '',
    certificates: [],
    ...more,
  });

  test('unwraps the recorded blob into a sensitive, private token object with the recorded attributes', () => {
    const { lib, t } = token(SOFTHSM);
    const kekValue = randomBytes(32);
    const kek = lib.add({ template: [], value: kekValue });
    const value = randomBytes(32);
    const r = record({ wrapped: rfc5649Wrap(kekValue, value).toString('base64') });
    const h = unwrapKey(t, rfc5649(t, 'unwrap'), kek, r);
    const made = lib.get(h);
    expect(made.value?.equals(value)).toBe(true);
    for (const [type, v] of [
      [P.CKA_TOKEN, true],
      [P.CKA_PRIVATE, true],
      [P.CKA_SENSITIVE, true],
      [P.CKA_EXTRACTABLE, false],
      [P.CKA_ENCRYPT, true],
      [P.CKA_DECRYPT, true],
      [P.CKA_WRAP, false],
      [P.CKA_LABEL, 'k1'],
    ] as const)
      expect(attr(made.template, type), String(type)).toEqual(v);
    expect(attr(made.template, P.CKA_ID)).toEqual(Buffer.from('a1', 'hex'));
    expect(attr(made.template, CKA_NSS_DB)).toBeUndefined();
  });

  test('a blob that does not open is E_HSM naming the key and the token', () => {
    const { lib, t } = token(SOFTHSM);
    const kek = lib.add({ template: [], value: randomBytes(32) });
    const r = record({ wrapped: rfc5649Wrap(randomBytes(32), randomBytes(32)).toString('base64') });
    const e = catchCustos(() => unwrapKey(t, rfc5649(t, 'unwrap'), kek, r), 'E_HSM');
    expect(e.message).toBe(
      'the token refused to unwrap key "k1" into token "vault" (CKR_WRAPPED_KEY_INVALID)',
    );
    expect(e.hint).toMatch(/wrapped key does not open under this key/);
  });

  test('NSS: an EC private key gets CKA_NSS_DB, and without a recorded public point is refused before any call', () => {
    const { lib, t } = token(NSS);
    const kekValue = randomBytes(32);
    const kek = lib.add({ template: [], value: kekValue });
    const m = rfc5649(t, 'unwrap');
    const point = Buffer.concat([Buffer.from([4]), randomBytes(64)]);
    const ec = record({
      class: 'private',
      keyType: 'EC',
      usage: { sign: true },
      wrapped: rfc5649Wrap(kekValue, randomBytes(40)).toString('base64'),
    });
    const before = lib.count('C_UnwrapKey');
    const e = catchCustos(() => unwrapKey(t, m, kek, ec), 'E_HSM');
    expect(e.message).toMatch(/^token "nss" cannot take key "k1": NSS softoken needs the public/);
    expect(lib.count('C_UnwrapKey')).toBe(before);
    const withPoint = {
      ...ec,
      publicKey: {
        label: 'k1',
        keyType: 'EC',
        usage: {},
        ecPoint: Buffer.concat([Buffer.from([4, 65]), point]).toString('hex'),
      },
    };
    const made = lib.get(unwrapKey(t, m, kek, withPoint));
    expect(attr(made.template, CKA_NSS_DB)).toEqual(point);
    expect(attr(made.template, P.CKA_CLASS)).toBe(P.CKO_PRIVATE_KEY);
  });
});
