/**
 * The one wrapper around PKCS#11 calls. Every C_* function of a loaded module is reached through
 * `guard`, so any failure of any call becomes a custos error that names what custos was doing and
 * the module's return code (CKR_…) — never "a defect in custos". `call` gives a failure the words
 * of the step it interrupted; `attempt` is the only way to treat a failure as "not supported, try
 * another way", and only for the return codes it is given, from the lists below. Anything else —
 * a device error above all — is an error, never a quietly recorded "none".
 */
import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { CustosError, type ErrorCode } from '../core/errors.js';

const require = createRequire(import.meta.url);
export const P: typeof Pkcs11Types = require('pkcs11js');
export type Pkcs11 = Pkcs11Types.PKCS11;
export type Handle = Buffer;

/** Return codes pkcs11js has no constant for (PKCS#11 2.40 / 3.0). */
const EXTRA_CKR: Record<number, string> = {
  0x1b: 'CKR_ACTION_PROHIBITED',
  0x140: 'CKR_CURVE_NOT_SUPPORTED',
  0x201: 'CKR_TOKEN_RESOURCE_EXCEEDED',
  0x202: 'CKR_OPERATION_CANCEL_FAILED',
  0x203: 'CKR_KEY_EXHAUSTED',
};
const CKR_VENDOR_DEFINED = 0x80000000;

export function ckrName(code: number): string {
  for (const [name, value] of Object.entries(P)) {
    if (name.startsWith('CKR_') && value === code) return name;
  }
  if (EXTRA_CKR[code]) return EXTRA_CKR[code] as string;
  if (code >= CKR_VENDOR_DEFINED)
    return `CKR_VENDOR_DEFINED+0x${(code - CKR_VENDOR_DEFINED).toString(16)}`;
  return `CKR 0x${code.toString(16)}`;
}

/** The CKR code of a pkcs11js failure, whichever way pkcs11js reported it. */
export function pkcs11Code(e: unknown): number | undefined {
  if (e instanceof Pkcs11Failure) return e.ckr;
  if (e instanceof P.Pkcs11Error) return e.code;
  // Some pkcs11js calls (C_CreateObject among them) throw a plain Error("CKR_NAME:code").
  const m = e instanceof Error ? /^CKR_[A-Z_]+:(\d+)/.exec(e.message) : null;
  return m ? Number(m[1]) : undefined;
}

/** A failed PKCS#11 call: a custos error that keeps the module's return code. */
export class Pkcs11Failure extends CustosError {
  constructor(
    code: ErrorCode,
    message: string,
    hint: string | undefined,
    readonly ckr: number | undefined,
    readonly fn: string,
  ) {
    super(code, message, hint);
  }
}

// ------------------------------------------------------------------ what each return code means

/** The token does not do this (mechanism, function or parameters): another way may work. */
export const UNSUPPORTED: readonly number[] = [
  P.CKR_MECHANISM_INVALID,
  P.CKR_MECHANISM_PARAM_INVALID,
  P.CKR_FUNCTION_NOT_SUPPORTED,
];
/** This key may not be used so, or is of a type or size the mechanism does not take. */
export const KEY_REFUSES: readonly number[] = [
  P.CKR_KEY_FUNCTION_NOT_PERMITTED,
  P.CKR_KEY_TYPE_INCONSISTENT,
  P.CKR_KEY_SIZE_RANGE,
];
/**
 * This key may not leave the token, even wrapped (CKA_EXTRACTABLE false, or CKA_WRAP_WITH_TRUSTED).
 */
export const NOT_WRAPPABLE: readonly number[] = [P.CKR_KEY_UNEXTRACTABLE, P.CKR_KEY_NOT_WRAPPABLE];
/** The object has no such attribute, or will not show it. */
export const ABSENT_ATTRIBUTE: readonly number[] = [
  P.CKR_ATTRIBUTE_TYPE_INVALID,
  P.CKR_ATTRIBUTE_SENSITIVE,
];
/** The module does not know this attribute type (older modules and CKA_COPYABLE, for one). */
export const UNKNOWN_ATTRIBUTE: readonly number[] = [P.CKR_ATTRIBUTE_TYPE_INVALID];

