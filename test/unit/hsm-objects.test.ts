// Reading key objects and checking every key custos creates (src/hsm/objects.ts), on an in-memory
// attribute store that answers C_GetAttributeValue, C_SetAttributeValue and the C_FindObjects
// calls as PKCS#11 modules do: a missing attribute fails the whole call with
// CKR_ATTRIBUTE_TYPE_INVALID, a secret one with CKR_ATTRIBUTE_SENSITIVE.
import { describe, expect, test } from 'vitest';
import { P, type Pkcs11 } from '../../src/hsm/call.js';
import {
  checkCreated,
  describeObject,
  findObjects,
  readValues,
  type Expected,
  type ObjectSession,
} from '../../src/hsm/objects.js';
import { handle, pkcs11Error } from './hsm-fake.js';
import { catchCustos } from './helpers.js';

type Value = number | boolean | string | Buffer;
const encode = (v: Value): Buffer => {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'boolean') return Buffer.from([v ? 1 : 0]);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};

interface StoreOptions {
  /** Attributes the module will not show (CKR_ATTRIBUTE_SENSITIVE). */
  sensitive?: number[];
  /** The same, for one object only (by handle). */
  sensitiveIn?: Record<number, number[]>;
  /** What C_SetAttributeValue does: apply, refuse with a code, or accept and keep the old value. */
  set?: 'apply' | 'ignore' | number;
  /** A return code for a function, thrown instead of answering. */
  fail?: (fn: string, args: unknown[]) => number | undefined;
}

function store(objects: Record<number, Record<number, Value>>, options: StoreOptions = {}) {
  const data = new Map<number, Map<number, Buffer>>();
  for (const [h, attrs] of Object.entries(objects))
    data.set(
      Number(h),
      new Map(Object.entries(attrs).map(([t, v]) => [Number(t), encode(v as Value)])),
    );
  const calls: { fn: string; types?: number[]; args?: unknown[] }[] = [];
  let found: number[] = [];
  const enter = (fn: string, args: unknown[]) => {
    const code = options.fail?.(fn, args);
    if (code !== undefined) throw pkcs11Error(code, fn);
  };
  const lib = {
    C_GetAttributeValue(_s: Buffer, h: Buffer, template: { type: number }[]) {
      calls.push({ fn: 'C_GetAttributeValue', types: template.map((a) => a.type) });
      enter('C_GetAttributeValue', [h, template]);
      const attrs = data.get(h.readUInt32LE(0));
      if (!attrs) throw pkcs11Error(P.CKR_OBJECT_HANDLE_INVALID);
      for (const { type } of template) {
        if (
          options.sensitive?.includes(type) ||
          options.sensitiveIn?.[h.readUInt32LE(0)]?.includes(type)
        )
          throw pkcs11Error(P.CKR_ATTRIBUTE_SENSITIVE);
        if (!attrs.has(type)) throw pkcs11Error(P.CKR_ATTRIBUTE_TYPE_INVALID);
      }
      return template.map(({ type }) => ({ type, value: attrs.get(type) }));
    },
    C_SetAttributeValue(_s: Buffer, h: Buffer, template: { type: number; value: Value }[]) {
      calls.push({ fn: 'C_SetAttributeValue', types: template.map((a) => a.type), args: template });
      enter('C_SetAttributeValue', [h, template]);
      const mode = options.set ?? 'apply';
      if (typeof mode === 'number') throw pkcs11Error(mode, 'C_SetAttributeValue');
      if (mode === 'ignore') return;
      const attrs = data.get(h.readUInt32LE(0)) as Map<number, Buffer>;
      for (const a of template) attrs.set(a.type, encode(a.value));
    },
    C_FindObjectsInit(...args: unknown[]) {
      calls.push({ fn: 'C_FindObjectsInit', args });
      enter('C_FindObjectsInit', args);
      found = [...data.keys()];
    },
    C_FindObjects(_s: Buffer, max: number) {
      calls.push({ fn: 'C_FindObjects' });
      enter('C_FindObjects', [max]);
      return found.splice(0, Math.min(max, 2)).map(handle);
    },
    C_FindObjectsFinal() {
      calls.push({ fn: 'C_FindObjectsFinal' });
    },
  };
  const t: ObjectSession = {
    lib: lib as unknown as Pkcs11,
    session: handle(900),
    identity: { label: 'vault' },
    noCheckValue: new Set<string>(),
  };
  return { t, calls, data };
}

