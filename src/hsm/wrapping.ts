/**
 * AES key wrap with padding, RFC 5649, inside the token: choosing the mechanism that does it,
 * proved by a known-answer test before any key is wrapped or unwrapped; importing a KEK; wrapping,
 * re-wrapping and unwrapping keys.
 *
 * Modules do not agree on what their mechanisms mean. SoftHSM2's CKM_AES_KEY_WRAP_PAD (0x210A) is
 * RFC 5649; NSS softoken's is RFC 3394 over PKCS#7 padding, and its RFC 5649 is
 * CKM_AES_KEY_WRAP_KWP (0x210B). So custos tries KWP, then PAD, and uses the first that wraps a
 * fixed test key under a fixed test KEK (both session objects, values public) to exactly what
 * OpenSSL's id-aes256-wrap-pad gives, or unwraps that blob back to the test key.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { CustosError } from '../core/errors.js';
import type { KeyRecord } from '../core/keys.js';
import {
  KEY_REFUSES,
  NOT_WRAPPABLE,
  P,
  Refused,
  UNKNOWN_ATTRIBUTE,
  UNSUPPORTED,
  attempt,
  call,
  pkcs11Code,
  type Handle,
} from './call.js';
import { sessionAesTemplate, unwrapTemplate, type Attr } from './attributes.js';
import { CKM_AES_KEY_WRAP_KWP, mechanismFlags, wrappingOffer } from './mechanisms.js';
import type { KeyObject, ObjectSession } from './objects.js';
import { nssDbAttribute, withoutCopyable } from './quirks.js';

/** The names a bundle records (`wrap.mechanism`); the format is always RFC 5649. */
export type WrapMechanismName = 'AES-KEY-WRAP-KWP' | 'AES-KEY-WRAP-PAD';

export interface WrapMechanism {
  name: WrapMechanismName;
  code: number;
  ckm: string;
}

export const RFC_5649 = 'RFC 5649';

/** In order of preference: the mechanism the standard defines as RFC 5649 first. */
export const WRAP_CANDIDATES: readonly WrapMechanism[] = [
  { name: 'AES-KEY-WRAP-KWP', code: CKM_AES_KEY_WRAP_KWP, ckm: 'CKM_AES_KEY_WRAP_KWP' },
  { name: 'AES-KEY-WRAP-PAD', code: P.CKM_AES_KEY_WRAP_PAD, ckm: 'CKM_AES_KEY_WRAP_PAD' },
];

// The known answer: fixed, public test values, never a real key.
const KAT_KEK = createHash('sha256')
  .update('custos known-answer test: key-encryption key')
  .digest();
const KAT_KEY = createHash('sha256').update('custos known-answer test: key').digest();
const KAT_BLOB = (() => {
  const c = createCipheriv('id-aes256-wrap-pad', KAT_KEK, Buffer.from('A65959A6', 'hex'));
  return Buffer.concat([c.update(KAT_KEY), c.final()]);
})();
const KAT_KCV = (() => {
  const c = createCipheriv('aes-256-ecb', KAT_KEY, null);
  c.setAutoPadding(false);
  return c.update(Buffer.alloc(16));
})();

export type WrapUse = 'wrap' | 'unwrap';

/** What the wrapping functions need of a token. */
export interface WrapSession extends ObjectSession {
  slot: Handle;
  /** The mechanism proved for each use, or why none could be (cached for the session). */
  wrapChoice: Map<WrapUse, WrapMechanism | CustosError>;
  /** Kept so that wrapping thousands of keys does not allocate a buffer each. */
  wrapBuffer: Buffer;
  identity: { label: string; manufacturer: string; model: string };
}

function destroyQuietly(t: WrapSession, handles: readonly Handle[]): void {
  for (const h of handles) {
    try {
      t.lib.C_DestroyObject(t.session, h);
    } catch {
      // a session object: it goes when the session closes anyway
    }
  }
}

function katObject(
  t: WrapSession,
  label: string,
  value: Buffer,
  extractable: boolean,
  usage: Parameters<typeof sessionAesTemplate>[2],
): Handle {
  return call(
    `create a session test key for the known-answer test on token "${t.identity.label}"`,
    () =>
      t.lib.C_CreateObject(t.session, [
        ...sessionAesTemplate(label, extractable, usage),
        { type: P.CKA_VALUE, value },
      ]),
  );
}

