/** A logged-in session on one token: finding it by label, reading its objects, wrapping and unwrapping. */
import { randomBytes, createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { CustosError } from '../core/errors.js';
import type { TokenIdentity } from '../core/bundle.js';
import type { CheckValue, KeyRecord, PublicKeyRecord, CertificateRecord, Usage } from '../core/keys.js';
import { curveBits } from '../core/der.js';
import { P, hsmError, loadModule, pkcs11Code, type Handle, type Pkcs11 } from './module.js';
import { HMAC_CHECK_MESSAGE, PRIVATE_USAGE_FLAGS, PUBLIC_USAGE_FLAGS, SECRET_USAGE_FLAGS } from '../core/keys.js';
import {
  USAGE_ATTRIBUTE, sessionAesTemplate, bool, certificateTemplate, keyTypeName, publicKeyTemplate,
  ulong, unwrapTemplate, type Attr,
} from './attributes.js';

export interface TokenLocation {
  module: string;
  token: string;
  /** How to name where the token should be, in messages (default: the module path). */
  where?: string;
}

interface ObjectBase {
  handle: Handle;
  label: string;
  /** CKA_ID, hex. */
  id: string;
}

export interface KeyObject extends ObjectBase {
  class: 'secret' | 'private' | 'public';
  keyType: string;
  bits: number;
  usage: Usage;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  /** False when CKA_LABEL is not valid UTF-8 (then `label` is a lossy rendering). */
  labelIsText: boolean;
  /** CKA_TOKEN: false for session objects (custos's own transient keys among them). */
  onToken: boolean;
  /** The module's CKA_CHECK_VALUE, when it keeps one. */
  tokenCheckValue?: string;
  modulus?: string;
  publicExponent?: string;
  ecParams?: string;
  ecPoint?: string;
}

export interface CertificateObject extends ObjectBase {
  value: Buffer;
  subject?: string;
  issuer?: string;
  serialNumber?: string;
}

export interface TokenContents {
  keys: KeyObject[];
  certificates: CertificateObject[];
  /**
   * Key objects with neither label nor id. SoftHSM writes an object to its store before setting
   * its attributes, so a process killed mid-creation leaves such a shell (not even CKA_TOKEN set).
   */
  unnamedKeys: number;
}

export const WRAP_MECHANISM = { name: 'AES-KEY-WRAP-PAD', code: P.CKM_AES_KEY_WRAP_PAD } as const;

export function trimPadded(s: string): string {
  return s.replace(/[\s\0]+$/, '');
}

/** Finds the one slot whose token has this label. */
export function findSlot(lib: Pkcs11, location: TokenLocation): Handle {
  let slots: Handle[];
  try {
    slots = lib.C_GetSlotList(true);
  } catch (e) {
    throw hsmError(e, 'list its slots');
  }
  const labels: string[] = [];
  const matches: Handle[] = [];
  for (const slot of slots) {
    const label = trimPadded(lib.C_GetTokenInfo(slot).label);
    labels.push(label);
    if (label === location.token) matches.push(slot);
  }
  if (matches.length === 0) {
    const known = labels.filter((l) => l !== '');
    throw new CustosError('E_TOKEN_NOT_FOUND', `no token labelled "${location.token}" in ${location.where ?? location.module}`,
      known.length ? `tokens there: ${known.map((l) => `"${l}"`).join(', ')}` : 'initialise one first (custos hsm init LABEL, or softhsm2-util --init-token)');
  }
  if (matches.length > 1) {
    throw new CustosError('E_TOKEN_NOT_FOUND', `${matches.length} tokens are labelled "${location.token}" in ${location.where ?? location.module}`, 'give each token a distinct label');
  }
  return matches[0] as Handle;
}

export class Token {
  private scratch = Buffer.alloc(4096);
  private moduleKeepsCheckValues = true;

  private constructor(
    readonly lib: Pkcs11,
    readonly slot: Handle,
    readonly session: Handle,
    readonly identity: TokenIdentity,
    /** The token's PIN length limits (ulMinPinLen, ulMaxPinLen). */
    readonly pinLimits: { min: number; max: number },
  ) {}

  /**
   * Opens a session and logs in as the user (or, with `as: 'so'`, the security officer). The PIN is
   * asked for only once the token is known to exist, and is told which token it is for.
   */
  static async open(location: TokenLocation, pin: (token: TokenIdentity) => Promise<string>, readWrite: boolean, as: 'user' | 'so' = 'user'): Promise<Token> {
    const lib = loadModule(location.module);
    const slot = findSlot(lib, location);
    const info = lib.C_GetTokenInfo(slot);
    if (as === 'user' && info.flags & P.CKF_USER_PIN_LOCKED) {
      throw new CustosError('E_PIN_LOCKED', `the user PIN of token "${location.token}" is locked`, 'the security officer must unlock it first');
    }
    let session: Handle;
    try {
      session = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | (readWrite ? P.CKF_RW_SESSION : 0));
    } catch (e) {
      throw hsmError(e, `open a session on token "${location.token}"`);
    }
    const identity: TokenIdentity = {
      label: trimPadded(info.label),
      serial: trimPadded(info.serialNumber),
      manufacturer: trimPadded(info.manufacturerID),
      model: trimPadded(info.model),
    };
    const token = new Token(lib, slot, session, identity, { min: info.minPinLen, max: info.maxPinLen });
    let secret: string;
    try {
      secret = await pin(identity);
    } catch (e) {
      token.close();
      throw e;
    }
    try {
      lib.C_Login(session, as === 'so' ? P.CKU_SO : P.CKU_USER, secret);
    } catch (e) {
      if (pkcs11Code(e) !== P.CKR_USER_ALREADY_LOGGED_IN) {
        token.close();
        throw hsmError(e, `log in to token "${location.token}"${as === 'so' ? ' as security officer' : ''}`);
      }
    }
    return token;
  }

  /** Random bytes from the token's own generator. */
  generateRandom(length: number): Buffer {
    try {
      return Buffer.from(this.lib.C_GenerateRandom(this.session, Buffer.alloc(length)));
    } catch (e) {
      throw hsmError(e, 'generate random bytes');
    }
  }

  /** Sets the user PIN; needs a read-write session logged in as security officer. */
  setUserPin(pin: string): void {
    try {
      this.lib.C_InitPIN(this.session, pin);
    } catch (e) {
      throw hsmError(e, `set the user PIN of token "${this.identity.label}"`);
    }
  }

  /** Logs out and back in as the user with `pin`: true if the token accepts it. */
  proveUserPin(pin: string): boolean {
    try {
      this.lib.C_Logout(this.session);
    } catch {
      // not logged in: nothing to undo
    }
    try {
      this.lib.C_Login(this.session, P.CKU_USER, pin);
      this.lib.C_Logout(this.session);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    try {
      this.lib.C_Logout(this.session);
    } catch {
      // already logged out, or the session is gone: closing it is all that is left
    }
    try {
      this.lib.C_CloseSession(this.session);
    } catch {
      // nothing more to release
    }
  }

  private find(template: Attr[]): Handle[] {
    const out: Handle[] = [];
    try {
      this.lib.C_FindObjectsInit(this.session, template);
      for (;;) {
        const batch = this.lib.C_FindObjects(this.session, 1024);
        if (batch.length === 0) break;
        out.push(...batch);
      }
      this.lib.C_FindObjectsFinal(this.session);
    } catch (e) {
      throw hsmError(e, 'search for objects');
    }
    return out;
  }

  /** Reads attributes in one call; if the module rejects one of them, reads the rest one by one. */
  private read(handle: Handle, types: number[]): Map<number, Buffer> {
    const out = new Map<number, Buffer>();
    try {
      for (const a of this.lib.C_GetAttributeValue(this.session, handle, types.map((type) => ({ type })))) {
        out.set(a.type, a.value as Buffer);
      }
      return out;
    } catch (e) {
      const code = pkcs11Code(e);
      if (code !== P.CKR_ATTRIBUTE_TYPE_INVALID && code !== P.CKR_ATTRIBUTE_SENSITIVE) throw hsmError(e, 'read object attributes');
    }
    for (const type of types) {
      try {
        const [a] = this.lib.C_GetAttributeValue(this.session, handle, [{ type }]);
        if (a) out.set(type, a.value as Buffer);
      } catch (e) {
        const code = pkcs11Code(e);
        if (code !== P.CKR_ATTRIBUTE_TYPE_INVALID && code !== P.CKR_ATTRIBUTE_SENSITIVE) throw hsmError(e, 'read object attributes');
      }
    }
    return out;
  }

  /** Reads a key object's attributes into custos's neutral description. */
  describe(handle: Handle, cls: KeyObject['class']): KeyObject {
    const flags = cls === 'secret' ? SECRET_USAGE_FLAGS : cls === 'private' ? PRIVATE_USAGE_FLAGS : PUBLIC_USAGE_FLAGS;
    const types = [P.CKA_KEY_TYPE, P.CKA_LABEL, P.CKA_ID, P.CKA_TOKEN, P.CKA_PRIVATE, ...flags.map((f) => USAGE_ATTRIBUTE[f])];
    if (cls !== 'public') types.push(P.CKA_SENSITIVE, P.CKA_EXTRACTABLE);
    if (cls === 'secret') {
      types.push(P.CKA_VALUE_LEN);
      if (this.moduleKeepsCheckValues) types.push(P.CKA_CHECK_VALUE);
    }
    if (cls !== 'secret') types.push(P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT, P.CKA_EC_PARAMS);
    if (cls === 'public') types.push(P.CKA_EC_POINT);
    const a = this.read(handle, types);
    if (cls === 'secret' && !a.has(P.CKA_CHECK_VALUE)) this.moduleKeepsCheckValues = false;
    const usage: Usage = {};
    for (const f of flags) usage[f] = bool(a.get(USAGE_ATTRIBUTE[f]));
    const hex = (t: number) => {
      const v = a.get(t);
      return v && v.length > 0 ? v.toString('hex') : undefined;
    };
    const modulus = hex(P.CKA_MODULUS);
    const ecParams = hex(P.CKA_EC_PARAMS);
    const bits = cls === 'secret' ? ulong(a.get(P.CKA_VALUE_LEN)) * 8
      : modulus ? modulus.replace(/^(00)+/, '').length * 4
      : ecParams ? curveBits(Buffer.from(ecParams, 'hex')) : 0;
    return {
      handle,
      class: cls,
      keyType: keyTypeName(ulong(a.get(P.CKA_KEY_TYPE))),
      label: a.get(P.CKA_LABEL)?.toString('utf8') ?? '',
      labelIsText: isUtf8(a.get(P.CKA_LABEL) ?? Buffer.alloc(0)),
      onToken: bool(a.get(P.CKA_TOKEN)),
      id: hex(P.CKA_ID) ?? '',
      bits,
      usage,
      private: bool(a.get(P.CKA_PRIVATE)),
      sensitive: bool(a.get(P.CKA_SENSITIVE)),
      extractable: bool(a.get(P.CKA_EXTRACTABLE)),
      tokenCheckValue: hex(P.CKA_CHECK_VALUE),
      modulus,
      publicExponent: hex(P.CKA_PUBLIC_EXPONENT),
      ecParams,
      ecPoint: hex(P.CKA_EC_POINT),
    };
  }

  /**
   * Every key and certificate token object the logged-in user can see (session objects are
   * transient), and the count of unnamed shells. `wantsLabel` leaves out secret and private keys
   * whose label it rejects (public keys and certificates are always read: they pair by id).
   */
  contents(wantsLabel?: (label: string) => boolean): TokenContents {
    const keys: KeyObject[] = [];
    for (const [cls, code] of [['secret', P.CKO_SECRET_KEY], ['private', P.CKO_PRIVATE_KEY], ['public', P.CKO_PUBLIC_KEY]] as const) {
      for (const h of this.find([{ type: P.CKA_CLASS, value: code }])) {
        // With a label filter, secret and private keys outside it cost one attribute read, not a full one.
        if (wantsLabel && cls !== 'public' && !wantsLabel(this.read(h, [P.CKA_LABEL]).get(P.CKA_LABEL)?.toString('utf8') ?? '')) continue;
        keys.push(this.describe(h, cls));
      }
    }
    const unnamedKeys = keys.filter((k) => k.label === '' && k.id === '').length;
    const certificates = this.find([{ type: P.CKA_CLASS, value: P.CKO_CERTIFICATE }, { type: P.CKA_TOKEN, value: true }]).map((handle): CertificateObject => {
      const a = this.read(handle, [P.CKA_LABEL, P.CKA_ID, P.CKA_VALUE, P.CKA_SUBJECT, P.CKA_ISSUER, P.CKA_SERIAL_NUMBER]);
      const hex = (t: number) => a.get(t)?.toString('hex') || undefined;
      return {
        handle,
        label: a.get(P.CKA_LABEL)?.toString('utf8') ?? '',
        id: hex(P.CKA_ID) ?? '',
        value: a.get(P.CKA_VALUE) ?? Buffer.alloc(0),
        subject: hex(P.CKA_SUBJECT),
        issuer: hex(P.CKA_ISSUER),
        serialNumber: hex(P.CKA_SERIAL_NUMBER),
      };
    });
    return { keys: keys.filter((k) => k.onToken), certificates, unnamedKeys };
  }

  /** Refuses with a clear error unless the token can `use` (wrap or unwrap) keys with AES-KWP. */
  requireWrapMechanism(use: 'wrap' | 'unwrap'): void {
    let flags = 0;
    try {
      flags = this.lib.C_GetMechanismInfo(this.slot, WRAP_MECHANISM.code).flags;
    } catch (e) {
      if (pkcs11Code(e) !== P.CKR_MECHANISM_INVALID) throw hsmError(e, 'list its mechanisms');
    }
    const needed = use === 'wrap' ? P.CKF_WRAP : P.CKF_UNWRAP;
    if (!(flags & needed)) {
      throw new CustosError('E_MECHANISM', `token "${this.identity.label}" cannot ${use} keys with ${WRAP_MECHANISM.name} (RFC 5649)`,
        'custos needs AES key wrap with padding (CKM_AES_KEY_WRAP_PAD / KWP); use a token or firmware that offers it');
    }
  }

  /** Imports the backup KEK as a session object: it can wrap and unwrap, and can never leave the token. */
  importKek(kek: Buffer): Handle {
    try {
      return this.lib.C_CreateObject(this.session, [
        ...sessionAesTemplate('custos transient KEK', false, { wrap: true, unwrap: true }),
        { type: P.CKA_MODIFIABLE, value: false },
        { type: P.CKA_COPYABLE, value: false },
        { type: P.CKA_VALUE, value: kek },
      ]);
    } catch (e) {
      throw hsmError(e, 'import the backup key-encryption key as a session object');
    }
  }

  wrap(kek: Handle, key: KeyObject): Buffer {
    let size = key.class === 'secret' ? Math.max(64, key.bits / 8 + 16) : 8192;
    for (;;) {
      if (this.scratch.length < size) this.scratch = Buffer.alloc(size);
      try {
        return Buffer.from(this.lib.C_WrapKey(this.session, { mechanism: WRAP_MECHANISM.code }, kek, key.handle, this.scratch));
      } catch (e) {
        if (pkcs11Code(e) === P.CKR_BUFFER_TOO_SMALL && size < 1 << 20) {
          size = Math.max(size * 4, this.scratch.length * 2);
          continue;
        }
        throw hsmError(e, `wrap key "${key.label}"`);
      }
    }
  }

  /** Wraps if the token allows it, else null (a key marked non-extractable or wrap-with-trusted). */
  tryWrap(kek: Handle, key: KeyObject): Buffer | null {
    try {
      return this.wrap(kek, key);
    } catch (e) {
      if (e instanceof CustosError && (e.code === 'E_HSM' || e.code === 'E_MECHANISM')) return null;
      throw e;
    }
  }

  unwrap(kek: Handle, record: KeyRecord): Handle {
    try {
      return this.lib.C_UnwrapKey(this.session, { mechanism: WRAP_MECHANISM.code }, kek, Buffer.from(record.wrapped, 'base64'), unwrapTemplate(record));
    } catch (e) {
      throw hsmError(e, `unwrap key "${record.label}" into the token`);
    }
  }

  createPublicKey(pub: PublicKeyRecord, id: string): Handle {
    try {
      return this.lib.C_CreateObject(this.session, publicKeyTemplate(pub, id));
    } catch (e) {
      throw hsmError(e, `create public key "${pub.label}"`);
    }
  }

  createCertificate(cert: CertificateRecord, id: string): Handle {
    try {
      return this.lib.C_CreateObject(this.session, certificateTemplate(cert, id));
    } catch (e) {
      throw hsmError(e, `create certificate "${cert.label}"`);
    }
  }

  destroy(handle: Handle): void {
    try {
      this.lib.C_DestroyObject(this.session, handle);
    } catch (e) {
      throw hsmError(e, 'destroy an object');
    }
  }

  /**
   * The check value of a secret key, computed inside the HSM: for AES the KCV (the module's own
   * CKA_CHECK_VALUE when it keeps one, which the standard defines the same way, unless
   * `computeWhenAllowed` asks for an AES-ECB of our own), for other secrets an HMAC when the key
   * may sign, else the module's check value.
   */
  secretCheckValue(key: KeyObject, method?: CheckValue['method'], computeWhenAllowed = false): CheckValue {
    const want = method ?? (key.keyType === 'AES' ? 'aes-ecb-zero' : key.usage.sign ? 'hmac-sha256' : key.tokenCheckValue ? 'token' : 'none');
    switch (want) {
      case 'aes-ecb-zero':
        if (key.usage.encrypt && (computeWhenAllowed || key.tokenCheckValue?.length !== 6)) {
          const block = this.encryptZeroBlock(key);
          if (block) return { method: want, value: block.subarray(0, 3).toString('hex') };
        }
        if (key.tokenCheckValue?.length === 6) return { method: want, value: key.tokenCheckValue };
        return { method: 'none', value: '' };
      case 'hmac-sha256': {
        const mac = key.usage.sign ? this.hmacCheck(key) : null;
        return mac ? { method: want, value: mac.subarray(0, 3).toString('hex') } : { method: 'none', value: '' };
      }
      case 'token':
        return key.tokenCheckValue ? { method: want, value: key.tokenCheckValue } : { method: 'none', value: '' };
      default:
        return { method: 'none', value: '' };
    }
  }

  /** A failed check-value computation means "no check value", never a failed command. */
  private encryptZeroBlock(key: KeyObject): Buffer | null {
    try {
      this.lib.C_EncryptInit(this.session, { mechanism: P.CKM_AES_ECB }, key.handle);
      return Buffer.from(this.lib.C_Encrypt(this.session, Buffer.alloc(16), Buffer.alloc(16)));
    } catch {
      return null;
    }
  }

  private hmacCheck(key: KeyObject): Buffer | null {
    try {
      this.lib.C_SignInit(this.session, { mechanism: P.CKM_SHA256_HMAC }, key.handle);
      return Buffer.from(this.lib.C_Sign(this.session, HMAC_CHECK_MESSAGE, Buffer.alloc(64)));
    } catch {
      return null;
    }
  }

  /**
   * Signs a fresh random challenge with a private key, for proving a restored key against the
   * recorded public key. Returns the challenge, the signature and its encoding, or null when the
   * key may not sign.
   */
  signChallenge(key: { handle: Handle; keyType: string; usage: Usage; label: string }): { data: Buffer; signature: Buffer } | null {
    if (!key.usage.sign) return null;
    const data = randomBytes(32);
    try {
      if (key.keyType === 'RSA') {
        this.lib.C_SignInit(this.session, { mechanism: P.CKM_SHA256_RSA_PKCS }, key.handle);
        return { data, signature: Buffer.from(this.lib.C_Sign(this.session, data, Buffer.alloc(2048))) };
      }
      if (key.keyType === 'EC') {
        this.lib.C_SignInit(this.session, { mechanism: P.CKM_ECDSA }, key.handle);
        const digest = createHash('sha256').update(data).digest();
        return { data, signature: Buffer.from(this.lib.C_Sign(this.session, digest, Buffer.alloc(512))) };
      }
    } catch {
      // a key the token will not sign with proves nothing this way; other proofs still apply
    }
    return null;
  }
}