const AES_KEY: Record<number, Value> = {
  [P.CKA_CLASS]: P.CKO_SECRET_KEY,
  [P.CKA_KEY_TYPE]: P.CKK_AES,
  [P.CKA_LABEL]: 'payments',
  [P.CKA_ID]: Buffer.from([0x01]),
  [P.CKA_TOKEN]: true,
  [P.CKA_PRIVATE]: true,
  [P.CKA_ENCRYPT]: true,
  [P.CKA_DECRYPT]: true,
  [P.CKA_SIGN]: false,
  [P.CKA_VERIFY]: false,
  [P.CKA_WRAP]: false,
  [P.CKA_UNWRAP]: false,
  [P.CKA_DERIVE]: false,
  [P.CKA_SENSITIVE]: true,
  [P.CKA_EXTRACTABLE]: true,
  [P.CKA_VALUE_LEN]: 32,
  [P.CKA_CHECK_VALUE]: Buffer.from('abcdef', 'hex'),
};
const PRIVATE_FLAGS = [
  P.CKA_DECRYPT,
  P.CKA_SIGN,
  P.CKA_SIGN_RECOVER,
  P.CKA_UNWRAP,
  P.CKA_DERIVE,
] as const;
function privateKey(more: Record<number, Value> = {}): Record<number, Value> {
  return {
    [P.CKA_CLASS]: P.CKO_PRIVATE_KEY,
    [P.CKA_KEY_TYPE]: P.CKK_RSA,
    [P.CKA_LABEL]: 'signer',
    [P.CKA_ID]: Buffer.from([0x01]),
    [P.CKA_TOKEN]: true,
    [P.CKA_PRIVATE]: true,
    ...Object.fromEntries(PRIVATE_FLAGS.map((f) => [f, f === P.CKA_SIGN])),
    [P.CKA_SENSITIVE]: true,
    [P.CKA_EXTRACTABLE]: false,
    [P.CKA_MODULUS]: Buffer.concat([Buffer.from([0x00, 0xc1]), Buffer.alloc(255, 7)]),
    [P.CKA_PUBLIC_EXPONENT]: Buffer.from([1, 0, 1]),
    [P.CKA_EC_PARAMS]: Buffer.alloc(0),
    ...more,
  };
}

describe('findObjects', () => {
  test('collects every batch, and always ends the search', () => {
    const { t, calls } = store({ 1: AES_KEY, 2: AES_KEY, 3: AES_KEY, 4: AES_KEY, 5: AES_KEY });
    expect(findObjects(t, []).map((h) => h.readUInt32LE(0))).toEqual([1, 2, 3, 4, 5]);
    expect(calls.filter((c) => c.fn === 'C_FindObjects')).toHaveLength(4);
    expect(calls.at(-1)?.fn).toBe('C_FindObjectsFinal');
  });

  test('a failure in the middle is E_HSM, and the search is still ended', () => {
    let n = 0;
    const { t, calls } = store(
      { 1: AES_KEY, 2: AES_KEY, 3: AES_KEY },
      { fail: (fn) => (fn === 'C_FindObjects' && ++n === 2 ? P.CKR_DEVICE_REMOVED : undefined) },
    );
    const e = catchCustos(() => findObjects(t, []), 'E_HSM');
    expect(e.message).toBe(
      'the HSM failed while trying to search token "vault" for objects (CKR_DEVICE_REMOVED)',
    );
    expect(calls.at(-1)?.fn).toBe('C_FindObjectsFinal');
  });
});

