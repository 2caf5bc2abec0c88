// Opening the token a command names (src/ops/hsm.ts), with the session layer replaced: where the
// token is looked for (a profile's module and parameters, or the embedded store), and how a wrong
// PIN is explained in the words of where the PIN came from.
import { beforeEach, describe, expect, test, vi } from 'vitest';
import { CustosError } from '../../src/core/errors.js';
import type { Context } from '../../src/ops/context.js';

const opened = vi.hoisted(() => ({
  locations: [] as unknown[],
  failure: undefined as unknown,
  forPinChange: [] as unknown[],
}));
vi.mock('../../src/hsm/token.js', () => ({
  Token: {
    open: async (location: unknown) => {
      opened.locations.push(location);
      if (opened.failure) throw opened.failure;
      return { location };
    },
    openForPinChange: async (location: unknown) => {
      opened.forPinChange.push(location);
      return { location };
    },
  },
}));
vi.mock('../../src/hsm/embedded.js', () => ({
  embeddedLocation: (cwd: string, token: string) => ({
    module: '/usr/lib/softhsm/libsofthsm2.so',
    token,
    where: `the embedded store in ${cwd}`,
  }),
}));
const { openHsm, openHsmAsSecurityOfficer } = await import('../../src/ops/hsm.js');

function ctx(): Context {
  const profile = (name: string, pin: unknown, more = {}) => [
    name,
    {
      name,
      module: '/opt/hsm/lib.so',
      token: `${name}-token`,
      pin,
      soPin: { kind: 'prompt' },
      ...more,
    },
  ];
  return {
    cwd: '/work/site',
    env: {},
    out: { warn: () => undefined },
    auditLog: '/work/site/audit.jsonl',
    actor: 'tester',
    config: {
      hsms: new Map([
        profile('typed', { kind: 'prompt' }),
        profile('envpin', { kind: 'env', name: 'HSM_PIN' }),
        profile('filepin', { kind: 'file', path: '/run/pin' }),
        profile('escrowed', { kind: 'escrow', dir: '/srv/escrow-2' }),
        profile(
          'nss',
          { kind: 'env', name: 'NSS_PIN' },
          { libraryParameters: "configdir='sql:/n'" },
        ),
      ] as [string, never][]),
    },
  } as unknown as Context;
}

const WRONG = new CustosError(
  'E_PIN_INCORRECT',
  'the PIN was not accepted (log in to token "t")',
  'x',
);

beforeEach(() => {
  opened.locations.length = 0;
  opened.forPinChange.length = 0;
  opened.failure = undefined;
});

describe('where the token is looked for', () => {
  test('a profile: its module, token and library parameters; otherwise the embedded store', async () => {
    await openHsm(ctx(), 'nss', false);
    await openHsm(ctx(), 'typed', false);
    await openHsm(ctx(), 'scratch', true);
    await openHsmAsSecurityOfficer(ctx(), 'nss');
    expect(opened.locations).toEqual([
      { module: '/opt/hsm/lib.so', token: 'nss-token', libraryParameters: "configdir='sql:/n'" },
      { module: '/opt/hsm/lib.so', token: 'typed-token' },
      {
        module: '/usr/lib/softhsm/libsofthsm2.so',
        token: 'scratch',
        where: 'the embedded store in /work/site',
      },
    ]);
    expect(opened.forPinChange).toEqual([opened.locations[0]]);
  });
});

describe('a wrong PIN is explained by where it came from', () => {
  test.each([
    ['typed', /^the PIN typed was wrong: find the right PIN/],
    ['envpin', /^\$HSM_PIN holds a wrong PIN: find the right PIN/],
    ['filepin', /^the PIN file \/run\/pin holds a wrong PIN: find the right PIN/],
    ['scratch', /^the PIN typed was wrong/],
  ])('%s', async (name, hint) => {
    opened.failure = WRONG;
    const e = (await openHsm(ctx(), name, false).catch((x: unknown) => x)) as CustosError;
    expect(e.code).toBe('E_PIN_INCORRECT');
    expect(e.message).toBe(WRONG.message);
    expect(e.hint).toMatch(hint);
    expect(e.hint).toMatch(/each wrong PIN counts towards locking the token\)$/);
  });

  test('a PIN reassembled from an escrow: the escrow may be an old one', async () => {
    opened.failure = WRONG;
    const e = (await openHsm(ctx(), 'escrowed', false).catch((x: unknown) => x)) as CustosError;
    expect(e.code).toBe('E_PIN_INCORRECT');
    expect(e.message).toBe(
      'token "escrowed-token" did not accept the PIN reassembled from the escrow in /srv/escrow-2 (CKR_PIN_INCORRECT)',
    );
    expect(e.hint).toMatch(/point the profile at the newest escrow directory/);
  });

  test('any other failure passes through unchanged', async () => {
    for (const failure of [
      new CustosError('E_PIN_LOCKED', 'locked'),
      new CustosError('E_HSM', 'device'),
      new Error('plain'),
    ]) {
      opened.failure = failure;
      await expect(openHsm(ctx(), 'envpin', false)).rejects.toBe(failure);
    }
  });
});
