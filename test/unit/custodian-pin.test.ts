// A custodian's wrong or locked PIN (src/hsm/custodian-key.ts, openCustodianToken), with the
// module replaced by a stand-in: the message is in a custodian's words and still names what the
// token said, its return code (docs/configuration.md, "Errors") or the flag that stopped custos
// before it tried to log in.
import { describe, expect, test, vi } from 'vitest';
import { P } from '../../src/hsm/call.js';
import { handle, pkcs11Error } from './hsm-fake.js';
import { catchCustosAsync } from './helpers.js';

const module = vi.hoisted(() => ({ lib: undefined as unknown }));
vi.mock('../../src/hsm/module.js', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/hsm/module.js')>()),
  loadModule: () => module.lib,
}));
const { openCustodianToken } = await import('../../src/hsm/custodian-key.js');

const LOCATION = { module: '/usr/lib/softhsm/libsofthsm2.so', token: 'hale' };

/** One token whose C_Login fails with `login`; its flags are `before` until then, `after` since. */
function fakeToken(login: number, before: number, after = before): void {
  let flags = before;
  module.lib = {
    C_GetSlotList: () => [handle(1)],
    C_GetTokenInfo: () => ({
      label: 'hale'.padEnd(32, ' '),
      serialNumber: '5d8e3a1f9c0b2e47',
      manufacturerID: 'SoftHSM project'.padEnd(32, ' '),
      model: 'SoftHSM v2'.padEnd(16, ' '),
      flags,
      minPinLen: 4,
      maxPinLen: 255,
    }),
    C_OpenSession: () => handle(100),
    C_Login: () => {
      flags = after;
      throw pkcs11Error(login, 'C_Login');
    },
    C_Logout: () => undefined,
    C_CloseSession: () => undefined,
  };
}

const open = () => openCustodianToken(LOCATION, async () => 'not-the-pin');

describe('a custodian PIN the token refuses names what the token said', () => {
  test('a wrong PIN: the tries left, and CKR_PIN_INCORRECT', async () => {
    fakeToken(P.CKR_PIN_INCORRECT, 0, P.CKF_USER_PIN_COUNT_LOW);
    const e = await catchCustosAsync(open, 'E_PIN_INCORRECT');
    expect(e.message).toBe(
      'wrong PIN for token "hale": the token says few tries are left before it locks (CKR_PIN_INCORRECT)',
    );
    expect(e.hint).toMatch(/each wrong PIN counts towards locking it/);
    expect(e.message).not.toContain('not-the-pin');
  });

  test('the wrong PIN that locked the token: E_PIN_LOCKED, with the code the login returned', async () => {
    fakeToken(P.CKR_PIN_INCORRECT, P.CKF_USER_PIN_FINAL_TRY, P.CKF_USER_PIN_LOCKED);
    const e = await catchCustosAsync(open, 'E_PIN_LOCKED');
    expect(e.message).toBe(
      'wrong PIN for token "hale": the token is now locked (CKR_PIN_INCORRECT)',
    );
  });

  test('a login the token refuses as locked: CKR_PIN_LOCKED', async () => {
    fakeToken(P.CKR_PIN_LOCKED, 0);
    const e = await catchCustosAsync(open, 'E_PIN_LOCKED');
    expect(e.message).toBe(
      'the PIN of token "hale" is locked: too many wrong PINs (CKR_PIN_LOCKED)',
    );
    expect(e.hint).toMatch(/PUK or security officer must unlock it/);
  });

  test('a token that says it is locked before any login: the flag, CKF_USER_PIN_LOCKED', async () => {
    fakeToken(P.CKR_PIN_INCORRECT, P.CKF_USER_PIN_LOCKED);
    const e = await catchCustosAsync(open, 'E_PIN_LOCKED');
    expect(e.message).toBe(
      'the PIN of token "hale" is locked: too many wrong PINs (CKF_USER_PIN_LOCKED)',
    );
  });
});