describe('readValues', () => {
  test('one call when the module gives every attribute', () => {
    const { t, calls } = store({ 1: AES_KEY });
    const got = readValues(t, handle(1), [P.CKA_LABEL, P.CKA_VALUE_LEN]);
    expect(got[0]?.toString()).toBe('payments');
    expect(calls).toHaveLength(1);
  });

  test('an absent or sensitive attribute: the rest are read one by one, that one left out', () => {
    for (const options of [{}, { sensitive: [P.CKA_CHECK_VALUE] }]) {
      const noCheckValue = { ...AES_KEY };
      if (!('sensitive' in options)) delete noCheckValue[P.CKA_CHECK_VALUE];
      const { t, calls } = store({ 1: noCheckValue }, options);
      const got = readValues(t, handle(1), [P.CKA_LABEL, P.CKA_CHECK_VALUE, P.CKA_VALUE_LEN]);
      expect(got.map((v) => v?.toString('hex'))).toEqual([
        Buffer.from('payments').toString('hex'),
        undefined,
        encode(32).toString('hex'),
      ]);
      expect(calls.map((c) => c.types?.length)).toEqual([3, 1, 1, 1]);
    }
  });

  test('any other failure is an error, in the first call or one by one', () => {
    const first = store(
      { 1: AES_KEY },
      { fail: (fn) => (fn === 'C_GetAttributeValue' ? P.CKR_SESSION_CLOSED : undefined) },
    );
    catchCustos(() => readValues(first.t, handle(1), [P.CKA_LABEL]), 'E_HSM');
    let n = 0;
    const later = store(
      { 1: AES_KEY },
      {
        sensitive: [P.CKA_CHECK_VALUE],
        fail: (fn) => (fn === 'C_GetAttributeValue' && ++n === 3 ? P.CKR_DEVICE_ERROR : undefined),
      },
    );
    const e = catchCustos(
      () => readValues(later.t, handle(1), [P.CKA_LABEL, P.CKA_CHECK_VALUE, P.CKA_VALUE_LEN]),
      'E_HSM',
    );
    expect(e.message).toBe(
      'the HSM failed while trying to read object attributes on token "vault" (CKR_DEVICE_ERROR)',
    );
  });
});