const DEVICE = new Set([
  P.CKR_GENERAL_ERROR,
  P.CKR_FUNCTION_FAILED,
  P.CKR_DEVICE_ERROR,
  P.CKR_DEVICE_REMOVED,
  P.CKR_TOKEN_NOT_PRESENT,
  P.CKR_TOKEN_NOT_RECOGNIZED,
  P.CKR_SESSION_CLOSED,
  P.CKR_SESSION_HANDLE_INVALID,
  P.CKR_CRYPTOKI_NOT_INITIALIZED,
  P.CKR_SLOT_ID_INVALID,
  P.CKR_CANCEL,
]);
const TEMPLATE = new Set([
  P.CKR_ATTRIBUTE_READ_ONLY,
  P.CKR_ATTRIBUTE_TYPE_INVALID,
  P.CKR_ATTRIBUTE_VALUE_INVALID,
  P.CKR_TEMPLATE_INCOMPLETE,
  P.CKR_TEMPLATE_INCONSISTENT,
  P.CKR_ATTRIBUTE_SENSITIVE,
  0x1b,
]);
const KEY = new Set([
  P.CKR_KEY_FUNCTION_NOT_PERMITTED,
  P.CKR_KEY_TYPE_INCONSISTENT,
  P.CKR_KEY_SIZE_RANGE,
  P.CKR_KEY_UNEXTRACTABLE,
  P.CKR_KEY_NOT_WRAPPABLE,
  P.CKR_KEY_HANDLE_INVALID,
  P.CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
  P.CKR_WRAPPING_KEY_SIZE_RANGE,
  P.CKR_WRAPPING_KEY_HANDLE_INVALID,
  P.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
  P.CKR_UNWRAPPING_KEY_SIZE_RANGE,
  P.CKR_UNWRAPPING_KEY_HANDLE_INVALID,
  0x140,
]);
const WRAPPED = new Set([
  P.CKR_WRAPPED_KEY_INVALID,
  P.CKR_WRAPPED_KEY_LEN_RANGE,
  P.CKR_ENCRYPTED_DATA_INVALID,
  P.CKR_ENCRYPTED_DATA_LEN_RANGE,
]);
const SESSION = new Set([
  P.CKR_USER_NOT_LOGGED_IN,
  P.CKR_USER_TYPE_INVALID,
  P.CKR_SESSION_READ_ONLY,
  P.CKR_TOKEN_WRITE_PROTECTED,
  P.CKR_SESSION_COUNT,
]);

/**
 * What custos was doing when a bare C_* call failed outside `call` (the words a step gives are
 * better).
 */
