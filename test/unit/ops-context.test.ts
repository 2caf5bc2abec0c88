// What every command runs with (src/ops/context.ts): where custos.yaml and the audit log are, who
// acts, and how a profile's module, parameters and PIN sources resolve. Files are in a temporary
// directory; PINs are read for real from the environment and from files.
import { afterAll, describe, expect, test } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { EMPTY_CONFIG } from '../../src/core/config.js';
import {
  actorName,
  auditLogPath,
  hsmTarget,
  loadConfig,
  pinReader,
  soPinReader,
  type Context,
} from '../../src/ops/context.js';
import type { Output } from '../../src/io/output.js';
import type { TokenIdentity } from '../../src/core/bundle.js';
import { catchCustos, catchCustosAsync } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'custos-ops-context-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CONFIG = `hsms:
  lab:
    module: lib/libsofthsm2.so
    token: lab-token
    pin: file:secrets/pin
    so-pin: file:../so-pin
  nss:
    module: /usr/lib/x86_64-linux-gnu/libsoftokn3.so
    library-parameters: "configdir='sql:/srv/nss' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
    token: NSS Certificate DB
    pin: env:NSS_PIN
    so-pin: env:NSS_SO_PIN
  escrowed:
    module: ./lib/libsofthsm2.so
    token: vault
    pin: escrow:pin-escrow
