/**
 * custos's HSM layer against both real modules, in this (forked) process: the known-answer test
 * that picks the RFC 5649 mechanism of each module; the one call wrapper, under which a device
 * error is never "not supported" and never a recorded check value "none"; the check of every
 * created key against what was asked, with corrections where the module allows them; and the
 * quirks that need a module to show (CKA_COPYABLE, zero serials, PIN lengths).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CustosError } from '../../src/core/errors.js';
import { finalizeAll } from '../../src/hsm/module.js';
import { P, Refused, UNSUPPORTED, attempt } from '../../src/hsm/call.js';
import { Token } from '../../src/hsm/token.js';
import { WRAP_CANDIDATES, knownAnswer } from '../../src/hsm/wrapping.js';
import { checkCreated } from '../../src/hsm/objects.js';
import { cleanup, initToken, workspace, MODULE, TIMEOUT, type TokenRef } from './helpers.js';
import { NSS_MODULE, makeNssToken, nssParameters, type NssToken } from './nss.js';

const ws = workspace('hsm-layer');
let soft: TokenRef;
let nssA: NssToken;
let nssB: NssToken;
let params: string;
const opened: Token[] = [];

async function open(which: 'soft' | 'nss-a' | 'nss-b'): Promise<Token> {
  const t =
    which === 'soft'
      ? await Token.open({ module: MODULE, token: soft.label }, async () => soft.pin, true)
      : await Token.open(
          { module: NSS_MODULE, token: which, libraryParameters: params },
          async () => (which === 'nss-a' ? nssA : nssB).pin,
          true,
        );
  opened.push(t);
  return t;
}

const [KWP, PAD] = WRAP_CANDIDATES as [
  (typeof WRAP_CANDIDATES)[number],
  (typeof WRAP_CANDIDATES)[number],
];

beforeAll(() => {
  soft = initToken(ws, 'layer');
  process.env.SOFTHSM2_CONF = ws.conf;
  nssA = makeNssToken(ws, 'nss-a');
  nssB = makeNssToken(ws, 'nss-b');
  params = nssParameters([nssA, nssB]);
}, TIMEOUT);

afterAll(() => {
  for (const t of opened) t.close();
  finalizeAll();
  cleanup(ws);
});

describe('the RFC 5649 mechanism is chosen by a known-answer test, per module', () => {
  it('SoftHSM2: no CKM_AES_KEY_WRAP_KWP; its CKM_AES_KEY_WRAP_PAD is RFC 5649, for wrap and unwrap', async () => {
    const t = await open('soft');
    expect(knownAnswer(t, KWP, 'wrap')).toBe('not offered');
    expect(knownAnswer(t, PAD, 'wrap')).toBeNull();
    expect(knownAnswer(t, PAD, 'unwrap')).toBeNull();
    expect(t.requireWrapMechanism('wrap').name).toBe('AES-KEY-WRAP-PAD');
    expect(t.wrapRecord()).toEqual({ mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' });
  });

  it('NSS softoken: its CKM_AES_KEY_WRAP_PAD wraps, but not as RFC 5649 (and refuses an RFC 5649 blob); CKM_AES_KEY_WRAP_KWP is RFC 5649', async () => {
    const t = await open('nss-a');
    expect(knownAnswer(t, PAD, 'wrap')).toMatch(
      /^wraps, but not as RFC 5649 \(its 48-byte result differs from OpenSSL's id-aes256-wrap-pad\)$/,
    );
    expect(knownAnswer(t, PAD, 'unwrap')).toMatch(
      /^refused to unwrap an RFC 5649 test blob \(CKR_/,
    );
    expect(knownAnswer(t, KWP, 'wrap')).toBeNull();
    expect(knownAnswer(t, KWP, 'unwrap')).toBeNull();
    expect(t.requireWrapMechanism('wrap').name).toBe('AES-KEY-WRAP-KWP');
    expect(t.requireWrapMechanism('unwrap').name).toBe('AES-KEY-WRAP-KWP');
  });
});

describe('one call wrapper: every failure is a custos error naming its CKR; only listed codes mean "not supported"', () => {
  it('a bare call that fails (a slot that does not exist) is E_HSM naming the return code, not a defect in custos', async () => {
    const t = await open('soft');
    const bad = Buffer.alloc(8, 0xee);
    expect(() => t.lib.C_GetTokenInfo(bad)).toThrow(CustosError);
    expect(() => t.lib.C_GetTokenInfo(bad)).toThrow(/CKR_SLOT_ID_INVALID/);
  });

  it('attempt: a listed code comes back as Refused; any other is thrown', async () => {
    const t = await open('soft');
    const refused = attempt('list a mechanism', UNSUPPORTED, () =>
      t.lib.C_GetMechanismInfo(t.slot, 0x7fff_fff0),
    );
    expect(refused).toBeInstanceOf(Refused);
    expect((refused as Refused).name).toBe('CKR_MECHANISM_INVALID');
    expect(() =>
      attempt('read a token', UNSUPPORTED, () => t.lib.C_GetTokenInfo(Buffer.alloc(8, 0xee))),
    ).toThrow(/the HSM failed while trying to read a token \(CKR_SLOT_ID_INVALID\)/);
  });

  it('a device failure while computing a check value, re-wrapping or signing is an error, never "none" or "no proof"', async () => {
    const t = await open('soft');
    const kek = t.importKek(randomBytes(32));
    const handle = t.lib.C_GenerateKey(t.session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_EXTRACTABLE, value: true },
      { type: P.CKA_SENSITIVE, value: true },
    ]);
    const key = t.describe(handle, 'secret');
    // working: the KCV is computed, the re-wrap made
    expect(t.secretCheckValue(key, 'aes-ecb-zero', true).method).toBe('aes-ecb-zero');
    expect(t.rewrap(kek, key)).toBeInstanceOf(Buffer);
    // the session is gone, as if the HSM had been pulled: errors, not "none"
    t.lib.C_CloseSession(t.session);
    expect(() => t.secretCheckValue(key, 'aes-ecb-zero', true)).toThrow(
      /CKR_SESSION_HANDLE_INVALID/,
    );
    expect(() => t.rewrap(kek, key)).toThrow(/CKR_SESSION_HANDLE_INVALID/);
    expect(() =>
      t.signChallenge({ handle, keyType: 'RSA', usage: { sign: true }, label: 'x' }),
    ).toThrow(/CKR_SESSION_HANDLE_INVALID/);
  });

  it('a key that may not be used so gives no check value (method none), which is not an error', async () => {
    const t = await open('soft');
    const handle = t.lib.C_GenerateKey(t.session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_ENCRYPT, value: false },
      { type: P.CKA_SENSITIVE, value: true },
    ]);
    // asked to encrypt although CKA_ENCRYPT is false: the token says CKR_KEY_FUNCTION_NOT_PERMITTED
    const key = {
      ...t.describe(handle, 'secret'),
      usage: { encrypt: true },
      tokenCheckValue: undefined,
    };
    expect(t.secretCheckValue(key, 'aes-ecb-zero', true)).toEqual({ method: 'none', value: '' });
  });
});

describe('every created key is read back and held to what was asked', () => {
  const template = (derive: boolean, modifiable: boolean) => [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
    { type: P.CKA_LABEL, value: 'checked' },
    { type: P.CKA_ID, value: Buffer.from('c1', 'hex') },
    { type: P.CKA_VALUE_LEN, value: 32 },
    { type: P.CKA_ENCRYPT, value: true },
    { type: P.CKA_DECRYPT, value: true },
    { type: P.CKA_SIGN, value: false },
    { type: P.CKA_VERIFY, value: false },
    { type: P.CKA_WRAP, value: false },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_DERIVE, value: derive },
    { type: P.CKA_MODIFIABLE, value: modifiable },
  ];
  const want = {
    class: 'secret' as const,
    keyType: 'AES',
    label: 'checked',
    id: 'c1',
    usage: { encrypt: true, decrypt: true, derive: false },
    extractable: false,
    what: 'key "checked"',
  };

  it('a usage flag the module turned on is turned off again, and named', async () => {
    const t = await open('soft');
    const handle = t.lib.C_GenerateKey(
      t.session,
      { mechanism: P.CKM_AES_KEY_GEN },
      template(true, true),
    );
    try {
      const checked = checkCreated(t, handle, want);
      expect(checked.corrected).toEqual(['CKA_DERIVE']);
      expect(checked.key.usage.derive).toBe(false);
      expect(t.describe(handle, 'secret').usage.derive).toBe(false);
    } finally {
      t.destroy(handle);
    }
  });

  it('where the module will not change it, the run stops naming the attribute (E_VERIFY)', async () => {
    const t = await open('soft');
    const handle = t.lib.C_GenerateKey(
      t.session,
      { mechanism: P.CKM_AES_KEY_GEN },
      template(true, false),
    );
    try {
      expect(() => checkCreated(t, handle, want)).toThrow(
        /token "layer" created key "checked" with CKA_DERIVE true, against the record, and refused to change it \(CKR_/,
      );
    } finally {
      t.destroy(handle);
    }
  });

  it('a label the module did not keep cannot be corrected: E_VERIFY', async () => {
    const t = await open('soft');
    const handle = t.lib.C_GenerateKey(
      t.session,
      { mechanism: P.CKM_AES_KEY_GEN },
      template(false, true),
    );
    try {
      expect(() => checkCreated(t, handle, { ...want, label: 'other' })).toThrow(
        /created key "checked" with another CKA_LABEL \("checked"\)/,
      );
    } finally {
      t.destroy(handle);
    }
  });
});

describe('quirks that need a module to show', () => {
  it('copyable-unknown: a module that refuses CKA_COPYABLE (CKR_ATTRIBUTE_TYPE_INVALID) still gets the KEK, without it', async () => {
    const t = await open('soft');
    // SoftHSM2 knows CKA_COPYABLE; a 2.20 module answers as this shim over it does
    const seen: boolean[] = [];
    const lib = new Proxy(t.lib, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (prop !== 'C_CreateObject')
          return typeof v === 'function' ? (v as () => unknown).bind(target) : v;
        return (session: Buffer, template: { type: number }[]) => {
          const named = template.some((a) => a.type === P.CKA_COPYABLE);
          seen.push(named);
          if (named)
            throw new P.Pkcs11Error(
              'CKR_ATTRIBUTE_TYPE_INVALID',
              P.CKR_ATTRIBUTE_TYPE_INVALID,
              'C_CreateObject',
            );
          return target.C_CreateObject(session, template as never);
        };
      },
    });
    const old = Object.create(t, { lib: { value: lib } }) as Token;
    const kek = old.importKek(randomBytes(32));
    expect(seen).toEqual([true, false]);
    expect(t.describe(kek, 'secret').usage).toMatchObject({
      wrap: true,
      unwrap: true,
      encrypt: false,
    });
    t.destroy(kek);
  });

  it('zero-serial: two NSS tokens of one module have the same all-zero serial, and are still told apart (module and slot)', async () => {
    const [a, b] = [await open('nss-a'), await open('nss-b')];
    expect(a.identity.serial).toMatch(/^0+$/);
    expect(b.identity.serial).toBe(a.identity.serial);
    expect(a.sameTokenAs(b)).toBe(false);
    expect(a.sameTokenAs(await open('nss-a'))).toBe(true);
  });

  it('pin-length-range: NSS says 0 to 500, read as 1 to 500; SoftHSM2 4 to 255', async () => {
    expect((await open('nss-a')).pinLimits).toEqual({ min: 1, max: 500 });
    expect((await open('soft')).pinLimits).toEqual({ min: 4, max: 255 });
  });
});