function defaultDoing(fn: string): string {
  const words = fn
    .replace(/^C_/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();
  return `${words} (${fn})`;
}

/** What to do about each kind of refusal, in the order they are looked for. */
const REFUSALS: readonly [ReadonlySet<number>, string][] = [
  [
    TEMPLATE,
    'the token does not accept an attribute custos sets for this object; docs/configuration.md lists what custos sets and what the module must allow',
  ],
  [
    KEY,
    "the key's attributes (type, size, usage flags, CKA_EXTRACTABLE) do not allow this; check them with custos inventory",
  ],
  [
    WRAPPED,
    'the wrapped key does not open under this key in this token: the blob, the key or the wrap format differ from what made it',
  ],
  [
    SESSION,
    'the session custos opened does not allow this (logged out, read-only or write-protected token); check the token, then run the command again',
  ],
];

/** Maps a failure during `doing` (e.g. "log in to token x") to a typed custos error. */
export function hsmError(e: unknown, doing: string, fn = ''): CustosError {
  if (e instanceof CustosError && !(e instanceof Pkcs11Failure)) return e;
  const code = pkcs11Code(e);
  const via = e instanceof Pkcs11Failure ? e.fn : fn;
  const make = (c: ErrorCode, message: string, hint: string) =>
    new Pkcs11Failure(c, message, hint, code, via);
  if (code === undefined) {
    const why = e instanceof Error && e.message ? `: ${e.message}` : '';
    return make(
      'E_HSM',
      `the PKCS#11 module failed to ${doing}${why}`,
      "see the module's own log for the cause, then run the command again",
    );
  }
  const name = ckrName(code);
  switch (code) {
    case P.CKR_PIN_INCORRECT:
      return make(
        'E_PIN_INCORRECT',
        `the PIN was not accepted (${doing}, ${name})`,
        'check the PIN source; a few more wrong tries lock the token',
      );
    case P.CKR_PIN_LOCKED:
      return make(
        'E_PIN_LOCKED',
        `the token's PIN is locked (${doing}, ${name})`,
        'the security officer must unlock it before custos can use the token',
      );
    case P.CKR_MECHANISM_INVALID:
    case P.CKR_MECHANISM_PARAM_INVALID:
      return make(
        'E_MECHANISM',
        `the token does not support the mechanism needed to ${doing} (${name})`,
        'docs/configuration.md lists the mechanisms custos needs, and README.md the modules it was tested with',
      );
    case P.CKR_FUNCTION_NOT_SUPPORTED:
      // The module lacks the function itself, not the device failing: no retry on this token helps.
      return make(
        'E_MECHANISM',
        `the token does not support the function needed to ${doing} (${name})`,
        'docs/configuration.md lists the functions and mechanisms custos needs, and README.md the modules it was tested with',
      );
    case P.CKR_DEVICE_MEMORY:
    case P.CKR_HOST_MEMORY:
      return make(
        'E_HSM',
        `the token ran out of memory or space while trying to ${doing} (${name})`,
        'free space on the token, then run the command again',
      );
    case P.CKR_USER_PIN_NOT_INITIALIZED:
      return make(
        'E_HSM',
        `the token has no user PIN yet (${doing}, ${name})`,
        'initialise the user PIN first (the security officer sets it)',
      );
    default:
      break;
  }
  if (DEVICE.has(code)) {
    return make(
      'E_HSM',
      `the HSM failed while trying to ${doing} (${name})`,
      'check that the HSM is connected and working (its log may say more), then run the command again',
    );
  }
  const refusal = REFUSALS.find(([codes]) => codes.has(code));
  if (refusal) return make('E_HSM', `the token refused to ${doing} (${name})`, refusal[1]);
  return make(
    'E_HSM',
    `the token refused to ${doing} (${name})`,
    "docs/errors.md lists common causes; the module's own log may say more",
  );
}

/** The module with every C_* function wrapped so that any failure is a Pkcs11Failure. */
export function guard(lib: Pkcs11): Pkcs11 {
  const wrapped = new Map<string, unknown>();
  return new Proxy(lib, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof prop !== 'string' || !prop.startsWith('C_') || typeof value !== 'function')
        return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        fn = (...args: unknown[]) => {
          try {
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          } catch (e) {
            throw hsmError(e, defaultDoing(prop), prop);
          }
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}

/** Runs PKCS#11 calls for one step; a failure is reported as failing to `doing`. */
export function call<T>(doing: string | (() => string), fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw hsmError(e, typeof doing === 'string' ? doing : doing());
  }
}

/** A call refused with a return code that means "not supported here". */
export class Refused {
  constructor(readonly code: number) {}

  get name(): string {
    return ckrName(this.code);
  }
}

/**
 * Runs PKCS#11 calls that may be refused for a reason that means "not this way": a return code in
 * `notSupported` comes back as a Refused; any other failure is thrown as a custos error.
 */
export function attempt<T>(
  doing: string | (() => string),
  notSupported: readonly number[],
  fn: () => T,
): T | Refused {
  try {
    return fn();
  } catch (e) {
    const code = pkcs11Code(e);
    if (code !== undefined && notSupported.includes(code)) return new Refused(code);
    throw hsmError(e, typeof doing === 'string' ? doing : doing());
  }
}
