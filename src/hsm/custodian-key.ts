/**
 * A custodian's RSA key on their own PKCS#11 token: made or picked at enrolment and held to a
 * decrypt-only policy, and used to open the `ssh-rsa` stanza of their share file. The private-key
 * operation is always the token's. Where the token offers RSA-OAEP with SHA-256, MGF1-SHA-256 and
 * a label (NSS softoken does), the token does all of it; where it does not (SoftHSM 2.6 offers
 * OAEP with SHA-1 only), the token does the raw RSA operation (CKM_RSA_X_509) and the OAEP
 * decoding is finished on the host by node-forge (crypto/ssh-rsa.ts).
 */
import { randomBytes } from 'node:crypto';
import { CustosError } from '../core/errors.js';
import {
  P,
  Pkcs11Failure,
  Refused,
  attempt,
  call,
  ckrName,
  type Handle,
  type Pkcs11,
} from './call.js';
import { findObjects, readValues } from './objects.js';
import { bool, ulong } from './attributes.js';
import { loadModule } from './module.js';
import { Session, findSlot, openSession, type PinReader, type TokenLocation } from './session.js';
import { SSH_RSA_LABEL, decodeOaep, sshRsaFromParts, type SshRsaKey } from '../crypto/ssh-rsa.js';
import { wipe } from '../crypto/wipe.js';

export const CUSTODIAN_KEY_BITS = 3072;

/** How the token opened a stanza: all on the token, or raw RSA there and OAEP on the host. */
export type DecryptWay = 'rsa-oaep-sha256' | 'rsa-x509+host-oaep';

export const DECRYPT_WAY_WORDS: Record<DecryptWay, string> = {
  'rsa-oaep-sha256': 'RSA-OAEP (SHA-256, with the age label) on the token',
  'rsa-x509+host-oaep':
    'raw RSA on the token (CKM_RSA_X_509), OAEP padding checked on this computer',
};

/** Return codes that mean "this token does not do OAEP with these parameters". */
const OAEP_REFUSED: readonly number[] = [
  P.CKR_MECHANISM_INVALID,
  P.CKR_MECHANISM_PARAM_INVALID,
  P.CKR_ARGUMENTS_BAD,
  P.CKR_FUNCTION_NOT_SUPPORTED,
];

interface KeySession {
  lib: Pkcs11;
  session: Handle;
  identity: { label: string };
  noCheckValue: Set<string>;
}

const keySession = (s: Session): KeySession => ({
  lib: s.lib,
  session: s.session,
  identity: s.identity,
  noCheckValue: new Set(),
});

/**
 * Opens the stanza body (the RSA-OAEP ciphertext of the file key) with the private key `handle`:
 * the token's OAEP if it takes the parameters, else raw RSA and node-forge's OAEP decoding.
 */
export function decryptStanza(
  s: Session,
  handle: Handle,
  key: SshRsaKey,
  body: Buffer,
): { fileKey: Buffer | null; way: DecryptWay } {
  const doing = `decrypt with the custodian key on token "${s.identity.label}"`;
  const out = Buffer.alloc(Math.ceil(key.bits / 8) + 16);
  const oaep = attempt(doing, OAEP_REFUSED, () => {
    const parameter: object = {
      type: P.CK_PARAMS_RSA_OAEP,
      hashAlg: P.CKM_SHA256,
      mgf: P.CKG_MGF1_SHA256,
      source: 1, // CKZ_DATA_SPECIFIED
      sourceData: Buffer.from(SSH_RSA_LABEL),
    };
    s.lib.C_DecryptInit(
      s.session,
      { mechanism: P.CKM_RSA_PKCS_OAEP, parameter } as { mechanism: number },
      handle,
    );
    const fileKey = Buffer.from(s.lib.C_Decrypt(s.session, body, out));
    wipe(out);
    return fileKey;
  });
  if (!(oaep instanceof Refused)) return { fileKey: oaep, way: 'rsa-oaep-sha256' };
  const raw = call(`${doing} (raw RSA, CKM_RSA_X_509)`, () => {
    s.lib.C_DecryptInit(s.session, { mechanism: P.CKM_RSA_X_509 }, handle);
    return Buffer.from(s.lib.C_Decrypt(s.session, body, out));
  });
  try {
    return { fileKey: decodeOaep(key, raw), way: 'rsa-x509+host-oaep' };
  } finally {
    wipe(raw);
    wipe(out);
  }
}

