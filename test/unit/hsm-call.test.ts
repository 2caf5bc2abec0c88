// The one wrapper around PKCS#11 calls (src/hsm/call.ts), without a token: failures are fed in as
// pkcs11js throws them (a Pkcs11Error built from "CKR_NAME:code", or the plain Error some calls
// throw), and what comes out is checked against the table below, written out here by hand from
// docs/configuration.md ("Errors") and docs/errors.md, not read from call.ts.
import { describe, expect, test } from 'vitest';
import { CustosError } from '../../src/core/errors.js';
import {
  ABSENT_ATTRIBUTE,
  KEY_REFUSES,
  NOT_WRAPPABLE,
  P,
  Pkcs11Failure,
  Refused,
  UNKNOWN_ATTRIBUTE,
  UNSUPPORTED,
  attempt,
  call,
  ckrName,
  guard,
  hsmError,
  pkcs11Code,
  type Pkcs11,
} from '../../src/hsm/call.js';

/** Every return code pkcs11js knows, by name (CKR_OK aside: it is no failure). */
const ALL_CKR: [string, number][] = Object.entries(P as unknown as Record<string, unknown>)
  .filter(([n, v]) => n.startsWith('CKR_') && n !== 'CKR_OK' && typeof v === 'number')
  .map(([n, v]) => [n, v as number]);

/** A failure as pkcs11js reports it (index.js prepareError: new Pkcs11Error(stack)). */
function pkcs11Error(name: string, code: number, fn = 'C_WrapKey'): Error {
  return new P.Pkcs11Error(`${name}:${code}`, code, fn);
}
/** As C_CreateObject and a few others throw it: a plain Error whose message is "CKR_NAME:code". */
function plainError(name: string, code: number): Error {
  return new Error(`${name}:${code}`);
}
const thrower = (e: unknown) => () => {
  throw e;
};

// What each return code must become: the custos code, and which hint (by a phrase of it).
const DEVICE = [
  'CKR_GENERAL_ERROR',
  'CKR_FUNCTION_FAILED',
  'CKR_DEVICE_ERROR',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SESSION_CLOSED',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_SLOT_ID_INVALID',
  'CKR_CANCEL',
];
const TEMPLATE = [
  'CKR_ATTRIBUTE_READ_ONLY',
  'CKR_ATTRIBUTE_TYPE_INVALID',
  'CKR_ATTRIBUTE_VALUE_INVALID',
  'CKR_TEMPLATE_INCOMPLETE',
  'CKR_TEMPLATE_INCONSISTENT',
  'CKR_ATTRIBUTE_SENSITIVE',
];
const KEY = [
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_TYPE_INCONSISTENT',
  'CKR_KEY_SIZE_RANGE',
  'CKR_KEY_UNEXTRACTABLE',
  'CKR_KEY_NOT_WRAPPABLE',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_WRAPPING_KEY_TYPE_INCONSISTENT',
  'CKR_WRAPPING_KEY_SIZE_RANGE',
  'CKR_WRAPPING_KEY_HANDLE_INVALID',
  'CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT',
  'CKR_UNWRAPPING_KEY_SIZE_RANGE',
  'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
];
const WRAPPED = [
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
];
const SESSION = [
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_USER_TYPE_INVALID',
  'CKR_SESSION_READ_ONLY',
  'CKR_TOKEN_WRITE_PROTECTED',
  'CKR_SESSION_COUNT',
];
const MEMORY = ['CKR_DEVICE_MEMORY', 'CKR_HOST_MEMORY'];

interface Expected {
  code: 'E_PIN_INCORRECT' | 'E_PIN_LOCKED' | 'E_MECHANISM' | 'E_HSM';
  hint: RegExp;
  message: (doing: string, name: string) => string;
}
const refused = (doing: string, name: string) => `the token refused to ${doing} (${name})`;