describe('describeObject', () => {
  test("a secret key: type, size, usage, flags and the module's check value, in one call", () => {
    const { t, calls } = store({ 1: AES_KEY });
    const k = describeObject(t, handle(1), 'secret');
    expect(k).toMatchObject({
      class: 'secret',
      objectClass: P.CKO_SECRET_KEY,
      keyType: 'AES',
      label: 'payments',
      labelIsText: true,
      id: '01',
      bits: 256,
      onToken: true,
      private: true,
      sensitive: true,
      extractable: true,
      tokenCheckValue: 'abcdef',
      usage: {
        encrypt: true,
        decrypt: true,
        sign: false,
        verify: false,
        wrap: false,
        unwrap: false,
        derive: false,
      },
    });
    expect(calls).toHaveLength(1);
  });

  test('a module that keeps no check value for a key type is not asked again in the session', () => {
    const aes = { ...AES_KEY };
    delete aes[P.CKA_CHECK_VALUE];
    const des3 = {
      ...aes,
      [P.CKA_KEY_TYPE]: P.CKK_DES3,
      [P.CKA_CHECK_VALUE]: Buffer.from('0a0b0c', 'hex'),
    };
    const { t, calls } = store({ 1: aes, 2: aes, 3: des3 });
    expect(describeObject(t, handle(1), 'secret').tokenCheckValue).toBeUndefined();
    expect([...t.noCheckValue]).toEqual(['AES']);
    const before = calls.length;
    expect(describeObject(t, handle(2), 'secret').tokenCheckValue).toBeUndefined();
    // one call, without CKA_CHECK_VALUE, and no separate try for it
    expect(calls.length - before).toBe(1);
    expect(calls.at(-1)?.types).not.toContain(P.CKA_CHECK_VALUE);
    // another key type is still asked, on its own
    expect(describeObject(t, handle(3), 'secret').tokenCheckValue).toBe('0a0b0c');
    expect(calls.at(-1)?.types).toEqual([P.CKA_CHECK_VALUE]);
  });

  test('one key whose check value is sensitive does not cost the other keys of its type theirs', () => {
    const second = { ...AES_KEY, [P.CKA_LABEL]: 'settlement' };
    const { t } = store({ 1: AES_KEY, 2: second }, { sensitiveIn: { 1: [P.CKA_CHECK_VALUE] } });
    expect(describeObject(t, handle(1), 'secret').tokenCheckValue).toBeUndefined();
    expect([...t.noCheckValue]).toEqual([]);
    expect(describeObject(t, handle(2), 'secret').tokenCheckValue).toBe('abcdef');
  });

  test('RSA: the size from the modulus without its leading zero byte; EC: from the curve', () => {
    const { t } = store({
      1: privateKey(),
      2: privateKey({
        [P.CKA_KEY_TYPE]: P.CKK_EC,
        [P.CKA_MODULUS]: Buffer.alloc(0),
        [P.CKA_PUBLIC_EXPONENT]: Buffer.alloc(0),
        [P.CKA_EC_PARAMS]: Buffer.from('06082a8648ce3d030107', 'hex'),
      }),
    });
    const rsa = describeObject(t, handle(1), 'private');
    expect(rsa.bits).toBe(2048);
    expect(rsa.keyType).toBe('RSA');
    expect(rsa.publicExponent).toBe('010001');
    expect(rsa.tokenCheckValue).toBeUndefined();
    const ec = describeObject(t, handle(2), 'private');
    expect(ec).toMatchObject({ keyType: 'EC', bits: 256, ecParams: '06082a8648ce3d030107' });
    expect(ec.modulus).toBeUndefined();
  });

  test('a label that is not UTF-8 is flagged; a session object is not on the token', () => {
    const { t } = store({
      1: { ...AES_KEY, [P.CKA_LABEL]: Buffer.from([0x6b, 0xff, 0xfe]), [P.CKA_TOKEN]: false },
    });
    const k = describeObject(t, handle(1), 'secret');
    expect(k.labelIsText).toBe(false);
    expect(k.onToken).toBe(false);
  });
});

