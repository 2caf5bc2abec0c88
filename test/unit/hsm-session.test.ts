// Finding a token, logging in and changing the user PIN (src/hsm/session.ts), with the module
// replaced by a stand-in for the pkcs11js calls: which token is taken, when the PIN is asked for,
// which login is used for a PIN change, and which failures are errors.
import { describe, expect, test, vi } from 'vitest';
import { P, type Pkcs11 } from '../../src/hsm/call.js';
import { handle, pkcs11Error } from './hsm-fake.js';
import { catchCustos, catchCustosAsync } from './helpers.js';

const module = vi.hoisted(() => ({ lib: undefined as unknown, loads: [] as unknown[][] }));
vi.mock('../../src/hsm/module.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/hsm/module.js')>()),
  loadModule: (...args: unknown[]) => {
    module.loads.push(args);
    return module.lib;
  },
}));
const { Session, findSlot, openSession, trimPadded } = await import('../../src/hsm/session.js');

const pad = (s: string, n: number) => s.padEnd(n, ' ');
interface SlotSpec {
  label: string;
  serial?: string;
  manufacturer?: string;
  model?: string;
  flags?: number;
}

function fakeModule(
  slots: SlotSpec[],
  fail: (fn: string, args: unknown[]) => number | undefined = () => undefined,
) {
  const log: string[] = [];
  const enter = (fn: string, args: unknown[] = []) => {
    log.push(fn);
    const code = fail(fn, args);
    if (code !== undefined) throw pkcs11Error(code, fn);
  };
  const lib = {
    C_GetInfo() {
      enter('C_GetInfo');
      return { manufacturerID: pad('A module of tests', 32) };
    },
    C_GetSlotList() {
      enter('C_GetSlotList');
      return slots.map((_, i) => handle(i + 1));
    },
    C_GetTokenInfo(slot: Buffer) {
      enter('C_GetTokenInfo');
      const s = slots[slot.readUInt32LE(0) - 1] as SlotSpec;
      return {
        label: pad(s.label, 32),
        serialNumber: pad(s.serial ?? '5d8e3a1f9c0b2e47', 16),
        manufacturerID: pad(s.manufacturer ?? 'SoftHSM project', 32),
        model: pad(s.model ?? 'SoftHSM v2', 16),
        flags: s.flags ?? 0,
        minPinLen: 4,
        maxPinLen: 255,
      };
    },
    C_OpenSession(slot: Buffer, flags: number) {
      enter('C_OpenSession', [slot, flags]);
      return handle(100 + slot.readUInt32LE(0));
    },
    C_Login(_s: Buffer, who: number, pin: string) {
      enter(`C_Login:${who === P.CKU_SO ? 'so' : 'user'}`, [pin]);
    },
    C_Logout() {
      enter('C_Logout');
    },
    C_CloseSession() {
      enter('C_CloseSession');
    },
    C_InitPIN(_s: Buffer, pin: string) {
      enter('C_InitPIN', [pin]);
    },
    C_SetPIN(_s: Buffer, old: string, pin: string) {
      enter('C_SetPIN', [old, pin]);
    },
  };
  module.lib = lib;
  return { lib: lib as unknown as Pkcs11, log };
}

const LOCATION = { module: '/usr/lib/softhsm/libsofthsm2.so', token: 'vault' };
const pinOf =
  (pin: string, asked: string[] = []) =>
  async (t: { label: string }) => {
    asked.push(t.label);
    return pin;
  };

