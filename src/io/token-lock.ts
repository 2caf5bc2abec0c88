/**
 * The lock on a token custos writes to: one writer per token at a time among the custos processes
 * of this host. Restore, copy (backup --to-hsm, restore --from-hsm) and escrow-pin hold it for the
 * whole run and make their plan under it. It is keyed by the token's identity — module path,
 * serial, label, model and manufacturer (a token with an all-zero serial, quirk `zero-serial`, is
 * told apart by the rest) — and kept in `.custos/locks/` in the working directory.
 *
 * Runs from other working directories or other hosts are kept apart by the run marker on the token
 * itself (ops/run-marker.ts).
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { acquireLock, describeOwner, type HeldLock } from './lock.js';

export const LOCK_WAIT_ENV = 'CUSTOS_LOCK_WAIT';
/** How long a run waits for another one on the same token, unless CUSTOS_LOCK_WAIT says. */
export const DEFAULT_LOCK_WAIT_S = 300;

export interface LockedToken {
  module: string;
  identity: { label: string; serial: string; model: string; manufacturer: string };
}

export interface TokenLockPlace {
  /** The lock directory for this token. */
  lockPath: string;
  module: string;
}

export function tokenLockPlace(cwd: string, token: LockedToken): TokenLockPlace {
  const { label, serial, model, manufacturer } = token.identity;
  const key = createHash('sha256')
    .update(JSON.stringify([resolve(token.module), serial, label, model, manufacturer]))
    .digest('hex')
    .slice(0, 32);
  return { lockPath: join(resolve(cwd, '.custos', 'locks'), `${key}.lock`), module: token.module };
}

/** CUSTOS_LOCK_WAIT in milliseconds (seconds in the variable; 0 refuses at once). */
export function lockWaitMs(env: NodeJS.ProcessEnv): number {
  const given = env[LOCK_WAIT_ENV];
  if (given === undefined || given === '') return DEFAULT_LOCK_WAIT_S * 1000;
  if (!/^\d{1,6}$/.test(given))
    throw new CustosError(
      'E_USAGE',
      `${LOCK_WAIT_ENV} must be a whole number of seconds, not "${given.slice(0, 20)}"`,
      `set ${LOCK_WAIT_ENV} to how long to wait for another run on the same token (0: do not wait)`,
    );
  return Number(given) * 1000;
}

/** Takes the token's host-local lock for `command`, waiting up to `waitMs` for another run. */
export function lockToken(
  cwd: string,
  token: LockedToken,
  command: string,
  waitMs: number,
  note: (line: string) => void,
): { lock: HeldLock; place: TokenLockPlace } {
  const place = tokenLockPlace(cwd, token);
  const lock = acquireLock(place.lockPath, {
    command,
    waitMs,
    tidy: true,
    onWait: (owner) =>
      note(
        `waiting for another custos run (${describeOwner(owner)}) to finish with token "${token.identity.label}"`,
      ),
    busy: (owner) =>
      new CustosError(
        'E_BUSY',
        `token "${token.identity.label}" is in use by another custos run (${describeOwner(owner)})`,
        `wait for that run to end and try again (${LOCK_WAIT_ENV} sets how long a run waits, in seconds); its lock is ${place.lockPath}`,
      ),
  });
  return { lock, place };
}

/** A word for a POSIX shell: as it is when plain, else in single quotes. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
