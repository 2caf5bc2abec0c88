/**
 * `hsm init` is all or nothing: when setting the user PIN fails after C_InitToken has made the
 * token, the token is removed from the embedded store again, so no token is left that no one can
 * use and whose label would block the next `hsm init`.
 *
 * The store and the module are real SoftHSM2. Neither a file-size limit nor a read-only store
 * makes C_InitPIN fail there: SoftHSM 2.6 does not check its writes (C_InitPIN reports success
 * over a truncated token.object), root writes to read-only files, and the token directory is made
 * inside the same C_InitToken. So the failure is caused at the module boundary, in this process:
 * pkcs11js's class is replaced for one run by one that logs the security officer out before
 * C_InitPIN, or gives C_Login another SO PIN, and SoftHSM itself refuses
 * (CKR_USER_NOT_LOGGED_IN, CKR_PIN_INCORRECT). What is left is then read with softhsm2-util, and
 * the re-run is the real `custos hsm init`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { P, type Handle } from '../../src/hsm/call.js';
import { initEmbeddedToken } from '../../src/hsm/embedded.js';
import { finalizeAll } from '../../src/hsm/module.js';
import type { CustosError } from '../../src/core/errors.js';
import {
  TIMEOUT,
  cleanup,
  custos,
  expectNoSecrets,
  expectOk,
  newPin,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let pin: string;
let soPin: string;
let storeConf: string;
let tokensDir: string;
const Original = P.PKCS11;
const savedConf = process.env.SOFTHSM2_CONF;

const hsmInit = (label: string) =>
  custos(ws, ['hsm', 'init', label], { env: { CUSTOS_PIN: pin, CUSTOS_SO_PIN: soPin } });

interface ShownToken {
  label: string;
  serial: string;
  initialised: boolean;
  userPin: boolean;
}

/** The initialised tokens of the store, as `softhsm2-util --show-slots` lists them. */
function shownTokens(): ShownToken[] {
  const r = spawnSync('softhsm2-util', ['--show-slots'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SOFTHSM2_CONF: storeConf },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .split(/^Slot /m)
    .map((block) => {
      const field = (name: string) =>
        (new RegExp(`^\\s+${name}:\\s*(.*)$`, 'm').exec(block)?.[1] ?? '').trim();
      return {
        label: field('Label'),
        serial: field('Serial number'),
        initialised: field('Initialized') === 'yes',
        userPin: field('User PIN init\\.') === 'yes',
      };
    })
    .filter((t) => t.initialised);
}

/** Runs initEmbeddedToken here, on the real SoftHSM2 module as `Module` changes it. */
function initWith(Module: typeof Original, label: string): CustosError {
  (P as { PKCS11: unknown }).PKCS11 = Module;
  try {
    initEmbeddedToken(ws.dir, label, soPin, pin);
  } catch (e) {
    return e as CustosError;
  } finally {
    finalizeAll();
    (P as { PKCS11: unknown }).PKCS11 = Original;
  }
  throw new Error(`hsm init of "${label}" did not fail`);
}

class SoLoggedOutBeforeInitPin extends Original {
  override C_InitPIN(session: Handle, userPin?: string): void {
    this.C_Logout(session);
    super.C_InitPIN(session, userPin);
  }
}

/** The directories of the store before a run, for RenamedTokenDir. */
let dirsBefore = new Set<string>();

/**
 * As SoLoggedOutBeforeInitPin, in a store that names a new token's directory otherwise than
 * SoftHSM 2.6 does (after its serial), so custos cannot tell which directory is the new token's.
 */
class RenamedTokenDir extends SoLoggedOutBeforeInitPin {
  override C_InitPIN(session: Handle, userPin?: string): void {
    for (const d of readdirSync(tokensDir))
      if (!dirsBefore.has(d))
        renameSync(join(tokensDir, d), join(tokensDir, `renamed-${d.slice(0, 8)}`));
    super.C_InitPIN(session, userPin);
  }
}

class OtherSoPin extends Original {
  override C_Login(session: Handle, userType: number, given?: string): void {
    super.C_Login(session, userType, userType === P.CKU_SO ? `${given}-other` : given);
  }
}

beforeAll(() => {
  ws = workspace('embedded-init-undo');
  pin = newPin(ws);
  soPin = newPin(ws);
  storeConf = join(ws.dir, '.custos', 'softhsm2.conf');
  tokensDir = join(ws.dir, '.custos', 'tokens');
  expectOk(hsmInit('kept'));
});

afterEach(() => {
  if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = savedConf;
});

afterAll(() => cleanup(ws));

describe('hsm init leaves no token when the user PIN cannot be set', () => {
  it.each([
    [
      'C_InitPIN fails',
      SoLoggedOutBeforeInitPin,
      'fresh',
      'E_HSM',
      /^the token refused to set the user PIN of token "fresh" \(CKR_USER_NOT_LOGGED_IN\)/,
    ],
    [
      'C_Login as security officer fails',
      OtherSoPin,
      'other',
      'E_PIN_INCORRECT',
      /^the PIN was not accepted \(set the user PIN of token "other", CKR_PIN_INCORRECT\)/,
    ],
  ] as const)(
    '%s: the new token is removed, and a re-run makes it',
    (_, Module, label, code, why) => {
      const kept = shownTokens();
      expect(kept.map((t) => t.label)).toContain('kept');
      expect(kept.map((t) => t.label)).not.toContain(label);
      const dirs = readdirSync(tokensDir).sort();
      const e = initWith(Module, label);
      expect(e.code).toBe(code);
      expect(e.message).toMatch(why);
      expect(e.message).toMatch(
        new RegExp(`; token "${label}" was removed again, so nothing was left behind$`),
      );
      // nothing of it in the store: the token that was there is untouched
      expect(shownTokens()).toEqual(kept);
      expect(readdirSync(tokensDir).sort()).toEqual(dirs);
      const again = expectOk(hsmInit(label));
      const made = shownTokens().find((t) => t.label === label);
      expect(made).toMatchObject({ initialised: true, userPin: true });
      expect(again.stdout).toContain(`created token "${label}" (serial ${made?.serial})`);
      // the user PIN set by the re-run opens the token
      expectOk(
        custos(ws, ['inventory', '--hsm', label], { env: { CUSTOS_PIN: pin, CUSTOS_SO_PIN: '' } }),
      );
    },
  );

  it('a new token custos cannot tell in the store is named as left, with the command that removes it', () => {
    dirsBefore = new Set(readdirSync(tokensDir));
    const e = initWith(RenamedTokenDir, 'odd');
    expect(e.code).toBe('E_HSM');
    expect(e.message).toMatch(
      /\(CKR_USER_NOT_LOGGED_IN\); token "odd" is left initialised without a user PIN$/,
    );
    const hint = new RegExp(
      `^remove it \\(SOFTHSM2_CONF=(\\S+) softhsm2-util --delete-token --serial ([0-9a-f]{16})\\), then run custos hsm init again$`,
    ).exec(e.hint ?? '');
    expect(hint, e.hint).not.toBeNull();
    const [, conf, serial] = hint as RegExpExecArray;
    expect(conf).toBe(storeConf);
    expect(shownTokens().find((t) => t.label === 'odd')).toEqual({
      label: 'odd',
      serial,
      initialised: true,
      userPin: false,
    });
    // the hint's command does what it says
    const removed = spawnSync('softhsm2-util', ['--delete-token', '--serial', serial as string], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SOFTHSM2_CONF: conf },
      encoding: 'utf8',
    });
    expect(removed.status, removed.stderr).toBe(0);
    expect(shownTokens().map((t) => t.label)).not.toContain('odd');
    expectOk(hsmInit('odd'));
  });

  it('no PIN appears in any output', () => {
    expectNoSecrets(ws);
  });
});
