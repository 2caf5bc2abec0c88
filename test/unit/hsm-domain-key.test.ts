// An escrow domain's signing key inside a token (src/hsm/domain-key.ts), on a stand-in object
// store that makes real P-256 key pairs with node:crypto and searches by template as PKCS#11 does.
// Checked: the templates (the private half can only sign and never leaves), which objects count
// as the domain's key, the public key custos reports (node:crypto's own SPKI), what is signed,
// and the refusals.
import { describe, expect, test } from 'vitest';
import { createHash, generateKeyPairSync, type KeyObject as NodeKey } from 'node:crypto';
import { P, type Pkcs11 } from '../../src/hsm/call.js';
import {
  createDomainSigningKey,
  destroyDomainSigningKey,
  domainKeyLabel,
  domainSigningKeys,
  isDomainKeyLabel,
  signWithDomainKey,
} from '../../src/hsm/domain-key.js';
import type { Attr } from '../../src/hsm/attributes.js';
import type { Token } from '../../src/hsm/token.js';
import { attr, handle, pkcs11Error } from './hsm-fake.js';
import { catchCustos } from './helpers.js';

const DOMAIN = '0123456789abcdef0123456789abcdef';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

type Value = Attr['value'];
const same = (a: Value, b: Value) =>
  Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b;

function fakeToken(options: { keep?: boolean; fail?: (fn: string) => number | undefined } = {}) {
  const objects = new Map<number, { attrs: Attr[]; node?: NodeKey }>();
  const log: { fn: string; args: unknown[] }[] = [];
  let next = 1;
  let found: number[] = [];
  const enter = (fn: string, args: unknown[]) => {
    log.push({ fn, args });
    const code = options.fail?.(fn);
    if (code !== undefined) throw pkcs11Error(code, fn);
  };
  const add = (attrs: Attr[], node?: NodeKey) => {
    objects.set(next, { attrs, node });
    return handle(next++);
  };
  const lib = {
    C_GenerateKeyPair(_s: Buffer, mech: { mechanism: number }, pub: Attr[], priv: Attr[]) {
      enter('C_GenerateKeyPair', [mech, pub, priv]);
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = pair.publicKey.export({ format: 'jwk' });
      const point = Buffer.concat([
        Buffer.from([4]),
        Buffer.from(jwk.x as string, 'base64url'),
        Buffer.from(jwk.y as string, 'base64url'),
      ]);
      const cls = (c: number) => ({ type: P.CKA_CLASS, value: c });
      if (options.keep === false) return { publicKey: handle(998), privateKey: handle(999) };
      return {
        publicKey: add(
          [
            cls(P.CKO_PUBLIC_KEY),
            ...pub,
            { type: P.CKA_EC_POINT, value: Buffer.concat([Buffer.from([4, 65]), point]) },
          ],
          pair.publicKey,
        ),
        privateKey: add([cls(P.CKO_PRIVATE_KEY), ...priv], pair.privateKey),
      };
    },
    C_FindObjectsInit(_s: Buffer, template: Attr[]) {
      enter('C_FindObjectsInit', [template]);
      found = [...objects.entries()]
        .filter(([, o]) =>
          template.every((t) => o.attrs.some((a) => a.type === t.type && same(a.value, t.value))),
        )
        .map(([h]) => h);
    },
    C_FindObjects() {
      return found.splice(0).map(handle);
    },
    C_FindObjectsFinal() {},
    C_GetAttributeValue(_s: Buffer, h: Buffer, template: { type: number }[]) {
      const o = objects.get(h.readUInt32LE(0));
      return template.map(({ type }) => {
        const a = o?.attrs.find((x) => x.type === type);
        if (!a) throw pkcs11Error(P.CKR_ATTRIBUTE_TYPE_INVALID);
        return { type, value: a.value };
      });
    },
    C_DestroyObject(_s: Buffer, h: Buffer) {
      enter('C_DestroyObject', [h]);
      objects.delete(h.readUInt32LE(0));
    },
    C_SignInit(_s: Buffer, mech: { mechanism: number }, h: Buffer) {
      enter('C_SignInit', [mech, h]);
    },
    C_Sign(_s: Buffer, data: Buffer) {
      enter('C_Sign', [data]);
      return Buffer.alloc(64, 0x5a);
    },
  };
  const token = {
    lib: lib as unknown as Pkcs11,
    session: handle(900),
    identity: { label: 'source-hsm' },
    noCheckValue: new Set<string>(),
  } as unknown as Token;
  return { token, objects, log, add };
}

describe('the domain key label', () => {
  test('custos-domain- and the 32 hex digits of the domain id, nothing else', () => {
    expect(domainKeyLabel(DOMAIN)).toBe(`custos-domain-${DOMAIN}`);
    expect(isDomainKeyLabel(`custos-domain-${DOMAIN}`)).toBe(true);
    for (const bad of [`custos-domain-${DOMAIN}0`, `custos-domain-${DOMAIN.toUpperCase()}`, 'x'])
      expect(isDomainKeyLabel(bad)).toBe(false);
  });
});