describe('findSlot', () => {
  test('the one slot whose token has the label, padding and NULs trimmed', () => {
    const { lib } = fakeModule([{ label: 'other' }, { label: 'vault' }]);
    expect(findSlot(lib, LOCATION).readUInt32LE(0)).toBe(2);
    expect(trimPadded('vault\0\0  ')).toBe('vault');
    expect(trimPadded('  vault')).toBe('  vault');
  });

  test('no such label: E_TOKEN_NOT_FOUND listing what the module sees', () => {
    const { lib } = fakeModule([
      { label: 'a', serial: '1' },
      { label: '' },
      { label: 'b', serial: '2' },
    ]);
    const e = catchCustos(
      () => findSlot(lib, { ...LOCATION, module: '/opt/hsm/libvendor.so' }),
      'E_TOKEN_NOT_FOUND',
    );
    expect(e.message).toBe('no token labelled "vault" in /opt/hsm/libvendor.so');
    expect(e.details).toEqual(['the module sees: "a" (serial 1), "b" (serial 2)']);
    expect(e.hint).toMatch(/HSM is connected and its token initialised/);
  });

  test('the embedded store says how to create the token; NSS names its parameters', () => {
    const { lib } = fakeModule([]);
    const embedded = catchCustos(
      () => findSlot(lib, { ...LOCATION, where: 'the embedded store' }),
      'E_TOKEN_NOT_FOUND',
    );
    expect(embedded.hint).toBe('create it: custos hsm init vault');
    expect(embedded.details).toEqual(['the module sees no token that has been initialised']);
    const nss = catchCustos(
      () =>
        findSlot(lib, { ...LOCATION, module: '/usr/lib/libsoftokn3.so', libraryParameters: 'x' }),
      'E_TOKEN_NOT_FOUND',
    );
    expect(nss.hint).toMatch(
      /library-parameters \(for NSS, each tokenDescription is a token's label\)/,
    );
  });

  test('two tokens with the label: refused, not a guess', () => {
    const { lib } = fakeModule([{ label: 'vault' }, { label: 'vault' }]);
    const e = catchCustos(() => findSlot(lib, LOCATION), 'E_TOKEN_NOT_FOUND');
    expect(e.message).toBe('2 tokens are labelled "vault" in /usr/lib/softhsm/libsofthsm2.so');
  });

  test('a device error while listing is E_HSM', () => {
    const { lib } = fakeModule([{ label: 'vault' }], (fn) =>
      fn === 'C_GetTokenInfo' ? P.CKR_DEVICE_ERROR : undefined,
    );
    catchCustos(() => findSlot(lib, LOCATION), 'E_HSM');
  });
});

describe('openSession', () => {
  test('logs in as the user with the PIN, asked for once the token is found, told which token', async () => {
    const { log } = fakeModule([{ label: 'vault' }]);
    const asked: string[] = [];
    const parts = await openSession(LOCATION, { as: 'user', pin: pinOf('1234', asked) }, true);
    expect(asked).toEqual(['vault']);
    expect(log).toEqual([
      'C_GetSlotList',
      'C_GetTokenInfo',
      'C_GetTokenInfo',
      'C_OpenSession',
      'C_Login:user',
    ]);
    expect(parts.identity).toEqual({
      label: 'vault',
      serial: '5d8e3a1f9c0b2e47',
      manufacturer: 'SoftHSM project',
      model: 'SoftHSM v2',
    });
    expect(parts.pinLimits).toEqual({ min: 4, max: 255 });
    expect(parts.currentPin).toBeUndefined();
  });

  test('read-only unless asked: CKF_RW_SESSION only for writing', async () => {
    const flags: number[] = [];
    fakeModule([{ label: 'vault' }], (fn, args) => {
      if (fn === 'C_OpenSession') flags.push(args[1] as number);
      return undefined;
    });
    await openSession(LOCATION, { as: 'user', pin: pinOf('1') }, false);
    await openSession(LOCATION, { as: 'user', pin: pinOf('1') }, true);
    expect(flags).toEqual([P.CKF_SERIAL_SESSION, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION]);
  });

  test('a token that is not there: the PIN is never asked for', async () => {
    fakeModule([{ label: 'other' }]);
    const asked: string[] = [];
    await catchCustosAsync(
      () => openSession(LOCATION, { as: 'user', pin: pinOf('1', asked) }, false),
      'E_TOKEN_NOT_FOUND',
    );
    expect(asked).toEqual([]);
  });

  test('a locked user PIN is said before a PIN is asked for or tried', async () => {
    const { log } = fakeModule([{ label: 'vault', flags: P.CKF_USER_PIN_LOCKED }]);
    const asked: string[] = [];
    const e = await catchCustosAsync(
      () => openSession(LOCATION, { as: 'user', pin: pinOf('1', asked) }, false),
      'E_PIN_LOCKED',
    );
    expect(e.message).toBe('the user PIN of token "vault" is locked');
    expect(asked).toEqual([]);
    expect(log).not.toContain('C_Login:user');
  });

  test('a wrong PIN: E_PIN_INCORRECT naming the token, and the session is closed', async () => {
    const { log } = fakeModule([{ label: 'vault' }], (fn) =>
      fn === 'C_Login:user' ? P.CKR_PIN_INCORRECT : undefined,
    );
    const e = await catchCustosAsync(
      () => openSession(LOCATION, { as: 'user', pin: pinOf('0000') }, false),
      'E_PIN_INCORRECT',
    );
    expect(e.message).toBe('the PIN was not accepted (log in to token "vault", CKR_PIN_INCORRECT)');
    expect(e.message).not.toContain('0000');
    expect(log.slice(-2)).toEqual(['C_Logout', 'C_CloseSession']);
  });

  test('a PIN that cannot be read (no terminal, unset variable): the session is closed, the error kept', async () => {
    const { log } = fakeModule([{ label: 'vault' }]);
    const failing = async () => {
      throw new Error('no terminal');
    };
    await expect(openSession(LOCATION, { as: 'user', pin: failing }, false)).rejects.toThrow(
      'no terminal',
    );
    expect(log.slice(-2)).toEqual(['C_Logout', 'C_CloseSession']);
  });

  test('already logged in (another session of this process): not an error', async () => {
    fakeModule([{ label: 'vault' }], (fn) =>
      fn === 'C_Login:user' ? P.CKR_USER_ALREADY_LOGGED_IN : undefined,
    );
    const parts = await openSession(LOCATION, { as: 'user', pin: pinOf('1') }, false);
    expect(parts.identity.label).toBe('vault');
  });

  test('the security officer logs in as CKU_SO, and a failure says so', async () => {
    const { log } = fakeModule([{ label: 'vault' }], (fn) =>
      fn === 'C_Login:so' ? P.CKR_PIN_LOCKED : undefined,
    );
    const e = await catchCustosAsync(
      () => openSession(LOCATION, { as: 'so', pin: pinOf('so') }, true),
      'E_PIN_LOCKED',
    );
    expect(e.message).toBe(
      'the token\'s PIN is locked (log in to token "vault" as security officer, CKR_PIN_LOCKED)',
    );
    expect(log).toContain('C_Login:so');
  });

  test('a PIN change: through the security officer and C_InitPIN, or on NSS as the user with C_SetPIN', async () => {
    const soft = fakeModule([{ label: 'vault' }]);
    const so: string[] = [];
    const user: string[] = [];
    const a = new Session(
      await openSession(
        LOCATION,
        { as: 'pin-change', so: pinOf('so-pin', so), user: pinOf('old', user) },
        true,
      ),
    );
    expect([so.length, user.length]).toEqual([1, 0]);
    a.setUserPin('new-pin');
    expect(soft.log.slice(-2)).toEqual(['C_Login:so', 'C_InitPIN']);

    const nss = fakeModule([
      { label: 'vault', manufacturer: 'Mozilla Foundation', model: 'NSS 3' },
    ]);
    const calls: unknown[][] = [];
    module.lib = {
      ...(module.lib as object),
      C_SetPIN: (_s: Buffer, old: string, pin: string) => {
        calls.push([old, pin]);
      },
    };
    const b = new Session(
      await openSession(
        LOCATION,
        { as: 'pin-change', so: pinOf('so-pin', so), user: pinOf('old', user) },
        true,
      ),
    );
    expect([so.length, user.length]).toEqual([1, 1]);
    expect(nss.log.at(-1)).toBe('C_Login:user');
    b.setUserPin('new-pin');
    expect(calls).toEqual([['old', 'new-pin']]);
  });
});

describe('Session', () => {
  async function session(fail?: (fn: string, args: unknown[]) => number | undefined) {
    const fake = fakeModule([{ label: 'vault' }], fail);
    return {
      s: new Session(await openSession(LOCATION, { as: 'user', pin: pinOf('1') }, true)),
      ...fake,
    };
  }

  test('proveUserPin: logs out and in with the new PIN; a wrong one is false, anything else an error', async () => {
    let login = 0;
    let answer: number | undefined;
    const { s, log } = await session((fn) =>
      fn === 'C_Login:user' && ++login > 1 ? answer : undefined,
    );
    expect(s.proveUserPin('new')).toBe(true);
    expect(log.slice(-3)).toEqual(['C_Logout', 'C_Login:user', 'C_Logout']);
    answer = P.CKR_PIN_INCORRECT;
    expect(s.proveUserPin('wrong')).toBe(false);
    answer = P.CKR_DEVICE_ERROR;
    const e = catchCustos(() => s.proveUserPin('new'), 'E_HSM');
    expect(e.message).toBe(
      'the HSM failed while trying to log in to token "vault" with its new PIN (CKR_DEVICE_ERROR)',
    );
  });

  test('setUserPin failures name the token', async () => {
    const { s } = await session((fn) => (fn === 'C_InitPIN' ? P.CKR_PIN_LEN_RANGE : undefined));
    const e = catchCustos(() => s.setUserPin('1'), 'E_HSM');
    expect(e.message).toBe(
      'the token refused to set the user PIN of token "vault" (CKR_PIN_LEN_RANGE)',
    );
  });

  test('close never throws, even when the session is gone', async () => {
    const { s } = await session((fn) =>
      fn === 'C_Logout' || fn === 'C_CloseSession' ? P.CKR_SESSION_HANDLE_INVALID : undefined,
    );
    expect(() => s.close()).not.toThrow();
  });

  test('sameTokenAs: the same module and slot; across modules, the same identity', async () => {
    const { s } = await session();
    const { s: again } = await session();
    expect(s.sameTokenAs(s)).toBe(true);
    // another module object (a second fake): compared by label and serial
    expect(s.sameTokenAs(again)).toBe(true);
    fakeModule([{ label: 'vault', serial: '0000000000000001' }]);
    const other = new Session(await openSession(LOCATION, { as: 'user', pin: pinOf('1') }, true));
    expect(s.sameTokenAs(other)).toBe(false);
  });
});
