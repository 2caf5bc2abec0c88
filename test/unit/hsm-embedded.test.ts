// The embedded SoftHSM2 store (src/hsm/embedded.ts) without making a token: where its files go and
// with which modes, that only token creation makes the store, one SoftHSM configuration per run,
// and the checks made before a token is initialised. SoftHSM2 itself is replaced by a stand-in for
// pkcs11js's PKCS11 class while each test runs (it is put back afterwards).
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { P } from '../../src/hsm/call.js';
import {
  embeddedLocation,
  initEmbeddedToken,
  prepareEmbeddedStore,
  softhsmModulePath,
} from '../../src/hsm/embedded.js';
import { finalizeAll } from '../../src/hsm/module.js';
import { handle, pkcs11Error } from './hsm-fake.js';
import { catchCustos } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'custos-embedded-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
let n = 0;
const site = () => join(root, `site${++n}`);

interface Slot {
  label: string;
  initialised: boolean;
}
let slots: Slot[] = [];
const calls: string[] = [];
const Original = P.PKCS11;
class StandIn {
  load() {}
  C_Initialize() {}
  C_Finalize() {}
  close() {}
  C_GetInfo() {
    return { manufacturerID: 'A stand-in for SoftHSM'.padEnd(32, ' ') };
  }
  C_GetSlotList() {
    return slots.map((_, i) => handle(i + 1));
  }
  C_GetTokenInfo(slot: Buffer) {
    const s = slots[slot.readUInt32LE(0) - 1] as Slot;
    return {
      label: s.label.padEnd(32, ' '),
      serialNumber: `${slot.readUInt32LE(0)}`.padStart(16, '0'),
      manufacturerID: 'SoftHSM project'.padEnd(32, ' '),
      model: 'SoftHSM v2'.padEnd(16, ' '),
      flags: s.initialised ? P.CKF_TOKEN_INITIALIZED : 0,
      minPinLen: 4,
      maxPinLen: 255,
    };
  }
  C_InitToken(slot: Buffer, soPin: string, label: string) {
    calls.push(`C_InitToken ${label.length} ${soPin.length}`);
    if (label.startsWith('refuse')) throw pkcs11Error(P.CKR_PIN_LEN_RANGE, 'C_InitToken');
    slots[slot.readUInt32LE(0) - 1] = { label: label.trimEnd(), initialised: true };
    slots.push({ label: '', initialised: false });
  }
  C_OpenSession() {
    return handle(50);
  }
  C_Login() {
    calls.push('C_Login');
  }
  C_InitPIN() {
    calls.push('C_InitPIN');
  }
  C_Logout() {}
  C_CloseSession() {
    calls.push('C_CloseSession');
  }
}

const savedConf = process.env.SOFTHSM2_CONF;
beforeEach(() => {
  (P as { PKCS11: unknown }).PKCS11 = StandIn;
  slots = [{ label: '', initialised: false }];
  calls.length = 0;
});
afterEach(() => {
  finalizeAll();
  (P as { PKCS11: unknown }).PKCS11 = Original;
  if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = savedConf;
});

