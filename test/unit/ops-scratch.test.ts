// A scratch token for one run (src/ops/scratch.ts), with SoftHSM2 replaced by a stand-in for
// pkcs11js's PKCS11 class: what the run is given, the PINs it is made with, and that its store is
// gone afterwards, also when the run fails.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { P } from '../../src/hsm/call.js';
import { finalizeAll } from '../../src/hsm/module.js';
import { withScratchToken, SCRATCH_TOKEN } from '../../src/ops/scratch.js';
import type { Context } from '../../src/ops/context.js';
import { handle } from './hsm-fake.js';

const made: { so: string; user: string; label: string }[] = [];
let initialised = false;
class StandIn {
  load() {}
  C_Initialize() {}
  C_Finalize() {}
  close() {}
  C_GetInfo() {
    return { manufacturerID: 'A stand-in for SoftHSM'.padEnd(32, ' ') };
  }
  C_GetSlotList() {
    return [handle(1)];
  }
  C_GetTokenInfo() {
    return {
      label: (initialised ? SCRATCH_TOKEN : '').padEnd(32, ' '),
      serialNumber: '0000000000000001',
      manufacturerID: 'SoftHSM project',
      model: 'SoftHSM v2',
      flags: initialised ? P.CKF_TOKEN_INITIALIZED : 0,
      minPinLen: 4,
      maxPinLen: 255,
    };
  }
  C_InitToken(_slot: Buffer, so: string, label: string) {
    initialised = true;
    made.push({ so, user: '', label: label.trimEnd() });
  }
  C_OpenSession() {
    return handle(2);
  }
  C_Login() {}
  C_InitPIN(_s: Buffer, pin: string) {
    (made.at(-1) as { user: string }).user = pin;
  }
  C_Logout() {}
  C_CloseSession() {}
}

const Original = P.PKCS11;
const savedConf = process.env.SOFTHSM2_CONF;
beforeEach(() => {
  (P as { PKCS11: unknown }).PKCS11 = StandIn;
  initialised = false;
  made.length = 0;
});
afterEach(() => {
  finalizeAll();
  (P as { PKCS11: unknown }).PKCS11 = Original;
  if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = savedConf;
});

const ctx = {
  cwd: '/work/site',
  env: { CUSTOS_PIN: 'the-real-one', OTHER: 'kept' },
  config: { hsms: new Map([['lab', {}]]) },
  pinOverride: { hsm: 'lab', pin: async () => 'x' },
  actor: 'tester',
} as unknown as Context;

describe('withScratchToken', () => {
  test('the run gets a fresh embedded store holding only the scratch token, with its own PIN', async () => {
    let seen: { scratch: Context; token: string; mode: number } | undefined;
    const out = await withScratchToken(ctx, async (scratch, token) => {
      seen = { scratch, token, mode: statSync(scratch.cwd).mode & 0o777 };
      return 42;
    });
    expect(out).toEqual({ result: 42, destroyed: true });
    const { scratch, token, mode } = seen as NonNullable<typeof seen>;
    expect(token).toBe(SCRATCH_TOKEN);
    expect(scratch.cwd.startsWith(tmpdir())).toBe(true);
    expect(mode).toBe(0o700);
    expect(scratch.config.hsms.size).toBe(0);
    expect(scratch.pinOverride).toBeUndefined();
    expect(scratch.actor).toBe('tester');
    expect(scratch.env.OTHER).toBe('kept');
    // the token's PINs: random, long, the user PIN given to the run, the SO PIN to no one
    const [token1] = made;
    expect(token1?.label).toBe(SCRATCH_TOKEN);
    expect(scratch.env.CUSTOS_PIN).toBe(token1?.user);
    expect(token1?.user).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(token1?.so).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(token1?.so).not.toBe(token1?.user);
    expect(existsSync(scratch.cwd)).toBe(false);
    // the caller's context is untouched
    expect(ctx.env.CUSTOS_PIN).toBe('the-real-one');
  });

  test('the store is removed when the run fails, and the failure is passed on', async () => {
    let dir = '';
    const failure = new Error('drill failed');
    await expect(
      withScratchToken(ctx, async (scratch) => {
        dir = scratch.cwd;
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(dir).not.toBe('');
    expect(existsSync(dir)).toBe(false);
  });

  test('two runs get two stores and two sets of PINs', async () => {
    const dirs: string[] = [];
    await withScratchToken(ctx, async (s) => dirs.push(s.cwd));
    finalizeAll();
    initialised = false;
    await withScratchToken(ctx, async (s) => dirs.push(s.cwd));
    expect(new Set(dirs).size).toBe(2);
    expect(made[0]?.user).not.toBe(made[1]?.user);
  });
});
