// How two tokens agree on the RSA-OAEP hash for the HSM-to-HSM copy (src/hsm/transport.ts), on
// two in-memory stand-ins for the pkcs11js calls. The stand-ins do real RSA-OAEP with node:crypto
// and the hash the mechanism parameters name, and accept only the hashes they are told to: what is
// tested is which candidate custos tries, in what order, and which failures stop the copy.
import { beforeAll, describe, expect, test } from 'vitest';
import {
  constants,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject as NodeKey,
} from 'node:crypto';
import { P, Pkcs11Failure, type Pkcs11 } from '../../src/hsm/call.js';
import {
  CKM_RSA_AES_KEY_WRAP,
  TRANSPORT_MECHANISMS,
  generateTransportKeyPair,
  negotiateTransport,
  tryWrapEphemeral,
  wrapEphemeral,
} from '../../src/hsm/transport.js';
import type { Token } from '../../src/hsm/token.js';
import type { Attr } from '../../src/hsm/attributes.js';
import { attr, handle, pkcs11Error } from './hsm-fake.js';
import { catchCustos } from './helpers.js';

const OAEP = P.CKM_RSA_PKCS_OAEP;
const HASH_NAME: Record<number, string> = { [P.CKM_SHA256]: 'sha256', [P.CKM_SHA_1]: 'sha1' };
const MGF_OF: Record<number, number> = {
  [P.CKM_SHA256]: P.CKG_MGF1_SHA256,
  [P.CKM_SHA_1]: P.CKG_MGF1_SHA1,
};

let pair: { publicKey: NodeKey; privateKey: NodeKey };
beforeAll(() => {
  pair = generateKeyPairSync('rsa', { modulusLength: 1024 });
});
const EPHEMERAL = randomBytes(32);

interface OaepParams {
  hashAlg: number;
  mgf: number;
  source: number;
  type: number;
}

interface Side {
  label: string;
  /** Mechanisms listed, with flags. */
  offers: Record<number, number>;
  /** OAEP hashes (CKM_SHA_1, CKM_SHA256) it takes. */
  hashes: number[];
  /** What it answers to another hash (SoftHSM 2.6: CKR_ARGUMENTS_BAD). */
  refusal?: number;
  /** A failure to throw instead, for a function and hash. */
  fail?: (fn: string, hash: number) => number | undefined;
}