/** The codes with which a token turns down one candidate mechanism in the known-answer test. */
const CANDIDATE_REFUSALS = [
  ...UNSUPPORTED,
  ...KEY_REFUSES,
  ...NOT_WRAPPABLE,
  P.CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
  P.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
  P.CKR_WRAPPED_KEY_INVALID,
  P.CKR_WRAPPED_KEY_LEN_RANGE,
  P.CKR_ENCRYPTED_DATA_INVALID,
  P.CKR_ENCRYPTED_DATA_LEN_RANGE,
  P.CKR_ARGUMENTS_BAD,
];

/** Runs the known-answer test of one candidate for one use: null if it passes, else why not. */
export function knownAnswer(t: WrapSession, m: WrapMechanism, use: WrapUse): string | null {
  const flags = mechanismFlags(t, m.code);
  if (flags === null) return 'not offered';
  if (!(flags & (use === 'wrap' ? P.CKF_WRAP : P.CKF_UNWRAP)))
    return `offered without the ${use} flag`;
  const made: Handle[] = [];
  const doing = `run the known-answer test of ${m.ckm} on token "${t.identity.label}"`;
  try {
    const kek = katObject(t, 'custos known-answer KEK', KAT_KEK, false, {
      wrap: true,
      unwrap: true,
    });
    made.push(kek);
    if (use === 'wrap') {
      const key = katObject(t, 'custos known-answer key', KAT_KEY, true, { encrypt: true });
      made.push(key);
      const out = attempt(doing, CANDIDATE_REFUSALS, () =>
        Buffer.from(
          t.lib.C_WrapKey(
            t.session,
            { mechanism: m.code },
            kek,
            key,
            Buffer.alloc(KAT_BLOB.length + 64),
          ),
        ),
      );
      if (out instanceof Refused) return `refused to wrap the test key (${out.name})`;
      return out.equals(KAT_BLOB)
        ? null
        : `wraps, but not as RFC 5649 (its ${out.length}-byte result differs from OpenSSL's id-aes256-wrap-pad)`;
    }
    const key = attempt(doing, CANDIDATE_REFUSALS, () =>
      t.lib.C_UnwrapKey(
        t.session,
        { mechanism: m.code },
        kek,
        KAT_BLOB,
        sessionAesTemplate('custos known-answer key', false, { encrypt: true }),
      ),
    );
    if (key instanceof Refused) return `refused to unwrap an RFC 5649 test blob (${key.name})`;
    made.push(key);
    // The unwrap passed RFC 5649's integrity check; where AES-ECB is allowed, the key is compared
    // too.
    const block = attempt(doing, [...UNSUPPORTED, ...KEY_REFUSES], () => {
      t.lib.C_EncryptInit(t.session, { mechanism: P.CKM_AES_ECB }, key);
      return Buffer.from(t.lib.C_Encrypt(t.session, Buffer.alloc(16), Buffer.alloc(16)));
    });
    if (block instanceof Refused || block.equals(KAT_KCV)) return null;
    return 'unwraps an RFC 5649 test blob to another key';
  } finally {
    destroyQuietly(t, made);
  }
}

/**
 * The mechanism that does RFC 5649 for `use` on this token, proved by its known-answer test; or
 * E_MECHANISM naming each candidate's result and what the token offers instead.
 */
export function rfc5649(t: WrapSession, use: WrapUse): WrapMechanism {
  const chosen = rfc5649Choice(t, use);
  if (chosen instanceof CustosError) throw chosen;
  return chosen;
}

/** As rfc5649, but null when the token has none (for the optional re-wrap proof). */
export function rfc5649IfAny(t: WrapSession, use: WrapUse): WrapMechanism | null {
  const chosen = rfc5649Choice(t, use);
  return chosen instanceof CustosError ? null : chosen;
}