function expected(name: string): Expected {
  if (name === 'CKR_PIN_INCORRECT')
    return {
      code: 'E_PIN_INCORRECT',
      hint: /wrong tries lock the token/,
      message: (d, n) => `the PIN was not accepted (${d}, ${n})`,
    };
  if (name === 'CKR_PIN_LOCKED')
    return {
      code: 'E_PIN_LOCKED',
      hint: /security officer must unlock/,
      message: (d, n) => `the token's PIN is locked (${d}, ${n})`,
    };
  if (name === 'CKR_MECHANISM_INVALID' || name === 'CKR_MECHANISM_PARAM_INVALID')
    return {
      code: 'E_MECHANISM',
      hint: /docs\/configuration\.md lists the mechanisms custos needs/,
      message: (d, n) => `the token does not support the mechanism needed to ${d} (${n})`,
    };
  if (name === 'CKR_FUNCTION_NOT_SUPPORTED')
    return {
      code: 'E_MECHANISM',
      hint: /docs\/configuration\.md lists the functions and mechanisms custos needs/,
      message: (d, n) => `the token does not support the function needed to ${d} (${n})`,
    };
  if (MEMORY.includes(name))
    return {
      code: 'E_HSM',
      hint: /free space on the token/,
      message: (d, n) => `the token ran out of memory or space while trying to ${d} (${n})`,
    };
  if (name === 'CKR_USER_PIN_NOT_INITIALIZED')
    return {
      code: 'E_HSM',
      hint: /initialise the user PIN first/,
      message: (d, n) => `the token has no user PIN yet (${d}, ${n})`,
    };
  if (DEVICE.includes(name))
    return {
      code: 'E_HSM',
      hint: /check that the HSM is connected and working/,
      message: (d, n) => `the HSM failed while trying to ${d} (${n})`,
    };
  const hint = TEMPLATE.includes(name)
    ? /does not accept an attribute custos sets/
    : KEY.includes(name)
      ? /key's attributes .* do not allow this/
      : WRAPPED.includes(name)
        ? /wrapped key does not open under this key/
        : SESSION.includes(name)
          ? /session custos opened does not allow this/
          : /docs\/errors\.md lists common causes/;
  return { code: 'E_HSM', hint, message: refused };
}