/**
 * Opens a logged-in session on the custodian's token. A token that is not there, a wrong PIN and
 * a locked PIN are said in a custodian's words; a wrong PIN with the tries left where the token
 * reports them.
 */
export async function openCustodianToken(
  location: TokenLocation,
  pin: PinReader,
): Promise<Session> {
  try {
    return new Session(await openSession(location, { as: 'user', pin }, false));
  } catch (e) {
    if (!(e instanceof CustosError)) throw e;
    if (e.code === 'E_TOKEN_NOT_FOUND') {
      throw new CustosError(
        'E_TOKEN_NOT_FOUND',
        `token "${location.token}" is not there: insert it (or connect its reader)`,
        'insert your token and run the command again; without it the share cannot be opened',
        e.details,
      );
    }
    if (e.code === 'E_PIN_INCORRECT') throw wrongPin(location, reported(e));
    if (e.code === 'E_PIN_LOCKED') {
      throw new CustosError(
        'E_PIN_LOCKED',
        `the PIN of token "${location.token}" is locked: too many wrong PINs${reported(e)}`,
        "the token's PUK or security officer must unlock it; if it cannot be unlocked, the custodian is lost: see docs/custodian-tokens.md",
      );
    }
    throw e;
  }
}

/**
 * What the token said: the return code of the call that failed, or, where custos did not try to
 * log in because the token's description already said the PIN is locked, that flag.
 */
function reported(e: CustosError): string {
  if (e instanceof Pkcs11Failure && e.ckr !== undefined) return ` (${ckrName(e.ckr)})`;
  return e.code === 'E_PIN_LOCKED' ? ' (CKF_USER_PIN_LOCKED)' : '';
}

/** E_PIN_INCORRECT, with what the token says of the tries left (its CKF_USER_PIN_* flags). */
function wrongPin(location: TokenLocation, reportedCode: string): CustosError {
  let flags = 0;
  try {
    const lib = loadModule(location.module, location.libraryParameters);
    flags = lib.C_GetTokenInfo(findSlot(lib, location)).flags;
  } catch {
    // the token's flags are only extra information here
  }
  const tries =
    flags & P.CKF_USER_PIN_LOCKED
      ? 'the token is now locked'
      : flags & P.CKF_USER_PIN_FINAL_TRY
        ? 'one try is left before the token locks'
        : flags & P.CKF_USER_PIN_COUNT_LOW
          ? 'the token says few tries are left before it locks'
          : 'the token does not say how many tries are left';
  return new CustosError(
    flags & P.CKF_USER_PIN_LOCKED ? 'E_PIN_LOCKED' : 'E_PIN_INCORRECT',
    `wrong PIN for token "${location.token}": ${tries}${reportedCode}`,
    flags & P.CKF_USER_PIN_LOCKED
      ? "the token's PUK or security officer must unlock it; see docs/custodian-tokens.md"
      : 'type the PIN of this token again, with care: each wrong PIN counts towards locking it',
  );
}

/** The private key with this CKA_ID, checked to be the key of `expected`. */
export function findCustodianKey(s: Session, id: Buffer, expected: SshRsaKey): Handle {
  const t = keySession(s);
  const found = findObjects(t, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_ID, value: id },
  ]);
  if (found.length !== 1) {
    throw new CustosError(
      'E_IDENTITY',
      found.length === 0
        ? `token "${s.identity.label}" holds no private key with id ${id.toString('hex')}`
        : `token "${s.identity.label}" holds ${found.length} private keys with id ${id.toString('hex')}`,
      'this is not the token the identity file was enrolled on, or its key was deleted; use the right token, or see docs/custodian-tokens.md',
    );
  }
  const handle = found[0] as Handle;
  const [modulus] = readValues(t, handle, [P.CKA_MODULUS]);
  const n = modulus ? stripZeros(modulus) : undefined;
  if (!n || !n.equals(expected.modulus)) {
    throw new CustosError(
      'E_IDENTITY',
      `the key with id ${id.toString('hex')} on token "${s.identity.label}" is not the key of the identity file's recipient`,
      'this is not the token the identity file was enrolled on; use the right token or identity file',
    );
  }
  return handle;
}