`;

function context(cwd: string, env: NodeJS.ProcessEnv = {}, more: Partial<Context> = {}) {
  const warnings: string[] = [];
  const out = { warn: (m: string) => warnings.push(m) } as unknown as Output;
  const ctx: Context = {
    cwd,
    env,
    config: loadConfig(cwd),
    out,
    auditLog: join(cwd, 'audit.jsonl'),
    actor: 'tester',
    ...more,
  };
  return { ctx, warnings };
}

describe('loadConfig', () => {
  const dir = join(root, 'site');
  const elsewhere = join(root, 'elsewhere');
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  mkdirSync(elsewhere, { recursive: true });
  writeFileSync(join(dir, 'custos.yaml'), CONFIG);

  test('paths in custos.yaml are relative to the file: module, pin file, so-pin file, escrow directory', () => {
    for (const [cwd, explicit] of [
      [dir, undefined],
      [elsewhere, '../site/custos.yaml'],
      ['/', join(dir, 'custos.yaml')],
    ] as const) {
      const c = loadConfig(cwd, explicit);
      const lab = c.hsms.get('lab');
      expect(lab?.module).toBe(join(dir, 'lib/libsofthsm2.so'));
      expect(lab?.pin).toEqual({ kind: 'file', path: join(dir, 'secrets/pin') });
      expect(lab?.soPin).toEqual({ kind: 'file', path: join(root, 'so-pin') });
      expect(c.hsms.get('escrowed')?.pin).toEqual({
        kind: 'escrow',
        dir: join(dir, 'pin-escrow'),
      });
      expect(c.hsms.get('escrowed')?.module).toBe(join(dir, 'lib/libsofthsm2.so'));
    }
  });

  test('absolute paths, environment variables and library parameters are kept as written', () => {
    const nss = loadConfig(dir).hsms.get('nss');
    expect(nss?.module).toBe('/usr/lib/x86_64-linux-gnu/libsoftokn3.so');
    expect(nss?.libraryParameters).toBe(
      "configdir='sql:/srv/nss' certPrefix='' keyPrefix='' secmod='secmod.db' flags=",
    );
    expect(nss?.pin).toEqual({ kind: 'env', name: 'NSS_PIN' });
    expect(nss?.soPin).toEqual({ kind: 'env', name: 'NSS_SO_PIN' });
  });

  test('no custos.yaml in the working directory is no profiles; a named file that is missing is an error', () => {
    expect(loadConfig(elsewhere)).toBe(EMPTY_CONFIG);
    const e = catchCustos(() => loadConfig(elsewhere, 'missing.yaml'), 'E_FILE');
    expect(e.message).toBe(`configuration file ${join(elsewhere, 'missing.yaml')} does not exist`);
  });

  test('a custos.yaml that is wrong is E_CONFIG with the file name', () => {
    const bad = join(root, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(
      join(bad, 'custos.yaml'),
      'hsms:\n  x:\n    module: m\n    token: t\n    pin: 1234\n',
    );
    const e = catchCustos(() => loadConfig(bad), 'E_CONFIG');
    expect(e.message).toMatch(/^custos\.yaml:5: /);
    expect(e.message).not.toContain('1234');
  });
});

describe('auditLogPath and actorName', () => {
  test('--audit-log, else CUSTOS_AUDIT_LOG, else .custos/audit.jsonl, relative to the working directory', () => {
    const env = { CUSTOS_AUDIT_LOG: 'logs/a.jsonl' };
    expect(auditLogPath('/w', env, 'x.jsonl')).toBe('/w/x.jsonl');
    expect(auditLogPath('/w', env, '/abs/x.jsonl')).toBe('/abs/x.jsonl');
    expect(auditLogPath('/w', env)).toBe('/w/logs/a.jsonl');
    expect(auditLogPath('/w', { CUSTOS_AUDIT_LOG: '' })).toBe('/w/.custos/audit.jsonl');
    expect(auditLogPath('/w', {})).toBe('/w/.custos/audit.jsonl');
  });

  test('--actor, else CUSTOS_ACTOR, else the login name', () => {
    expect(actorName({ CUSTOS_ACTOR: 'ops-bot' }, 'Ana Ruiz')).toBe('Ana Ruiz');
    expect(actorName({ CUSTOS_ACTOR: 'ops-bot' })).toBe('ops-bot');
    expect(actorName({ CUSTOS_ACTOR: '' })).toBe(userInfo().username);
    expect(actorName({})).toBe(userInfo().username);
  });

  test.each(['a\nb', 'evil\u001b[2J', 'tab\there', 'nul\u0000', 'bidi\u202e'])(
    'an actor name with control characters is refused (%j)',
    (name) => {
      const e = catchCustos(() => actorName({}, name), 'E_USAGE');
      expect(e.message).toBe(
        'the actor name must be printable text (no control characters or line breaks)',
      );
      catchCustos(() => actorName({ CUSTOS_ACTOR: name }), 'E_USAGE');
    },
  );
});

describe('hsmTarget: a profile, or a token of the embedded store', () => {
  const dir = join(root, 'targets');
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(join(dir, 'custos.yaml'), CONFIG);

  test('a profile name: its module, parameters, token and PIN sources', () => {
    const { ctx } = context(dir);
    expect(hsmTarget(ctx, 'nss')).toEqual({
      name: 'nss',
      module: '/usr/lib/x86_64-linux-gnu/libsoftokn3.so',
      libraryParameters:
        "configdir='sql:/srv/nss' certPrefix='' keyPrefix='' secmod='secmod.db' flags=",
      token: 'NSS Certificate DB',
      pinSource: { kind: 'env', name: 'NSS_PIN' },
      soPinSource: { kind: 'env', name: 'NSS_SO_PIN' },
    });
    expect(hsmTarget(ctx, 'lab').libraryParameters).toBeUndefined();
  });

  test('any other name is an embedded token: no module; PINs from CUSTOS_PIN and CUSTOS_SO_PIN when set, else asked', () => {
    const asked = hsmTarget(context(dir).ctx, 'scratch');
    expect(asked).toEqual({
      name: 'scratch',
      token: 'scratch',
      pinSource: { kind: 'prompt' },
      soPinSource: { kind: 'prompt' },
    });
    const set = hsmTarget(context(dir, { CUSTOS_PIN: '1234', CUSTOS_SO_PIN: '' }).ctx, 'scratch');
    expect(set.module).toBeUndefined();
    expect(set.pinSource).toEqual({ kind: 'env', name: 'CUSTOS_PIN' });
    // an empty variable counts as unset
    expect(set.soPinSource).toEqual({ kind: 'prompt' });
  });
});

describe('pinReader and soPinReader', () => {
  const dir = join(root, 'pins');
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(join(dir, 'custos.yaml'), CONFIG);
  const token = { label: 'lab-token' } as TokenIdentity;

  test('a PIN file, relative to custos.yaml, read without its final newline; a loose mode is warned about', async () => {
    writeFileSync(join(dir, 'secrets/pin'), '24681357\n', { mode: 0o600 });
    chmodSync(join(dir, 'secrets/pin'), 0o600);
    const { ctx, warnings } = context(join(dir, 'secrets'), {}, { config: loadConfig(dir) });
    expect(await pinReader(ctx, hsmTarget(ctx, 'lab'))(token)).toBe('24681357');
    expect(warnings).toEqual([]);
    chmodSync(join(dir, 'secrets/pin'), 0o644);
    expect(await pinReader(ctx, hsmTarget(ctx, 'lab'))(token)).toBe('24681357');
    expect(warnings).toEqual([
      `PIN file ${join(dir, 'secrets/pin')} can be read by other users: chmod 600 it`,
    ]);
    expect(warnings.join('')).not.toContain('24681357');
  });

  test("PINs from the context's environment, not the process's", async () => {
    const { ctx } = context(dir, { NSS_PIN: 'user-pin', NSS_SO_PIN: 'so-pin' });
    const target = hsmTarget(ctx, 'nss');
    expect(await pinReader(ctx, target)(token)).toBe('user-pin');
    expect(await soPinReader(ctx, target)()).toBe('so-pin');
    const embedded = context(dir, { CUSTOS_PIN: 'embedded-pin' }).ctx;
    expect(await pinReader(embedded, hsmTarget(embedded, 'scratch'))(token)).toBe('embedded-pin');
  });

  test('a variable that is not set: E_PIN_SOURCE naming it and the token, without reading anything else', async () => {
    const { ctx } = context(dir, {});
    const e = await catchCustosAsync(
      () => pinReader(ctx, hsmTarget(ctx, 'nss'))(token),
      'E_PIN_SOURCE',
    );
    expect(e.message).toBe(
      'the PIN of token "NSS Certificate DB" should be in $NSS_PIN, which is not set',
    );
    const so = await catchCustosAsync(
      () => soPinReader(ctx, hsmTarget(ctx, 'nss'))(),
      'E_PIN_SOURCE',
    );
    expect(so.message).toBe(
      'the PIN of the security officer of token "NSS Certificate DB" should be in $NSS_SO_PIN, which is not set',
    );
  });

  test('a PIN reassembled by a ceremony is used for its own profile only', async () => {
    const override = { hsm: 'nss', pin: async () => 'from-ceremony' };
    const { ctx } = context(
      dir,
      { NSS_PIN: 'user-pin', CUSTOS_PIN: 'embedded' },
      {
        pinOverride: override,
      },
    );
    expect(pinReader(ctx, hsmTarget(ctx, 'nss'))).toBe(override.pin);
    expect(await pinReader(ctx, hsmTarget(ctx, 'scratch'))(token)).toBe('embedded');
  });

  test('an escrowed PIN is unlocked by the unlocker the context was given, or refused without one', async () => {
    const asked: string[] = [];
    const { ctx } = context(
      dir,
      {},
      {
        unlockEscrowedPin: async (_c, escrowDir, t) => {
          asked.push(`${escrowDir} ${t.label}`);
          return 'from-escrow';
        },
      },
    );
    expect(await pinReader(ctx, hsmTarget(ctx, 'escrowed'))(token)).toBe('from-escrow');
    expect(asked).toEqual([`${join(dir, 'pin-escrow')} lab-token`]);
    const { ctx: bare } = context(dir);
    const e = await catchCustosAsync(
      () => pinReader(bare, hsmTarget(bare, 'escrowed'))(token),
      'E_CONFIG',
    );
    expect(e.message).toContain('escrowed');
  });
});
