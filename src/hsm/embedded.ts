/**
 * The embedded SoftHSM2 store: tokens under `.custos/tokens` in the working directory, with a
 * softhsm2.conf custos writes itself. Used when `--hsm NAME` names no profile in custos.yaml.
 */
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { Pkcs11Failure } from './call.js';
import { P, hsmError, isLoaded, loadModule, type Pkcs11 } from './module.js';
import { findSlot, readStoreAgain, trimPadded, type TokenLocation } from './token.js';

const SOFTHSM_PATHS = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export function softhsmModulePath(): string {
  const found = SOFTHSM_PATHS.find((p) => existsSync(p));
  if (!found) {
    throw new CustosError(
      'E_SETUP',
      'SoftHSM2 is not installed, and the embedded HSM needs it',
      'install it: apt-get install softhsm2 (or name a PKCS#11 module in custos.yaml)',
    );
  }
  return found;
}

export function embeddedStoreDir(cwd: string): string {
  return resolve(cwd, '.custos');
}

/**
 * Points SoftHSM at this store and returns the module path. Only `create` (token initialisation)
 * makes the store; any other command on a missing store fails without writing anything.
 */
export function prepareEmbeddedStore(
  cwd: string,
  label: string,
  create: boolean,
): TokenLocation['module'] {
  const dir = embeddedStoreDir(cwd);
  const tokens = join(dir, 'tokens');
  const conf = join(dir, 'softhsm2.conf');
  const text = `# written by custos for its embedded HSM store\ndirectories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`;
  if (create) {
    writeStore(tokens, conf, text);
  } else if (!existsSync(conf)) {
    throw new CustosError(
      'E_TOKEN_NOT_FOUND',
      `no custos.yaml profile is named "${label}", and there is no embedded HSM store in ${cwd}`,
      `name a profile from custos.yaml, or create an embedded token first: custos hsm init ${label}`,
    );
  }
  const module = softhsmModulePath();
  if (isLoaded(module) && process.env.SOFTHSM2_CONF !== conf) {
    throw new CustosError(
      'E_CONFIG',
      'SoftHSM is already in use with another configuration in this run',
      'use either custos.yaml profiles or the embedded store for SoftHSM in one command, not both',
    );
  }
  process.env.SOFTHSM2_CONF = conf;
  return module;
}

/**
 * Makes the store's token directory and writes its configuration whole: to a temporary name, then
 * renamed, so that a full disk or a file-size limit leaves no half-written softhsm2.conf.
 */
function writeStore(tokens: string, conf: string, text: string): void {
  const temp = `${conf}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(tokens, { recursive: true, mode: 0o700 });
    if (existsSync(conf) && readFileSync(conf, 'utf8') === text) return;
    // A fresh name, created here (wx): never a file or link that was already there.
    writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
    renameSync(temp, conf);
  } catch (e) {
    rmSync(temp, { force: true });
    throw new CustosError(
      'E_FILE',
      `could not write the embedded store's configuration ${conf} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      'no token was made; check the directory is writable and has space (and ulimit -f)',
    );
  }
}

export function embeddedLocation(cwd: string, label: string, create = false): TokenLocation {
  return {
    module: prepareEmbeddedStore(cwd, label, create),
    token: label,
    where: `the embedded store ${embeddedStoreDir(cwd)} (and no custos.yaml profile is named "${label}")`,
  };
}