describe('hsmError: every return code pkcs11js knows becomes the documented custos error', () => {
  test('the table covers the codes it names (no misspelt name silently falls through)', () => {
    const known = new Set(ALL_CKR.map(([n]) => n));
    for (const n of [...DEVICE, ...TEMPLATE, ...KEY, ...WRAPPED, ...SESSION, ...MEMORY])
      expect(known.has(n), n).toBe(true);
    expect(ALL_CKR.length).toBeGreaterThan(80);
  });

  test.each(ALL_CKR)('%s (%i)', (name, code) => {
    const doing = 'wrap key "k1" on token "vault"';
    for (const thrown of [pkcs11Error(name, code), plainError(name, code)]) {
      const e = hsmError(thrown, doing, 'C_WrapKey');
      const want = expected(name);
      expect(e).toBeInstanceOf(Pkcs11Failure);
      expect(e.code).toBe(want.code);
      expect(e.exitStatus).toBe(6);
      expect(e.message).toBe(want.message(doing, name));
      // docs/configuration.md ("Errors"): every failure names the module's return code
      expect(e.message).toMatch(new RegExp(`\\b${name}\\)$`));
      expect(e.hint).toMatch(want.hint);
      expect((e as Pkcs11Failure).ckr).toBe(code);
      expect((e as Pkcs11Failure).fn).toBe('C_WrapKey');
      // never blamed on custos, never "not supported" for a failing device
      expect(`${e.message} ${e.hint}`).not.toMatch(/defect|bug in custos|internal/i);
      if (DEVICE.includes(name)) expect(e.message).not.toMatch(/support/);
    }
  });

  test('codes pkcs11js has no constant for are named from PKCS#11 2.40 / 3.0 and mapped', () => {
    const action = hsmError(plainError('CKR_ACTION_PROHIBITED', 0x1b), 'create key "k"');
    expect(action.message).toBe('the token refused to create key "k" (CKR_ACTION_PROHIBITED)');
    expect(action.hint).toMatch(/does not accept an attribute custos sets/);
    const curve = hsmError(plainError('CKR_CURVE_NOT_SUPPORTED', 0x140), 'unwrap key "k"');
    expect(curve.message).toBe('the token refused to unwrap key "k" (CKR_CURVE_NOT_SUPPORTED)');
    expect(curve.hint).toMatch(/key's attributes/);
  });

  test('vendor-defined and unknown codes are still E_HSM with the code in hex', () => {
    const vendor = hsmError(new P.Pkcs11Error('CKR_VENDOR:2147483665', 0, 'C_X'), 'log in');
    expect(vendor.code).toBe('E_HSM');
    expect(vendor.message).toBe('the token refused to log in (CKR_VENDOR_DEFINED+0x11)');
    expect((vendor as Pkcs11Failure).ckr).toBe(0x80000011);
    const odd = hsmError(plainError('CKR_SOMETHING', 0x3ff), 'log in');
    expect(odd.message).toBe('the token refused to log in (CKR 0x3ff)');
    expect(odd.hint).toMatch(/docs\/errors\.md/);
  });

  test('a failure without a return code is E_HSM naming the step and the module message', () => {
    const e = hsmError(new Error('dlopen: no such file'), 'load the module');
    expect(e.code).toBe('E_HSM');
    expect(e.message).toBe('the PKCS#11 module failed to load the module: dlopen: no such file');
    expect(e.hint).toMatch(/module's own log/);
    expect((e as Pkcs11Failure).ckr).toBeUndefined();
    // a thrown non-Error: no trailing colon
    expect(hsmError('weird', 'load the module').message).toBe(
      'the PKCS#11 module failed to load the module',
    );
    // a message that merely mentions a CKR name later is not a return code
    expect(pkcs11Code(new Error('module said CKR_DEVICE_ERROR:48'))).toBeUndefined();
  });

  test('a custos error passes through as it is; a Pkcs11Failure is re-worded for the new step, keeping code and function', () => {
    const own = new CustosError('E_VERIFY', 'restored key differs');
    expect(hsmError(own, 'anything')).toBe(own);
    const first = hsmError(pkcs11Error('CKR_DEVICE_ERROR', 0x30), 'read attributes', 'C_GetAttr');
    const again = hsmError(first, 'back up token "vault"');
    expect(again).not.toBe(first);
    expect(again.message).toBe(
      'the HSM failed while trying to back up token "vault" (CKR_DEVICE_ERROR)',
    );
    expect((again as Pkcs11Failure).ckr).toBe(0x30);
    expect((again as Pkcs11Failure).fn).toBe('C_GetAttr');
  });
});

describe('ckrName and pkcs11Code', () => {
  test('names every pkcs11js code by its own name', () => {
    for (const [name, code] of ALL_CKR) expect(ckrName(code)).toBe(name);
  });

  test('names the PKCS#11 3.0 codes pkcs11js lacks by the values the standard gives them', () => {
    // pkcs11t.h of PKCS#11 3.0: 0x1b0 is CKR_NEW_PIN_MODE, 0x201 to 0x203 came with 3.0.
    expect(ckrName(0x1b0)).toBe('CKR_NEW_PIN_MODE');
    expect(ckrName(0x201)).toBe('CKR_TOKEN_RESOURCE_EXCEEDED');
    expect(ckrName(0x202)).toBe('CKR_OPERATION_CANCEL_FAILED');
    expect(ckrName(0x203)).toBe('CKR_KEY_EXHAUSTED');
  });

  test('reads the code from each shape pkcs11js throws, and from a Pkcs11Failure', () => {
    expect(pkcs11Code(pkcs11Error('CKR_PIN_INCORRECT', 0xa0))).toBe(0xa0);
    expect(pkcs11Code(plainError('CKR_PIN_INCORRECT', 0xa0))).toBe(0xa0);
    expect(pkcs11Code(new Pkcs11Failure('E_HSM', 'm', undefined, 0x30, 'C_X'))).toBe(0x30);
    expect(pkcs11Code(new TypeError('Parameter 1 MUST be Buffer'))).toBeUndefined();
    expect(pkcs11Code(undefined)).toBeUndefined();
  });
});

describe('the "try another way" lists are exactly the documented ones', () => {
  const names = (codes: readonly number[]) => codes.map(ckrName).sort();

  test('not supported: mechanism invalid, mechanism parameters invalid, function not supported', () => {
    expect(names(UNSUPPORTED)).toEqual([
      'CKR_FUNCTION_NOT_SUPPORTED',
      'CKR_MECHANISM_INVALID',
      'CKR_MECHANISM_PARAM_INVALID',
    ]);
  });

  test('the key refuses, may not leave, or has no such attribute', () => {
    expect(names(KEY_REFUSES)).toEqual([
      'CKR_KEY_FUNCTION_NOT_PERMITTED',
      'CKR_KEY_SIZE_RANGE',
      'CKR_KEY_TYPE_INCONSISTENT',
    ]);
    expect(names(NOT_WRAPPABLE)).toEqual(['CKR_KEY_NOT_WRAPPABLE', 'CKR_KEY_UNEXTRACTABLE']);
    expect(names(ABSENT_ATTRIBUTE)).toEqual([
      'CKR_ATTRIBUTE_SENSITIVE',
      'CKR_ATTRIBUTE_TYPE_INVALID',
    ]);
    expect(names(UNKNOWN_ATTRIBUTE)).toEqual(['CKR_ATTRIBUTE_TYPE_INVALID']);
  });

  test('no device or session failure is in any of them', () => {
    const lists = [UNSUPPORTED, KEY_REFUSES, NOT_WRAPPABLE, ABSENT_ATTRIBUTE, UNKNOWN_ATTRIBUTE];
    for (const list of lists)
      for (const name of [...DEVICE, ...SESSION, ...MEMORY, 'CKR_ARGUMENTS_BAD'])
        expect(list.map(ckrName), name).not.toContain(name);
  });
});

describe('attempt: only the listed codes mean "not this way"', () => {
  const UNSUPPORTED_NAMES = [
    'CKR_MECHANISM_INVALID',
    'CKR_MECHANISM_PARAM_INVALID',
    'CKR_FUNCTION_NOT_SUPPORTED',
  ];

  test.each(ALL_CKR)('%s', (name, code) => {
    for (const thrown of [pkcs11Error(name, code), plainError(name, code)]) {
      const doing = 'compute the check value of key "k"';
      if (UNSUPPORTED_NAMES.includes(name)) {
        const r = attempt(doing, UNSUPPORTED, thrower(thrown));
        expect(r).toBeInstanceOf(Refused);
        expect((r as Refused).code).toBe(code);
        expect((r as Refused).name).toBe(name);
      } else {
        let caught: unknown;
        try {
          attempt(doing, UNSUPPORTED, thrower(thrown));
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(Pkcs11Failure);
        expect((caught as CustosError).code).toBe(expected(name).code);
        expect((caught as CustosError).message).toBe(expected(name).message(doing, name));
      }
    }
  });

  test('a device error is an error even when the list is long', () => {
    const everyRefusal = [...UNSUPPORTED, ...KEY_REFUSES, ...NOT_WRAPPABLE, ...ABSENT_ATTRIBUTE];
    for (const name of DEVICE) {
      const code = (P as unknown as Record<string, number>)[name] as number;
      expect(() => attempt('sign', everyRefusal, thrower(pkcs11Error(name, code)))).toThrow(
        /the HSM failed while trying to sign/,
      );
    }
  });

  test('what is not a PKCS#11 failure is never "not supported"', () => {
    expect(() => attempt('wrap', UNSUPPORTED, thrower(new TypeError('bad handle')))).toThrow(
      'the PKCS#11 module failed to wrap: bad handle',
    );
    const own = new CustosError('E_VERIFY', 'differs');
    expect(() => attempt('wrap', UNSUPPORTED, thrower(own))).toThrow(own);
  });

  test('the words of the step are only made when something failed', () => {
    let made = 0;
    const doing = () => {
      made++;
      return 'read the mechanisms';
    };
    expect(attempt(doing, UNSUPPORTED, () => 42)).toBe(42);
    expect(call(doing, () => 'ok')).toBe('ok');
    expect(made).toBe(0);
    expect(() => call(doing, thrower(pkcs11Error('CKR_DEVICE_ERROR', 0x30)))).toThrow(
      'the HSM failed while trying to read the mechanisms (CKR_DEVICE_ERROR)',
    );
    expect(made).toBe(1);
  });
});

describe('guard: every C_* call of a module fails as a custos error', () => {
  function fakeModule() {
    const calls: string[] = [];
    const lib = {
      note: 'not a function',
      count: 0,
      C_GetSlotList(this: { count: number }) {
        this.count++;
        calls.push('C_GetSlotList');
        return [Buffer.from([1])];
      },
      C_WrapKey() {
        throw pkcs11Error('CKR_KEY_NOT_WRAPPABLE', 0x69);
      },
      C_Login() {
        throw pkcs11Error('CKR_PIN_INCORRECT', 0xa0, 'C_Login');
      },
      C_Finalize() {
        throw new Error('segfault averted');
      },
      vendorExtension() {
        throw pkcs11Error('CKR_DEVICE_ERROR', 0x30);
      },
    };
    return { lib, guarded: guard(lib as unknown as Pkcs11), calls };
  }

  test('results and other properties pass through; `this` is the module', () => {
    const { lib, guarded } = fakeModule();
    expect(guarded.C_GetSlotList(true)).toEqual([Buffer.from([1])]);
    expect(lib.count).toBe(1);
    expect((guarded as unknown as { note: string }).note).toBe('not a function');
    // the same wrapper each time
    expect(guarded.C_GetSlotList).toBe(guarded.C_GetSlotList);
  });

  test('a failing call names the function in plain words and keeps the return code', () => {
    const { guarded } = fakeModule();
    let caught: unknown;
    try {
      const none = Buffer.alloc(0);
      guarded.C_WrapKey(none, { mechanism: 0 }, none, none, Buffer.alloc(64));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Pkcs11Failure);
    const f = caught as Pkcs11Failure;
    expect(f.message).toBe('the token refused to wrap key (C_WrapKey) (CKR_KEY_NOT_WRAPPABLE)');
    expect(f.fn).toBe('C_WrapKey');
    expect(f.ckr).toBe(0x69);
    expect(() => guarded.C_Login(Buffer.alloc(0), 1, 'x')).toThrow(
      'the PIN was not accepted (login (C_Login), CKR_PIN_INCORRECT)',
    );
    expect(() => guarded.C_Finalize()).toThrow(
      'the PKCS#11 module failed to finalize (C_Finalize): segfault averted',
    );
  });

  test('a guarded failure inside attempt is still recognised as "not supported" by its code', () => {
    const lib = {
      C_GetMechanismInfo() {
        throw pkcs11Error('CKR_MECHANISM_INVALID', 0x70, 'C_GetMechanismInfo');
      },
      C_EncryptInit() {
        throw pkcs11Error('CKR_DEVICE_REMOVED', 0x32, 'C_EncryptInit');
      },
    };
    const g = guard(lib as unknown as Pkcs11);
    const r = attempt('read mechanism', UNSUPPORTED, () =>
      g.C_GetMechanismInfo(Buffer.alloc(0), 1),
    );
    expect(r).toBeInstanceOf(Refused);
    expect((r as Refused).name).toBe('CKR_MECHANISM_INVALID');
    let caught: unknown;
    try {
      attempt('compute a check value', UNSUPPORTED, () =>
        g.C_EncryptInit(Buffer.alloc(0), { mechanism: 1 }, Buffer.alloc(0)),
      );
    } catch (e) {
      caught = e;
    }
    expect((caught as Pkcs11Failure).message).toBe(
      'the HSM failed while trying to compute a check value (CKR_DEVICE_REMOVED)',
    );
    expect((caught as Pkcs11Failure).fn).toBe('C_EncryptInit');
  });

  test('a function the module lacks: E_MECHANISM once it stops a step, still "not this way" to attempt', () => {
    const lib = {
      C_SignInit() {
        throw pkcs11Error('CKR_FUNCTION_NOT_SUPPORTED', 0x54, 'C_SignInit');
      },
    };
    const g = guard(lib as unknown as Pkcs11);
    const sign = () => g.C_SignInit(Buffer.alloc(0), { mechanism: 1 }, Buffer.alloc(0));
    const r = attempt('prove key "k" by a signature', UNSUPPORTED, sign);
    expect(r).toBeInstanceOf(Refused);
    expect((r as Refused).name).toBe('CKR_FUNCTION_NOT_SUPPORTED');
    let caught: unknown;
    try {
      call('sign with key "k" on token "vault"', sign);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Pkcs11Failure);
    const f = caught as Pkcs11Failure;
    expect(f.code).toBe('E_MECHANISM');
    expect(f.message).toBe(
      'the token does not support the function needed to sign with key "k" on token "vault" (CKR_FUNCTION_NOT_SUPPORTED)',
    );
    expect(f.hint).not.toMatch(/check that the HSM is connected/);
    expect(f.ckr).toBe(0x54);
    expect(f.fn).toBe('C_SignInit');
  });

  test('only C_* functions are wrapped', () => {
    const { guarded } = fakeModule();
    expect(() => (guarded as unknown as { vendorExtension: () => void }).vendorExtension()).toThrow(
      P.Pkcs11Error,
    );
  });
});