function side(s: Side) {
  const log: { fn: string; hash: number }[] = [];
  const unwrapped: Buffer[] = [];
  const check = (fn: string, mech: { mechanism: number; parameter?: OaepParams }) => {
    const p = mech.parameter as OaepParams;
    log.push({ fn, hash: p.hashAlg });
    const failure = s.fail?.(fn, p.hashAlg);
    if (failure !== undefined) throw pkcs11Error(failure, fn);
    if (mech.mechanism !== OAEP) throw pkcs11Error(P.CKR_MECHANISM_INVALID, fn);
    if (p.type !== P.CK_PARAMS_RSA_OAEP || p.source !== 1 || p.mgf !== MGF_OF[p.hashAlg])
      throw pkcs11Error(P.CKR_MECHANISM_PARAM_INVALID, fn);
    if (!s.hashes.includes(p.hashAlg))
      throw pkcs11Error(s.refusal ?? P.CKR_MECHANISM_PARAM_INVALID, fn);
    return HASH_NAME[p.hashAlg] as string;
  };
  const lib = {
    C_GetMechanismInfo(_slot: Buffer, m: number) {
      const flags = s.offers[m];
      if (flags === undefined) throw pkcs11Error(P.CKR_MECHANISM_INVALID);
      return { flags, minKeySize: 0, maxKeySize: 0 };
    },
    C_WrapKey(_s: Buffer, mech: { mechanism: number; parameter?: OaepParams }, _pub: Buffer) {
      const oaepHash = check('C_WrapKey', mech);
      return publicEncrypt(
        { key: pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
        EPHEMERAL,
      );
    },
    C_UnwrapKey(
      _s: Buffer,
      mech: { mechanism: number; parameter?: OaepParams },
      _priv: Buffer,
      blob: Buffer,
    ) {
      const oaepHash = check('C_UnwrapKey', mech);
      try {
        unwrapped.push(
          privateDecrypt(
            { key: pair.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
            blob,
          ),
        );
      } catch {
        throw pkcs11Error(P.CKR_ENCRYPTED_DATA_INVALID, 'C_UnwrapKey');
      }
      return handle(77);
    },
  };
  const token = {
    lib: lib as unknown as Pkcs11,
    session: handle(1),
    slot: handle(2),
    identity: { label: s.label },
  } as unknown as Token;
  return { token, log, unwrapped };
}

const BOTH_OAEP = { [OAEP]: P.CKF_WRAP | P.CKF_UNWRAP };
const SHA256_NAME = 'RSA-OAEP-SHA256 + AES-KWP';
const SHA1_NAME = 'RSA-OAEP-SHA1 + AES-KWP';

function negotiate(a: ReturnType<typeof side>, b: ReturnType<typeof side>) {
  return negotiateTransport(a.token, b.token, handle(10), handle(20), handle(30));
}

describe('negotiateTransport: the OAEP hash both tokens take, tried for real', () => {
  test('the candidates, in order: SHA-256 first, then SHA-1, each with its own MGF1', () => {
    expect(TRANSPORT_MECHANISMS.map((m) => [m.name, m.oaep])).toEqual([
      [SHA256_NAME, { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256 }],
      [SHA1_NAME, { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1 }],
    ]);
  });

  test('NSS to NSS: SHA-256, tried once; the target holds the key the source wrapped', () => {
    const a = side({ label: 'a', offers: BOTH_OAEP, hashes: [P.CKM_SHA256, P.CKM_SHA_1] });
    const b = side({ label: 'b', offers: BOTH_OAEP, hashes: [P.CKM_SHA256, P.CKM_SHA_1] });
    const n = negotiate(a, b);
    expect(n.mechanism.name).toBe(SHA256_NAME);
    expect(n.note).toBeUndefined();
    expect(a.log).toEqual([{ fn: 'C_WrapKey', hash: P.CKM_SHA256 }]);
    expect(b.log).toEqual([{ fn: 'C_UnwrapKey', hash: P.CKM_SHA256 }]);
    expect(b.unwrapped).toEqual([EPHEMERAL]);
  });

  test('from SoftHSM 2.6 (SHA-1 only, CKR_ARGUMENTS_BAD to SHA-256): SHA-1', () => {
    const a = side({
      label: 'softhsm',
      offers: BOTH_OAEP,
      hashes: [P.CKM_SHA_1],
      refusal: P.CKR_ARGUMENTS_BAD,
    });
    const b = side({ label: 'nss', offers: BOTH_OAEP, hashes: [P.CKM_SHA256, P.CKM_SHA_1] });
    const n = negotiate(a, b);
    expect(n.mechanism.name).toBe(SHA1_NAME);
    expect(a.log.map((l) => l.hash)).toEqual([P.CKM_SHA256, P.CKM_SHA_1]);
    expect(b.log.map((l) => l.hash)).toEqual([P.CKM_SHA_1]);
    expect(b.unwrapped).toEqual([EPHEMERAL]);
  });

  test('to a target that refuses SHA-256 at unwrap: SHA-1, wrapped again for it', () => {
    const a = side({ label: 'nss', offers: BOTH_OAEP, hashes: [P.CKM_SHA256, P.CKM_SHA_1] });
    const b = side({ label: 'softhsm', offers: BOTH_OAEP, hashes: [P.CKM_SHA_1] });
    const n = negotiate(a, b);
    expect(n.mechanism.name).toBe(SHA1_NAME);
    expect(a.log.map((l) => l.hash)).toEqual([P.CKM_SHA256, P.CKM_SHA_1]);
    expect(b.log.map((l) => l.hash)).toEqual([P.CKM_SHA256, P.CKM_SHA_1]);
    expect(b.unwrapped).toEqual([EPHEMERAL]);
  });

  test.each([
    ['source', 'C_WrapKey', 'CKR_DEVICE_ERROR', P.CKR_DEVICE_ERROR],
    ['source', 'C_WrapKey', 'CKR_KEY_HANDLE_INVALID', P.CKR_KEY_HANDLE_INVALID],
    ['target', 'C_UnwrapKey', 'CKR_DEVICE_REMOVED', P.CKR_DEVICE_REMOVED],
    ['target', 'C_UnwrapKey', 'CKR_SESSION_CLOSED', P.CKR_SESSION_CLOSED],
    ['target', 'C_UnwrapKey', 'CKR_WRAPPED_KEY_INVALID', P.CKR_WRAPPED_KEY_INVALID],
  ])(
    'a %s failure other than a refusal (%s, %s) stops: E_HSM, SHA-1 not tried',
    (where, fn, name, code) => {
      const fail = (f: string) => (f === fn ? code : undefined);
      const hashes = [P.CKM_SHA256, P.CKM_SHA_1];
      const a = side({ label: 'a', offers: BOTH_OAEP, hashes, fail });
      const b = side({ label: 'b', offers: BOTH_OAEP, hashes, fail });
      const e = catchCustos(() => negotiate(a, b), 'E_HSM');
      expect(e).toBeInstanceOf(Pkcs11Failure);
      const verb =
        where === 'source'
          ? 'wrap the ephemeral key in token "a"'
          : 'unwrap the ephemeral key in token "b"';
      expect(e.message).toMatch(`${verb} (${SHA256_NAME}) (${name})`);
      expect([...a.log, ...b.log].map((l) => l.hash)).not.toContain(P.CKM_SHA_1);
    },
  );

  test('no hash in common: E_MECHANISM naming each refusal, by token', () => {
    const a = side({
      label: 'a',
      offers: BOTH_OAEP,
      hashes: [P.CKM_SHA_1],
      refusal: P.CKR_ARGUMENTS_BAD,
    });
    const b = side({ label: 'b', offers: BOTH_OAEP, hashes: [P.CKM_SHA256] });
    const e = catchCustos(() => negotiate(a, b), 'E_MECHANISM');
    expect(e.message).toBe('tokens "a" and "b" share no transport mechanism');
    expect(e.hint).toBe(
      'custos needs RSA-OAEP (wrap in the source, unwrap in the target) and AES key wrap with padding in both; tried: ' +
        `${SHA256_NAME} (token "a" refused to wrap: CKR_ARGUMENTS_BAD); ` +
        `${SHA1_NAME} (token "b" refused to unwrap: CKR_MECHANISM_PARAM_INVALID)`,
    );
  });

  test('RSA-OAEP not offered by both (the target cannot unwrap with it): nothing is tried', () => {
    const a = side({ label: 'a', offers: BOTH_OAEP, hashes: [P.CKM_SHA256] });
    const b = side({ label: 'b', offers: { [OAEP]: P.CKF_WRAP }, hashes: [P.CKM_SHA256] });
    const e = catchCustos(() => negotiate(a, b), 'E_MECHANISM');
    expect(e.hint).toMatch(/tried: none \(RSA-OAEP is not offered by both\)$/);
    expect(a.log).toEqual([]);
    const c = side({ label: 'c', offers: {}, hashes: [] });
    catchCustos(() => negotiate(c, b), 'E_MECHANISM');
    expect(c.log).toEqual([]);
  });

  test('CKM_RSA_AES_KEY_WRAP offered by both is noted (custos cannot drive it); by one, not', () => {
    const rsaAes = { ...BOTH_OAEP, [CKM_RSA_AES_KEY_WRAP]: P.CKF_WRAP | P.CKF_UNWRAP };
    const hashes = [P.CKM_SHA256];
    const both = negotiate(
      side({ label: 'a', offers: rsaAes, hashes }),
      side({ label: 'b', offers: rsaAes, hashes }),
    );
    expect(both.note).toBe(
      'both tokens offer CKM_RSA_AES_KEY_WRAP, which custos cannot drive through pkcs11js; it used the next choice',
    );
    const one = negotiate(
      side({ label: 'a', offers: rsaAes, hashes }),
      side({ label: 'b', offers: BOTH_OAEP, hashes }),
    );
    expect(one.note).toBeUndefined();
  });
});

describe('wrapping the ephemeral key with a chosen mechanism', () => {
  test('tryWrapEphemeral: a refusal is null, anything else is thrown', () => {
    const [sha256] = TRANSPORT_MECHANISMS;
    const refuses = side({
      label: 'a',
      offers: BOTH_OAEP,
      hashes: [P.CKM_SHA_1],
      refusal: P.CKR_ARGUMENTS_BAD,
    });
    expect(tryWrapEphemeral(refuses.token, sha256!, handle(1), handle(2))).toBeNull();
    const works = side({ label: 'a', offers: BOTH_OAEP, hashes: [P.CKM_SHA256] });
    const blob = tryWrapEphemeral(works.token, sha256!, handle(1), handle(2)) as Buffer;
    expect(
      privateDecrypt(
        { key: pair.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        blob,
      ),
    ).toEqual(EPHEMERAL);
    const broken = side({
      label: 'a',
      offers: BOTH_OAEP,
      hashes: [P.CKM_SHA256],
      fail: () => P.CKR_DEVICE_ERROR,
    });
    const e = catchCustos(
      () => tryWrapEphemeral(broken.token, sha256!, handle(1), handle(2)),
      'E_HSM',
    );
    expect(e.message).toBe(
      `the HSM failed while trying to wrap the ephemeral key to the transport key in token "a" (${SHA256_NAME}) (CKR_DEVICE_ERROR)`,
    );
  });

  test('wrapEphemeral: with the mechanism already agreed, a refusal is an error too', () => {
    const [sha256] = TRANSPORT_MECHANISMS;
    const refuses = side({ label: 'a', offers: BOTH_OAEP, hashes: [P.CKM_SHA_1] });
    const e = catchCustos(
      () => wrapEphemeral(refuses.token, sha256!, handle(1), handle(2)),
      'E_MECHANISM',
    );
    expect(e.message).toMatch(/to wrap the ephemeral key to the transport key in token "a"/);
  });
});

describe('generateTransportKeyPair', () => {
  test('RSA-3072 session objects: the private half may only unwrap and never leaves', () => {
    let templates: { pub: Attr[]; priv: Attr[] } | undefined;
    const modulus = randomBytes(384);
    const lib = {
      C_GenerateKeyPair(_s: Buffer, mech: { mechanism: number }, pub: Attr[], priv: Attr[]) {
        expect(mech.mechanism).toBe(P.CKM_RSA_PKCS_KEY_PAIR_GEN);
        templates = { pub, priv };
        return { publicKey: handle(5), privateKey: handle(6) };
      },
      C_GetAttributeValue() {
        return [
          { type: P.CKA_MODULUS, value: modulus },
          { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ];
      },
    };
    const token = {
      lib,
      session: handle(1),
      identity: { label: 'b' },
    } as unknown as Token;
    const made = generateTransportKeyPair(token);
    expect(made.modulus).toEqual(modulus);
    const { pub, priv } = templates as { pub: Attr[]; priv: Attr[] };
    expect(attr(pub, P.CKA_MODULUS_BITS)).toBe(3072);
    expect(attr(pub, P.CKA_TOKEN)).toBe(false);
    expect(attr(pub, P.CKA_WRAP)).toBe(true);
    expect(attr(pub, P.CKA_ENCRYPT)).toBe(false);
    for (const [type, value] of [
      [P.CKA_TOKEN, false],
      [P.CKA_SENSITIVE, true],
      [P.CKA_EXTRACTABLE, false],
      [P.CKA_UNWRAP, true],
      [P.CKA_DECRYPT, false],
      [P.CKA_SIGN, false],
      [P.CKA_DERIVE, false],
    ] as const)
      expect(attr(priv, type), String(type)).toBe(value);
  });
});