/** Creates a token in the embedded store, with its SO PIN and user PIN. */
export function initEmbeddedToken(
  cwd: string,
  label: string,
  soPin: string,
  userPin: string,
): { serial: string } {
  // PKCS#11 labels are 32 bytes, blank-padded: a longer label would be cut and a trailing blank
  // lost.
  if (label.length === 0 || Buffer.byteLength(label, 'utf8') > 32 || label !== label.trim()) {
    throw new CustosError(
      'E_USAGE',
      `token label "${label}" must be 1 to 32 bytes of UTF-8, without leading or trailing blanks`,
    );
  }
  const location = embeddedLocation(cwd, label, true);
  const lib = loadModule(location.module);
  const slots = lib.C_GetSlotList(true);
  const free = slots.find((s) => !(lib.C_GetTokenInfo(s).flags & P.CKF_TOKEN_INITIALIZED));
  if (
    slots.some(
      (s) =>
        trimPadded(lib.C_GetTokenInfo(s).label) === label &&
        lib.C_GetTokenInfo(s).flags & P.CKF_TOKEN_INITIALIZED,
    )
  ) {
    throw new CustosError(
      'E_TOKEN_EXISTS',
      `the embedded store already has a token labelled "${label}"`,
      'pick another label, or use the existing token',
    );
  }
  if (!free) throw new CustosError('E_HSM', 'SoftHSM offers no free slot for a new token');
  const { minPinLen, maxPinLen } = lib.C_GetTokenInfo(free);
  for (const [what, pin] of [
    ['security officer PIN', soPin],
    ['user PIN', userPin],
  ] as const) {
    const n = Buffer.byteLength(pin, 'utf8');
    if (n < minPinLen || n > maxPinLen) {
      throw new CustosError(
        'E_USAGE',
        `the ${what} must be ${minPinLen} to ${maxPinLen} bytes long`,
        'choose another PIN; nothing was created',
      );
    }
  }
  const tokens = join(embeddedStoreDir(cwd), 'tokens');
  const before = new Set(readdirSync(tokens));
  try {
    lib.C_InitToken(free, soPin, label.padEnd(32, ' '));
  } catch (e) {
    throw hsmError(e, `initialise token "${label}"`);
  }
  let serial: string | undefined;
  try {
    const slot = findSlot(lib, location);
    serial = trimPadded(lib.C_GetTokenInfo(slot).serialNumber);
    const session = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    try {
      lib.C_Login(session, P.CKU_SO, soPin);
      lib.C_InitPIN(session, userPin);
      lib.C_Logout(session);
    } finally {
      lib.C_CloseSession(session);
    }
    requireStored(lib, location, serial);
    return { serial };
  } catch (e) {
    // A token left initialised without a user PIN can be used by no one, and its label blocks a
    // new `hsm init`: PKCS#11 cannot delete a token, so its directory in the store goes.
    throw undoneInit(hsmError(e, `set the user PIN of token "${label}"`), label, {
      tokens,
      before,
      serial,
      conf: join(embeddedStoreDir(cwd), 'softhsm2.conf'),
    });
  }
}

/**
 * SoftHSM 2.6 does not check its file writes: on a full disk, or past a file-size limit, it
 * reports the token made while its files are cut short or missing, and the token is gone at the
 * next start. Reading the store again (the module initialised anew) shows what a later run will
 * find; where this run has a session open on the module, that cannot be done, and is not.
 */
function requireStored(lib: Pkcs11, location: TokenLocation, serial: string): void {
  if (!readStoreAgain(lib)) return;
  const stored = lib
    .C_GetSlotList(true)
    .map((s) => lib.C_GetTokenInfo(s))
    .find((t) => trimPadded(t.serialNumber) === serial);
  if (
    stored &&
    trimPadded(stored.label) === location.token &&
    stored.flags & P.CKF_USER_PIN_INITIALIZED
  )
    return;
  throw new CustosError(
    'E_HSM',
    `SoftHSM said token "${location.token}" was made, but its store read again does not hold it whole`,
    'check the free space and any file-size limit (ulimit -f) where .custos is, then run custos hsm init again',
  );
}

/**
 * SoftHSM2's file store keeps each token in a directory of `directories.tokendir` named by a UUID,
 * whose last 16 hex digits are the token's serial number (what `softhsm2-util --delete-token`
 * removes). Only a directory made by this run's C_InitToken, with the new token's serial, goes.
 */
function removeNewToken(tokens: string, before: Set<string>, serial: string): boolean {
  const made = readdirSync(tokens).filter(
    (d) => !before.has(d) && d.replace(/-/g, '').slice(-16) === serial,
  );
  if (made.length !== 1) return false;
  rmSync(join(tokens, made[0] as string), { recursive: true, force: true });
  return true;
}

/** The failure that stopped `hsm init` after C_InitToken, saying whether the new token is gone. */
function undoneInit(
  failure: CustosError,
  label: string,
  store: { tokens: string; before: Set<string>; serial: string | undefined; conf: string },
): CustosError {
  let removed = false;
  try {
    removed =
      store.serial !== undefined && removeNewToken(store.tokens, store.before, store.serial);
  } catch {
    // said below: the token is left, with how to remove it
  }
  const reworded = (message: string, hint: string | undefined): CustosError =>
    failure instanceof Pkcs11Failure
      ? new Pkcs11Failure(failure.code, message, hint, failure.ckr, failure.fn)
      : new CustosError(failure.code, message, hint, failure.details);
  if (removed) {
    return reworded(
      `${failure.message}; token "${label}" was removed again, so nothing was left behind`,
      failure.hint,
    );
  }
  const which = store.serial ? `--serial ${store.serial}` : `--token "${label}"`;
  return reworded(
    `${failure.message}; token "${label}" is left initialised without a user PIN`,
    `remove it (SOFTHSM2_CONF=${store.conf} softhsm2-util --delete-token ${which}), then run custos hsm init again`,
  );
}
