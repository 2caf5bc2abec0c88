/**
 * A logged-in session on one token, as the operations use it. The work is done by one module per
 * role — session.ts (finding, opening, PINs), objects.ts (reading, creating, checking objects),
 * wrapping.ts (RFC 5649 wrap and unwrap, proved by a known-answer test) and proofs.ts (check
 * values, test signatures) — and the quirks of particular modules are in quirks.ts.
 */
import type { CustosError } from '../core/errors.js';
import type {
  CertificateRecord,
  CheckValue,
  KeyRecord,
  PublicKeyRecord,
  Usage,
} from '../core/keys.js';
import type { Handle } from './call.js';
import {
  checkCreated,
  createCertificate,
  createPublicKey,
  describeObject,
  destroyObject,
  expectedOfPublic,
  expectedOfRecord,
  forEachKey,
  tokenCertificates,
  tokenContents,
  type CertificateObject,
  type Checked,
  type KeyObject,
  type TokenContents,
} from './objects.js';
import { secretCheckValue, signChallenge } from './proofs.js';
import { Session, openSession, type Login, type PinReader, type TokenLocation } from './session.js';
import {
  RFC_5649,
  importKek,
  rewrapKey,
  rfc5649,
  rfc5649IfAny,
  unwrapKey,
  wrapKey,
  type WrapMechanism,
  type WrapMechanismName,
  type WrapUse,
} from './wrapping.js';

export {
  findSlot,
  lookForToken,
  readStoreAgain,
  trimPadded,
  type TokenLocation,
} from './session.js';
export type { CertificateObject, KeyObject, TokenContents } from './objects.js';
export type { WrapMechanism, WrapMechanismName } from './wrapping.js';

export class Token extends Session {
  readonly noCheckValue = new Set<string>();
  readonly wrapChoice = new Map<WrapUse, WrapMechanism | CustosError>();
  wrapBuffer = Buffer.alloc(4096);

  /**
   * Opens a session and logs in as the user (or, with `as: 'so'`, the security officer). The PIN is
   * asked for only once the token is known to exist, and is told which token it is for.
   */
  static async open(
    location: TokenLocation,
    pin: PinReader,
    readWrite: boolean,
    as: 'user' | 'so' = 'user',
  ): Promise<Token> {
    return new Token(await openSession(location, { as, pin }, readWrite));
  }

  /** A read-write session allowed to replace the user PIN (see Login in session.ts). */
  static async openForPinChange(
    location: TokenLocation,
    so: PinReader,
    user: PinReader,
  ): Promise<Token> {
    return new Token(
      await openSession(location, { as: 'pin-change', so, user } satisfies Login, true),
    );
  }

  // ---------------------------------------------------------------- objects

  contents(wantsLabel?: (label: string) => boolean): TokenContents {
    return tokenContents(this, wantsLabel);
  }

  /** Each key object of a class on the token, one at a time (see objects.ts). */
  forEachKey(
    cls: KeyObject['class'],
    visit: (key: KeyObject) => void,
    wantsLabel?: (label: string) => boolean,
  ): void {
    forEachKey(this, cls, visit, wantsLabel);
  }

  certificates(): CertificateObject[] {
    return tokenCertificates(this);
  }

  describe(handle: Handle, cls: KeyObject['class']): KeyObject {
    return describeObject(this, handle, cls);
  }

  createPublicKey(pub: PublicKeyRecord, id: string): Handle {
    return createPublicKey(this, pub, id);
  }

  createCertificate(cert: CertificateRecord, id: string): Handle {
    return createCertificate(this, cert, id);
  }

  destroy(handle: Handle): void {
    destroyObject(this, handle);
  }

  /**
   * Reads back a key this run unwrapped and checks (and where needed corrects) it against its
   * record.
   */
  checkRestored(handle: Handle, record: KeyRecord): Checked {
    return checkCreated(this, handle, expectedOfRecord(record));
  }

  /** The same for a public key this run created. */
  checkPublic(handle: Handle, pub: PublicKeyRecord, id: string): Checked {
    return checkCreated(this, handle, expectedOfPublic(pub, id));
  }

  // ---------------------------------------------------------------- wrapping

  /** The RFC 5649 mechanism this token proved for `use`, or E_MECHANISM listing what it offers. */
  requireWrapMechanism(use: WrapUse): WrapMechanism {
    return rfc5649(this, use);
  }

  /** What a bundle records of how its keys were wrapped here. */
  wrapRecord(): { mechanism: WrapMechanismName; standard: typeof RFC_5649 } {
    return { mechanism: rfc5649(this, 'wrap').name, standard: RFC_5649 };
  }

  importKek(kek: Buffer): Handle {
    return importKek(this, kek);
  }

  wrap(kek: Handle, key: KeyObject): Buffer {
    return wrapKey(this, rfc5649(this, 'wrap'), kek, key);
  }

  /** Wraps again for the re-wrap proof; null when this token will not (see wrapping.ts). */
  rewrap(kek: Handle, key: KeyObject): Buffer | null {
    return rewrapKey(this, kek, key);
  }

  /** Whether this token can re-wrap at all (an RFC 5649 wrap mechanism). */
  canRewrap(): boolean {
    return rfc5649IfAny(this, 'wrap') !== null;
  }

  unwrap(kek: Handle, record: KeyRecord): Handle {
    return unwrapKey(this, rfc5649(this, 'unwrap'), kek, record);
  }

  // ---------------------------------------------------------------- proofs

  secretCheckValue(
    key: KeyObject,
    method?: CheckValue['method'],
    computeWhenAllowed = false,
  ): CheckValue {
    return secretCheckValue(this, key, method, computeWhenAllowed);
  }

  signChallenge(key: {
    handle: Handle;
    keyType: string;
    usage: Usage;
    label: string;
  }): { data: Buffer; signature: Buffer } | null {
    return signChallenge(this, key);
  }
}