describe('checkCreated: every key custos creates is read back against what it asked for', () => {
  const want: Expected = {
    class: 'private',
    keyType: 'RSA',
    label: 'signer',
    id: '01',
    usage: { sign: true },
    extractable: false,
    what: '"signer" (id 01)',
  };

  test('as asked: nothing to correct, nothing set', () => {
    const { t, calls } = store({ 1: privateKey() });
    expect(checkCreated(t, handle(1), want).corrected).toEqual([]);
    expect(calls.map((c) => c.fn)).not.toContain('C_SetAttributeValue');
  });

  test('a usage flag the module turned on (NSS: CKA_DERIVE) is set back and read again', () => {
    const { t, calls } = store({ 1: privateKey({ [P.CKA_DERIVE]: true, [P.CKA_DECRYPT]: true }) });
    const out = checkCreated(t, handle(1), want);
    expect(out.corrected).toEqual(['CKA_DECRYPT', 'CKA_DERIVE']);
    expect(out.key.usage.derive).toBe(false);
    const set = calls.find((c) => c.fn === 'C_SetAttributeValue');
    expect(set?.args).toEqual([
      { type: P.CKA_DECRYPT, value: false },
      { type: P.CKA_DERIVE, value: false },
    ]);
  });

  test('a key that is not sensitive, not private, or extractable against the record is put right', () => {
    const { t } = store({
      1: privateKey({
        [P.CKA_SENSITIVE]: false,
        [P.CKA_PRIVATE]: false,
        [P.CKA_EXTRACTABLE]: true,
      }),
    });
    expect(checkCreated(t, handle(1), want).corrected).toEqual([
      'CKA_SENSITIVE',
      'CKA_PRIVATE',
      'CKA_EXTRACTABLE',
    ]);
  });

  test.each([
    ['CKR_ATTRIBUTE_READ_ONLY', P.CKR_ATTRIBUTE_READ_ONLY],
    ['CKR_ATTRIBUTE_VALUE_INVALID', P.CKR_ATTRIBUTE_VALUE_INVALID],
    ['CKR_TEMPLATE_INCONSISTENT', P.CKR_TEMPLATE_INCONSISTENT],
    ['CKR_ACTION_PROHIBITED', 0x1b],
  ])('the module refuses the correction (%s): E_VERIFY naming the attribute', (name, code) => {
    const { t } = store({ 1: privateKey({ [P.CKA_DERIVE]: true }) }, { set: code });
    const e = catchCustos(() => checkCreated(t, handle(1), want), 'E_VERIFY');
    expect(e.message).toBe(
      `token "vault" created "signer" (id 01) with CKA_DERIVE true, against the record, and refused to change it (${name})`,
    );
  });

  test('the module accepts the correction but keeps the value: E_VERIFY', () => {
    const { t } = store(
      { 1: privateKey({ [P.CKA_DERIVE]: true, [P.CKA_SIGN]: false }) },
      { set: 'ignore' },
    );
    const e = catchCustos(() => checkCreated(t, handle(1), want), 'E_VERIFY');
    expect(e.message).toBe(
      'token "vault" created "signer" (id 01) with CKA_SIGN false, CKA_DERIVE true, against the record, and kept them after custos set them',
    );
  });

  test('a device error while correcting is E_HSM, not a verification failure', () => {
    const { t } = store({ 1: privateKey({ [P.CKA_DERIVE]: true }) }, { set: P.CKR_DEVICE_ERROR });
    const e = catchCustos(() => checkCreated(t, handle(1), want), 'E_HSM');
    expect(e.message).toMatch(/correct "signer" \(id 01\) on token "vault" \(CKR_DEVICE_ERROR\)$/);
  });

  test.each([
    ['class', { [P.CKA_CLASS]: P.CKO_SECRET_KEY }, 'CKA_CLASS 0x4, not a private key'],
    ['key type', { [P.CKA_KEY_TYPE]: P.CKK_DSA }, 'CKA_KEY_TYPE DSA, not RSA'],
    ['label', { [P.CKA_LABEL]: 'signer ' }, 'another CKA_LABEL ("signer ")'],
    ['id', { [P.CKA_ID]: Buffer.alloc(0) }, 'another CKA_ID (none, not 01)'],
  ])('another %s is E_VERIFY, and nothing is set', (_what, more, said) => {
    const { t, calls } = store({ 1: privateKey(more) });
    const e = catchCustos(() => checkCreated(t, handle(1), want), 'E_VERIFY');
    expect(e.message).toBe(`token "vault" created "signer" (id 01) with ${said}`);
    expect(calls.map((c) => c.fn)).not.toContain('C_SetAttributeValue');
  });

  test('a public key is not held to sensitive, private or extractable', () => {
    const { t } = store({
      1: {
        [P.CKA_CLASS]: P.CKO_PUBLIC_KEY,
        [P.CKA_KEY_TYPE]: P.CKK_RSA,
        [P.CKA_LABEL]: 'signer',
        [P.CKA_ID]: Buffer.from([1]),
        [P.CKA_TOKEN]: true,
        [P.CKA_PRIVATE]: false,
        [P.CKA_ENCRYPT]: false,
        [P.CKA_VERIFY]: true,
        [P.CKA_VERIFY_RECOVER]: false,
        [P.CKA_WRAP]: false,
        [P.CKA_DERIVE]: false,
        [P.CKA_MODULUS]: Buffer.alloc(256, 1),
        [P.CKA_PUBLIC_EXPONENT]: Buffer.from([3]),
        [P.CKA_EC_PARAMS]: Buffer.alloc(0),
        [P.CKA_EC_POINT]: Buffer.alloc(0),
      },
    });
    const out = checkCreated(t, handle(1), {
      class: 'public',
      keyType: 'RSA',
      label: 'signer',
      id: '01',
      usage: { verify: true },
      what: 'public key "signer"',
    });
    expect(out.corrected).toEqual([]);
  });
});