const stripZeros = (b: Buffer): Buffer => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return Buffer.from(b.subarray(i));
};

// ------------------------------------------------------------------------------------ enrolment

export interface CustodianKeyFacts {
  handle: Handle;
  id: Buffer;
  label: string;
  key: SshRsaKey;
  /** What makes the key unfit for a custodian, one attribute each; empty when it is fit. */
  problems: string[];
  /** What is worth knowing but not refused (a key imported from outside the token). */
  notes: string[];
}

/** Private RSA keys on the token with this label. */
export function keysLabelled(s: Session, label: string): Handle[] {
  return findObjects(keySession(s), [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_LABEL, value: label },
  ]);
}

/**
 * Makes an RSA-3072 key pair on the token, every usage flag set: the private key decrypts and does
 * nothing else, never leaves the token and is used only after the PIN.
 */
export function generateCustodianKey(s: Session, label: string): Handle {
  const id = randomBytes(16);
  const pair = call(`make an RSA-${CUSTODIAN_KEY_BITS} key on token "${s.identity.label}"`, () =>
    s.lib.C_GenerateKeyPair(
      s.session,
      { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: false },
        { type: P.CKA_MODULUS_BITS, value: CUSTODIAN_KEY_BITS },
        { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        { type: P.CKA_ENCRYPT, value: true },
        { type: P.CKA_VERIFY, value: false },
        { type: P.CKA_VERIFY_RECOVER, value: false },
        { type: P.CKA_WRAP, value: false },
        { type: P.CKA_ID, value: id },
        { type: P.CKA_LABEL, value: label },
      ],
      [
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_DECRYPT, value: true },
        { type: P.CKA_SIGN, value: false },
        { type: P.CKA_SIGN_RECOVER, value: false },
        { type: P.CKA_UNWRAP, value: false },
        { type: P.CKA_DERIVE, value: false },
        { type: P.CKA_ID, value: id },
        { type: P.CKA_LABEL, value: label },
      ],
    ),
  );
  return pair.privateKey;
}

/**
 * Reads a private key's attributes and says what makes it unfit: it must be an RSA key of 2048 to
 * 8192 bits, never readable (CKA_SENSITIVE true, CKA_EXTRACTABLE false), used only after the PIN
 * (CKA_PRIVATE true), and able to decrypt and nothing else (no signing, no unwrapping of other
 * keys, no derivation). An attribute the token will not show counts as unsafe.
 */
