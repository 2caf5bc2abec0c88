/** Finding a token by label, opening a session on it, logging in, and the token's PIN. */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { CustosError } from '../core/errors.js';
import type { TokenIdentity } from '../core/bundle.js';
import { pause } from '../core/pause.js';
import { P, Pkcs11Failure, call, pkcs11Code, type Handle, type Pkcs11 } from './call.js';
import { loadModule, reinitialise } from './module.js';
import { pinLimits, readsStoreAtInitialise, sameTokenIdentity, userSetsOwnPin } from './quirks.js';

export interface TokenLocation {
  module: string;
  token: string;
  /** How to name where the token should be, in messages (default: the module path). */
  where?: string;
  /** Given to C_Initialize (NSS softoken needs them); see module.ts. */
  libraryParameters?: string;
}

export function trimPadded(s: string): string {
  return s.replace(/[\s\0]+$/, '');
}

/**
 * The SoftHSM2 configuration file a SoftHSM2 module in this process reads: SOFTHSM2_CONF, else the
 * user's, else the system's.
 */
function softhsmConfig(): { path: string; why: string } {
  if (process.env.SOFTHSM2_CONF)
    return { path: process.env.SOFTHSM2_CONF, why: 'from SOFTHSM2_CONF' };
  const user = join(homedir(), '.config', 'softhsm2', 'softhsm2.conf');
  if (existsSync(user)) return { path: user, why: 'SOFTHSM2_CONF is not set' };
  return { path: '/etc/softhsm/softhsm2.conf', why: 'SOFTHSM2_CONF is not set' };
}

/**
 * No token has the label: say what the module does see and, for a SoftHSM2 module named in a
 * profile, which configuration (so which store of tokens) it read and how to point it at another.
 */
function tokenNotFound(location: TokenLocation, seen: readonly string[]): CustosError {
  const where = location.where ?? location.module;
  const sees = seen.length
    ? `the module sees: ${seen.join(', ')}`
    : 'the module sees no token that has been initialised';
  if (location.where) {
    // The embedded store: custos wrote its configuration itself.
    return new CustosError(
      'E_TOKEN_NOT_FOUND',
      `no token labelled "${location.token}" in ${where}`,
      seen.length
        ? `use one of the tokens there, or create this one: custos hsm init ${location.token}`
        : `create it: custos hsm init ${location.token}`,
      [sees],
    );
  }
  if (/softhsm/i.test(basename(location.module))) {
    const conf = softhsmConfig();
    const dir = tokenDirOf(conf.path);
    return new CustosError(
      'E_TOKEN_NOT_FOUND',
      `no token labelled "${location.token}" in ${where}`,
      `check token: in custos.yaml against the labels above; if the token is in another SoftHSM2 store, point at that store's file: export SOFTHSM2_CONF=/path/to/softhsm2.conf`,
      [
        sees,
        `SoftHSM2 read ${conf.path} (${conf.why})${dir ? `, whose tokens are in ${dir}` : ''}`,
      ],
    );
  }
  if (location.libraryParameters !== undefined) {
    return new CustosError(
      'E_TOKEN_NOT_FOUND',
      `no token labelled "${location.token}" in ${where}`,
      "check token: in custos.yaml against the labels above, and the profile's library-parameters (for NSS, each tokenDescription is a token's label)",
      [sees],
    );
  }
  return new CustosError(
    'E_TOKEN_NOT_FOUND',
    `no token labelled "${location.token}" in ${where}`,
    'check token: in custos.yaml against the labels above, and that the HSM is connected and its token initialised',
    [sees],
  );
}