describe('the store', () => {
  test('made only when a token is created: .custos/tokens (0700) and softhsm2.conf (0600)', () => {
    const cwd = site();
    const e = catchCustos(() => prepareEmbeddedStore(cwd, 'vault', false), 'E_TOKEN_NOT_FOUND');
    expect(e.message).toBe(
      `no custos.yaml profile is named "vault", and there is no embedded HSM store in ${cwd}`,
    );
    expect(e.hint).toBe(
      'name a profile from custos.yaml, or create an embedded token first: custos hsm init vault',
    );
    expect(existsSync(join(cwd, '.custos'))).toBe(false);

    expect(prepareEmbeddedStore(cwd, 'vault', true)).toBe(softhsmModulePath());
    const conf = join(cwd, '.custos', 'softhsm2.conf');
    expect(statSync(join(cwd, '.custos', 'tokens')).mode & 0o777).toBe(0o700);
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    expect(readFileSync(conf, 'utf8')).toMatch(
      new RegExp(`^directories\\.tokendir = ${join(cwd, '.custos', 'tokens')}$`, 'm'),
    );
    expect(process.env.SOFTHSM2_CONF).toBe(conf);
    // once made, other commands use it
    expect(prepareEmbeddedStore(cwd, 'vault', false)).toBe(softhsmModulePath());
  });

  test('the location names the store, for messages', () => {
    const cwd = site();
    expect(embeddedLocation(cwd, 'vault', true)).toEqual({
      module: softhsmModulePath(),
      token: 'vault',
      where: `the embedded store ${join(cwd, '.custos')} (and no custos.yaml profile is named "vault")`,
    });
  });

  test('SoftHSM already loaded with another configuration in this run: E_CONFIG', () => {
    const first = site();
    initEmbeddedToken(first, 'vault', 'so-pin-1', 'user-pin');
    const e = catchCustos(() => prepareEmbeddedStore(site(), 'other', true), 'E_CONFIG');
    expect(e.message).toBe('SoftHSM is already in use with another configuration in this run');
    // the same store again is fine
    expect(prepareEmbeddedStore(first, 'vault', false)).toBe(softhsmModulePath());
  });
});

describe('initEmbeddedToken', () => {
  test('initialises a free slot with the label blank-padded to 32, then sets the user PIN as SO', () => {
    const out = initEmbeddedToken(site(), 'vault', 'so-pin-1', 'user-pin');
    expect(out).toEqual({ serial: '0000000000000001' });
    expect(calls).toEqual(['C_InitToken 32 8', 'C_Login', 'C_InitPIN', 'C_CloseSession']);
  });

  test.each(['', ' vault', 'vault ', 'x'.repeat(33), 'é'.repeat(17)])(
    'label %j is refused before anything is made',
    (label) => {
      const cwd = site();
      const e = catchCustos(() => initEmbeddedToken(cwd, label, 'so-pin-1', 'user-pin'), 'E_USAGE');
      expect(e.message).toMatch(
        /must be 1 to 32 bytes of UTF-8, without leading or trailing blanks$/,
      );
      expect(existsSync(join(cwd, '.custos'))).toBe(false);
    },
  );

  test('a 32-byte label is the longest taken', () => {
    expect(() => initEmbeddedToken(site(), 'é'.repeat(16), 'so-pin-1', 'user-pin')).not.toThrow();
  });

  test('a label already there: E_TOKEN_EXISTS; no free slot: E_HSM', () => {
    const cwd = site(); // one store: SoftHSM takes one configuration per run
    slots = [
      { label: 'vault', initialised: true },
      { label: '', initialised: false },
    ];
    const e = catchCustos(
      () => initEmbeddedToken(cwd, 'vault', 'so-pin-1', 'user-pin'),
      'E_TOKEN_EXISTS',
    );
    expect(e.message).toBe('the embedded store already has a token labelled "vault"');
    slots = [{ label: 'a', initialised: true }];
    const full = catchCustos(() => initEmbeddedToken(cwd, 'b', 'so-pin-1', 'user-pin'), 'E_HSM');
    expect(full.message).toBe('SoftHSM offers no free slot for a new token');
    expect(calls).toEqual([]);
  });

  test.each([
    ['security officer PIN', '123', 'user-pin'],
    ['user PIN', 'so-pin-1', 'x'.repeat(256)],
  ])("a %s outside the token's length range: E_USAGE, nothing created", (what, so, user) => {
    const e = catchCustos(() => initEmbeddedToken(site(), 'vault', so, user), 'E_USAGE');
    expect(e.message).toBe(`the ${what} must be 4 to 255 bytes long`);
    expect(e.message).not.toContain(so);
    expect(calls).toEqual([]);
  });

  test('a refusal to initialise is E_HSM naming the token', () => {
    const e = catchCustos(
      () => initEmbeddedToken(site(), 'refuse-me', 'so-pin-1', 'user-pin'),
      'E_HSM',
    );
    expect(e.message).toBe('the token refused to initialise token "refuse-me" (CKR_PIN_LEN_RANGE)');
  });
});