export function inspectCustodianKey(s: Session, handle: Handle): CustodianKeyFacts {
  const t = keySession(s);
  const types = [
    P.CKA_KEY_TYPE,
    P.CKA_ID,
    P.CKA_LABEL,
    P.CKA_MODULUS,
    P.CKA_PUBLIC_EXPONENT,
    P.CKA_TOKEN,
    P.CKA_PRIVATE,
    P.CKA_SENSITIVE,
    P.CKA_EXTRACTABLE,
    P.CKA_DECRYPT,
    P.CKA_SIGN,
    P.CKA_SIGN_RECOVER,
    P.CKA_UNWRAP,
    P.CKA_DERIVE,
    P.CKA_ALWAYS_SENSITIVE,
    P.CKA_NEVER_EXTRACTABLE,
  ];
  const v = readValues(t, handle, types);
  const at = (type: number) => v[types.indexOf(type)];
  const problems: string[] = [];
  const notes: string[] = [];
  const label = at(P.CKA_LABEL)?.toString('utf8') ?? '';
  if (ulong(at(P.CKA_KEY_TYPE)) !== P.CKK_RSA || at(P.CKA_KEY_TYPE) === undefined) {
    throw new CustosError(
      'E_CUSTODIAN_KEY',
      `key "${label}" on token "${s.identity.label}" is not an RSA key`,
      'a custodian key is an RSA key (3072 bits is what custos makes): give a new --label to make one',
    );
  }
  const modulus = at(P.CKA_MODULUS);
  let exponent = at(P.CKA_PUBLIC_EXPONENT);
  const id = at(P.CKA_ID) ?? Buffer.alloc(0);
  const [pub] =
    id.length > 0
      ? findObjects(t, [
          { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
          { type: P.CKA_ID, value: id },
        ])
      : [];
  const [pubExponent, pubWrap] = pub
    ? readValues(t, pub, [P.CKA_PUBLIC_EXPONENT, P.CKA_WRAP])
    : [undefined, undefined];
  exponent ??= pubExponent;
  if (!modulus || !exponent) {
    throw new CustosError(
      'E_CUSTODIAN_KEY',
      `token "${s.identity.label}" does not show the public key of key "${label}"`,
      'custos needs its modulus and public exponent to write the recipient line',
    );
  }
  if (id.length === 0)
    problems.push('it has no CKA_ID, by which the identity file names it: give the key an id');
  const want: [number, boolean, string][] = [
    [P.CKA_TOKEN, true, 'CKA_TOKEN is false: the key is gone when the session ends'],
    [P.CKA_PRIVATE, true, 'CKA_PRIVATE is false: the key can be used without the PIN'],
    [P.CKA_SENSITIVE, true, 'CKA_SENSITIVE is false: the key can be read off the token'],
    [P.CKA_EXTRACTABLE, false, 'CKA_EXTRACTABLE is true: the key can be exported wrapped'],
    [P.CKA_DECRYPT, true, 'CKA_DECRYPT is false: the key cannot open share files'],
    [P.CKA_SIGN, false, 'CKA_SIGN is true: the key can also sign'],
    [P.CKA_SIGN_RECOVER, false, 'CKA_SIGN_RECOVER is true: the key can also sign'],
    [P.CKA_UNWRAP, false, 'CKA_UNWRAP is true: the key can also unwrap other keys'],
    [P.CKA_DERIVE, false, 'CKA_DERIVE is true: the key can also derive keys'],
  ];
  for (const [type, good, why] of want) {
    const value = at(type);
    if (value === undefined) {
      // A token that will not say whether a key can sign or be exported is not trusted with one.
      if (type !== P.CKA_SIGN_RECOVER && type !== P.CKA_DERIVE)
        problems.push(`${why.split(' ')[0]} cannot be read: the token will not say`);
    } else if (bool(value) !== good) problems.push(why);
  }
  // Its public half must not wrap other keys either: what it wraps, this key would decrypt.
  if (bool(pubWrap))
    problems.push('CKA_WRAP of its public key is true: other keys could be wrapped off the token');
  if (at(P.CKA_NEVER_EXTRACTABLE) !== undefined && !bool(at(P.CKA_NEVER_EXTRACTABLE)))
    notes.push(
      'CKA_NEVER_EXTRACTABLE is false: the key was imported or once exportable, so a copy may exist outside the token',
    );
  else if (at(P.CKA_ALWAYS_SENSITIVE) !== undefined && !bool(at(P.CKA_ALWAYS_SENSITIVE)))
    notes.push('CKA_ALWAYS_SENSITIVE is false: the key was once readable, so a copy may exist');
  let key: SshRsaKey;
  try {
    key = sshRsaFromParts(modulus, exponent);
  } catch (e) {
    throw new CustosError(
      'E_CUSTODIAN_KEY',
      `key "${label}" on token "${s.identity.label}" cannot be a custodian key: ${e instanceof CustosError ? e.message.replace(/^.*?: /, '') : 'its public key is malformed'}`,
      'give a new --label to make an RSA-3072 key',
    );
  }
  return { handle, id, label, key, problems, notes };
}