/** The `directories.tokendir` of a SoftHSM2 configuration file, when it can be read. */
function tokenDirOf(conf: string): string | undefined {
  try {
    return /^\s*directories\.tokendir\s*=\s*(.+?)\s*$/m.exec(readFileSync(conf, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** The slots whose token has the label, and every labelled token the module sees (messages). */
function slotsLabelled(lib: Pkcs11, label: string): { matches: Handle[]; seen: string[] } {
  const seen: string[] = [];
  const matches: Handle[] = [];
  for (const slot of lib.C_GetSlotList(true)) {
    const info = lib.C_GetTokenInfo(slot);
    const tokenLabel = trimPadded(info.label);
    if (tokenLabel !== '') seen.push(`"${tokenLabel}" (serial ${trimPadded(info.serialNumber)})`);
    if (tokenLabel === label) matches.push(slot);
  }
  return { matches, seen };
}

function onlyMatch(location: TokenLocation, found: { matches: Handle[]; seen: string[] }): Handle {
  if (found.matches.length === 0) throw tokenNotFound(location, found.seen);
  if (found.matches.length > 1) {
    throw new CustosError(
      'E_TOKEN_NOT_FOUND',
      `${found.matches.length} tokens are labelled "${location.token}" in ${location.where ?? location.module}`,
      'give each token a distinct label',
    );
  }
  return found.matches[0] as Handle;
}

const listing = (location: TokenLocation) =>
  `list the tokens of ${location.where ?? location.module}`;

/** Finds the one slot whose token has this label. */
export function findSlot(lib: Pkcs11, location: TokenLocation): Handle {
  return call(listing(location), () => onlyMatch(location, slotsLabelled(lib, location.token)));
}

/** Sessions this process has open (hex handles), by module: reinitialised only with none. */
const openSessions = new Map<Pkcs11, Set<string>>();

/**
 * The module and the slot of the token at `location`. Quirk `store-read-at-initialise`: SoftHSM2
 * reads its store of tokens at C_Initialize only, and a token whose files another process is
 * writing at that moment fails to read (CKR_GENERAL_ERROR) or is left out of the slot list for the
 * rest of the run. Nothing has been asked or written yet, so the list is read again after a short
 * pause, up to three times in all; a token missing from it is looked for again only where the
 * module can be initialised again first (it has the quirk, and no session of this process is open
 * on it).
 */
function findToken(location: TokenLocation): { lib: Pkcs11; slot: Handle } {
  for (let attempt = 1; ; attempt++) {
    let lib: Pkcs11 | undefined;
    try {
      lib = loadModule(location.module, location.libraryParameters);
      const found = call(listing(location), () => slotsLabelled(lib as Pkcs11, location.token));
      if (found.matches.length > 0 || attempt === 3 || !mayReadStoreAgain(lib))
        return { lib, slot: call(listing(location), () => onlyMatch(location, found)) };
    } catch (e) {
      const unread = e instanceof Pkcs11Failure && e.ckr === P.CKR_GENERAL_ERROR;
      if (!unread || attempt === 3) throw e;
    }
    pause(100, 300);
    if (lib) readStoreAgain(lib);
  }
}

function mayReadStoreAgain(lib: Pkcs11): boolean {
  return !openSessions.get(lib)?.size && readsStoreAtInitialise(lib.C_GetInfo());
}

/**
 * Initialises the module again, so that it reads its store afresh, where it has the quirk and no
 * session of this process is open on it; says whether it did.
 */
export function readStoreAgain(lib: Pkcs11): boolean {
  if (!mayReadStoreAgain(lib)) return false;
  reinitialise(lib);
  return true;
}

/**
 * The token at `location`, found (reading the store again as findToken does) and described, without
 * a session; refused as a user login would be if its user PIN is locked, since every caller logs
 * in as the user next. A command that opens two tokens looks for both first: once a session is
 * open on the first, the module is not initialised again, so a second token SoftHSM2 missed would
 * stay missing.
 */
export function lookForToken(location: TokenLocation): TokenIdentity {
  const { lib, slot } = findToken(location);
  const { info, identity } = describeToken(lib, slot, location);
  refuseLockedUserPin(info.flags, location);
  return identity;
}

function refuseLockedUserPin(flags: number, location: TokenLocation): void {
  if (flags & P.CKF_USER_PIN_LOCKED) {
    throw new CustosError(
      'E_PIN_LOCKED',
      `the user PIN of token "${location.token}" is locked`,
      'the security officer must unlock it first',
    );
  }
}

function describeToken(
  lib: Pkcs11,
  slot: Handle,
  location: TokenLocation,
): { info: ReturnType<Pkcs11['C_GetTokenInfo']>; identity: TokenIdentity } {
  const info = call(`read the description of token "${location.token}"`, () =>
    lib.C_GetTokenInfo(slot),
  );
  const identity: TokenIdentity = {
    label: trimPadded(info.label),
    serial: trimPadded(info.serialNumber),
    manufacturer: trimPadded(info.manufacturerID),
    model: trimPadded(info.model),
  };
  return { info, identity };
}

export type PinReader = (token: TokenIdentity) => Promise<string>;

/**
 * How to log in: as the user, as the security officer, or to replace the user PIN — as the SO
 * (C_InitPIN), or where the module has no SO (quirk `user-sets-own-pin`) as the user with the
 * current PIN (C_SetPIN). Each PIN is asked for only once the token is known to exist.
 */
export type Login =
  | { as: 'user'; pin: PinReader }
  | { as: 'so'; pin: PinReader }
  | { as: 'pin-change'; so: PinReader; user: PinReader };

export interface SessionParts {
  lib: Pkcs11;
  slot: Handle;
  session: Handle;
  identity: TokenIdentity;
  pinLimits: { min: number; max: number };
  /** The module path, as the profile gave it. */
  module: string;
  /** Set for a pin-change login as the user: C_SetPIN needs the current PIN. */
  currentPin?: string;
}

/** Opens a session on the token at `location` and logs in as `login` says. */
export async function openSession(
  location: TokenLocation,
  login: Login,
  readWrite: boolean,
): Promise<SessionParts> {
  const { lib, slot } = findToken(location);
  const { info, identity } = describeToken(lib, slot, location);
  const as = login.as === 'pin-change' ? (userSetsOwnPin(identity) ? 'user' : 'so') : login.as;
  if (as === 'user') refuseLockedUserPin(info.flags, location);
  const session = call(`open a session on token "${location.token}"`, () =>
    lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | (readWrite ? P.CKF_RW_SESSION : 0)),
  );
  openSessions.set(lib, (openSessions.get(lib) ?? new Set()).add(session.toString('hex')));
  const parts: SessionParts = {
    lib,
    slot,
    session,
    identity,
    pinLimits: pinLimits(info),
    module: location.module,
  };
  let secret: string;
  try {
    const reader = login.as === 'pin-change' ? (as === 'so' ? login.so : login.user) : login.pin;
    secret = await reader(identity);
  } catch (e) {
    closeSession(parts);
    throw e;
  }
  try {
    lib.C_Login(session, as === 'so' ? P.CKU_SO : P.CKU_USER, secret);
  } catch (e) {
    if (pkcs11Code(e) !== P.CKR_USER_ALREADY_LOGGED_IN) {
      closeSession(parts);
      throw call(
        `log in to token "${location.token}"${as === 'so' ? ' as security officer' : ''}`,
        () => {
          throw e;
        },
      );
    }
  }
  if (login.as === 'pin-change' && as === 'user') parts.currentPin = secret;
  return parts;
}

/**
 * Logs out and closes; failures here change nothing the command reports, so they are not errors.
 */
function closeSession(parts: Pick<SessionParts, 'lib' | 'session'>): void {
  try {
    parts.lib.C_Logout(parts.session);
  } catch {
    // already logged out, or the session is gone: closing it is all that is left
  }
  try {
    parts.lib.C_CloseSession(parts.session);
  } catch {
    // nothing more to release
  }
  // (A session closed twice is removed once: the set, unlike a count, cannot go wrong.)
  openSessions.get(parts.lib)?.delete(parts.session.toString('hex'));
}

/** A logged-in session on one token. */
export class Session {
  readonly lib: Pkcs11;
  readonly slot: Handle;
  readonly session: Handle;
  readonly identity: TokenIdentity;
  /**
   * The token's PIN length limits (ulMinPinLen, ulMaxPinLen, as quirk `pin-length-range` reads
   * them).
   */
  readonly pinLimits: { min: number; max: number };
  readonly module: string;
  readonly #currentPin: string | undefined;

  constructor(parts: SessionParts) {
    this.lib = parts.lib;
    this.slot = parts.slot;
    this.session = parts.session;
    this.identity = parts.identity;
    this.pinLimits = parts.pinLimits;
    this.module = parts.module;
    this.#currentPin = parts.currentPin;
  }

  /**
   * Whether `other` is a session on this very token: same module and slot, or the same identity
   * (quirks.ts).
   */
  sameTokenAs(other: Session): boolean {
    if (this.lib === other.lib) return this.slot.equals(other.slot);
    return sameTokenIdentity(this.identity, other.identity);
  }

  /** Random bytes from the token's own generator. */
  generateRandom(length: number): Buffer {
    return call('generate random bytes', () =>
      Buffer.from(this.lib.C_GenerateRandom(this.session, Buffer.alloc(length))),
    );
  }

  /**
   * Replaces the user PIN: C_InitPIN as security officer, or C_SetPIN as the user (quirk
   * `user-sets-own-pin`).
   */
  setUserPin(pin: string): void {
    call(`set the user PIN of token "${this.identity.label}"`, () => {
      if (this.#currentPin !== undefined) this.lib.C_SetPIN(this.session, this.#currentPin, pin);
      else this.lib.C_InitPIN(this.session, pin);
    });
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
    } catch (e) {
      if (pkcs11Code(e) === P.CKR_PIN_INCORRECT) return false;
      throw call(`log in to token "${this.identity.label}" with its new PIN`, () => {
        throw e;
      });
    }
    call(`log out of token "${this.identity.label}"`, () => this.lib.C_Logout(this.session));
    return true;
  }

  close(): void {
    closeSession(this);
  }
}