describe('createDomainSigningKey', () => {
  test('a P-256 pair on the token; the private half sensitive, never extractable, only signing', () => {
    const { token, log } = fakeToken();
    createDomainSigningKey(token, DOMAIN);
    const [mech, pub, priv] = log.find((l) => l.fn === 'C_GenerateKeyPair')?.args as [
      { mechanism: number },
      Attr[],
      Attr[],
    ];
    expect(mech.mechanism).toBe(P.CKM_EC_KEY_PAIR_GEN);
    expect(attr(pub, P.CKA_EC_PARAMS)).toEqual(P256);
    expect(attr(pub, P.CKA_TOKEN)).toBe(true);
    expect(attr(pub, P.CKA_VERIFY)).toBe(true);
    for (const [type, value] of [
      [P.CKA_TOKEN, true],
      [P.CKA_PRIVATE, true],
      [P.CKA_SENSITIVE, true],
      [P.CKA_EXTRACTABLE, false],
      [P.CKA_SIGN, true],
      [P.CKA_SIGN_RECOVER, false],
      [P.CKA_DECRYPT, false],
      [P.CKA_UNWRAP, false],
      [P.CKA_DERIVE, false],
    ] as const)
      expect(attr(priv, type), String(type)).toBe(value);
    expect(attr(priv, P.CKA_LABEL)).toBe(`custos-domain-${DOMAIN}`);
    expect((attr(priv, P.CKA_ID) as Buffer).length).toBe(16);
    expect(attr(pub, P.CKA_ID)).toEqual(attr(priv, P.CKA_ID));
  });

  test("the public key reported is node:crypto's SPKI of the pair the token made", () => {
    const { token, objects } = fakeToken();
    const made = createDomainSigningKey(token, DOMAIN);
    const pub = [...objects.values()].find((o) => attr(o.attrs, P.CKA_CLASS) === P.CKO_PUBLIC_KEY);
    expect(made.publicKey).toBe(
      pub?.node?.export({ type: 'spki', format: 'der' }).toString('base64'),
    );
    expect(made.keyId).toBe(
      (pub?.attrs.find((a) => a.type === P.CKA_ID)?.value as Buffer).toString('hex'),
    );
  });

  test('a token that does not keep the pair: E_HSM, said so', () => {
    const { token } = fakeToken({ keep: false });
    const e = catchCustos(() => createDomainSigningKey(token, DOMAIN), 'E_HSM');
    expect(e.message).toBe('token "source-hsm" did not keep the domain signing key it made');
  });

  test('a refusal to make it is E_HSM naming the step', () => {
    const { token } = fakeToken({
      fail: (fn) => (fn === 'C_GenerateKeyPair' ? P.CKR_MECHANISM_INVALID : undefined),
    });
    const e = catchCustos(() => createDomainSigningKey(token, DOMAIN), 'E_MECHANISM');
    expect(e.message).toMatch(/make the domain signing key on token "source-hsm"/);
  });
});

describe('domainSigningKeys', () => {
  test('only P-256 public keys with an id and their private half on the token count', () => {
    const { token, add } = fakeToken();
    const made = createDomainSigningKey(token, DOMAIN);
    const label = { type: P.CKA_LABEL, value: `custos-domain-${DOMAIN}` };
    const pubOf = (id: Buffer, params: Buffer) => [
      { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
      label,
      { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_ID, value: id },
      { type: P.CKA_EC_PARAMS, value: params },
      {
        type: P.CKA_EC_POINT,
        value: Buffer.concat([Buffer.from([4, 65, 4]), Buffer.alloc(64, 1)]),
      },
    ];
    // a public half without its private half; another curve; no id
    add(pubOf(Buffer.from('aa', 'hex'), P256));
    add(pubOf(Buffer.from('bb', 'hex'), Buffer.from('06052b81040022', 'hex')));
    add(pubOf(Buffer.alloc(0), P256));
    expect(domainSigningKeys(token, DOMAIN)).toEqual([made]);
    expect(domainSigningKeys(token, 'f'.repeat(32))).toEqual([]);
  });
});

describe('signWithDomainKey and destroyDomainSigningKey', () => {
  test('signs the SHA-256 of the data with CKM_ECDSA inside the token', () => {
    const { token, log } = fakeToken();
    const key = createDomainSigningKey(token, DOMAIN);
    const data = Buffer.from('bundle bytes');
    expect(signWithDomainKey(token, DOMAIN, key, data)).toEqual(Buffer.alloc(64, 0x5a));
    const init = log.find((l) => l.fn === 'C_SignInit')?.args[0] as { mechanism: number };
    expect(init.mechanism).toBe(P.CKM_ECDSA);
    expect(log.find((l) => l.fn === 'C_Sign')?.args[0]).toEqual(
      createHash('sha256').update(data).digest(),
    );
  });

  test('a key that is gone: E_HSM saying to enrol the token again; a failing sign names the step', () => {
    const { token } = fakeToken({
      fail: (fn) => (fn === 'C_Sign' ? P.CKR_DEVICE_ERROR : undefined),
    });
    const key = createDomainSigningKey(token, DOMAIN);
    const failed = catchCustos(
      () => signWithDomainKey(token, DOMAIN, key, Buffer.from('x')),
      'E_HSM',
    );
    expect(failed.message).toBe(
      'the HSM failed while trying to sign with the domain signing key on token "source-hsm" (CKR_DEVICE_ERROR)',
    );
    destroyDomainSigningKey(token, DOMAIN, key);
    const gone = catchCustos(
      () => signWithDomainKey(token, DOMAIN, key, Buffer.from('x')),
      'E_HSM',
    );
    expect(gone.message).toBe('the domain signing key is gone from token "source-hsm"');
    expect(gone.hint).toBe('enrol the token again: custos domain enroll');
  });

  test('destroy removes both halves of this key only', () => {
    const { token, objects } = fakeToken();
    const a = createDomainSigningKey(token, DOMAIN);
    const b = createDomainSigningKey(token, DOMAIN);
    destroyDomainSigningKey(token, DOMAIN, a);
    expect(objects.size).toBe(2);
    expect(domainSigningKeys(token, DOMAIN)).toEqual([b]);
  });
});