function rfc5649Choice(t: WrapSession, use: WrapUse): WrapMechanism | CustosError {
  const cached = t.wrapChoice.get(use);
  if (cached) return cached;
  const results: string[] = [];
  let chosen: WrapMechanism | CustosError | undefined;
  for (const m of WRAP_CANDIDATES) {
    const why = knownAnswer(t, m, use);
    if (why === null) {
      chosen = m;
      break;
    }
    results.push(`${m.ckm} (0x${m.code.toString(16)}): ${why}`);
  }
  chosen ??= new CustosError(
    'E_MECHANISM',
    `token "${t.identity.label}" cannot ${use} keys as RFC 5649 (AES key wrap with padding)`,
    'custos needs CKM_AES_KEY_WRAP_KWP, or a CKM_AES_KEY_WRAP_PAD that is RFC 5649; use a token or firmware that offers it (README.md lists the modules custos was tested with)',
    [...results, wrappingOffer(t)],
  );
  t.wrapChoice.set(use, chosen);
  return chosen;
}

/**
 * Imports the backup KEK as a session object: it can wrap and unwrap, and can never leave the
 * token.
 */
export function importKek(t: WrapSession, kek: Buffer): Handle {
  const doing = `import the backup key-encryption key as a session object on token "${t.identity.label}"`;
  const template: Attr[] = [
    ...sessionAesTemplate('custos transient KEK', false, { wrap: true, unwrap: true }),
    { type: P.CKA_MODIFIABLE, value: false },
    { type: P.CKA_COPYABLE, value: false },
    { type: P.CKA_VALUE, value: kek },
  ];
  const made = attempt(doing, UNKNOWN_ATTRIBUTE, () => t.lib.C_CreateObject(t.session, template));
  // Quirk `copyable-unknown` (quirks.ts): a 2.20 module does not know CKA_COPYABLE.
  return made instanceof Refused
    ? call(doing, () => t.lib.C_CreateObject(t.session, withoutCopyable(template)))
    : made;
}

/** Wraps a key inside the token under `kek` with `m`. */
export function wrapKey(t: WrapSession, m: WrapMechanism, kek: Handle, key: KeyObject): Buffer {
  let size = key.class === 'secret' ? Math.max(64, key.bits / 8 + 16) : 8192;
  for (;;) {
    if (t.wrapBuffer.length < size) t.wrapBuffer = Buffer.alloc(size);
    try {
      return Buffer.from(
        t.lib.C_WrapKey(t.session, { mechanism: m.code }, kek, key.handle, t.wrapBuffer),
      );
    } catch (e) {
      if (pkcs11Code(e) === P.CKR_BUFFER_TOO_SMALL && size < 1 << 20) {
        size = Math.max(size * 4, t.wrapBuffer.length * 2);
        continue;
      }
      throw call(`wrap key "${key.label}" on token "${t.identity.label}"`, () => {
        throw e;
      });
    }
  }
}

/**
 * Re-wraps a key for the re-wrap proof: null when the token will not wrap this key or has no
 * RFC 5649 wrap (the proof is then not available); any other failure is an error.
 */
export function rewrapKey(t: WrapSession, kek: Handle, key: KeyObject): Buffer | null {
  const m = rfc5649IfAny(t, 'wrap');
  if (!m) return null;
  const out = attempt(
    `wrap key "${key.label}" again on token "${t.identity.label}"`,
    [...NOT_WRAPPABLE, ...UNSUPPORTED],
    () => wrapKey(t, m, kek, key),
  );
  return out instanceof Refused ? null : out;
}

/**
 * Unwraps a recorded key into a token object with the recorded attributes (always sensitive and
 * private).
 */
export function unwrapKey(
  t: WrapSession,
  m: WrapMechanism,
  kek: Handle,
  record: KeyRecord,
): Handle {
  const extra = nssDbAttribute(t.identity, {
    class: record.class,
    keyType: record.keyType,
    ecPoint: record.publicKey?.ecPoint,
  });
  if (typeof extra === 'string') {
    throw new CustosError(
      'E_HSM',
      `token "${t.identity.label}" cannot take key "${record.label}": ${extra}`,
      'restore this key into another kind of token, or back it up with its public key',
    );
  }
  return call(`unwrap key "${record.label}" into token "${t.identity.label}"`, () =>
    t.lib.C_UnwrapKey(
      t.session,
      { mechanism: m.code },
      kek,
      Buffer.from(record.wrapped, 'base64'),
      [...unwrapTemplate(record), ...extra],
    ),
  );
}
