// An HSM-to-HSM copy between tokens that share no transport mechanism stops before any key is
// wrapped, names the mechanisms it tried, and leaves both tokens as they were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CUSTOS = resolve(__dirname, '..', '..', 'bin', 'custos');
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = 'nomech-pin';
// SoftHSM's allow-list: AES key wrap and RSA, but no RSA-OAEP, so no transport can be agreed.
const MECHANISMS = [
  'CKM_AES_KEY_GEN',
  'CKM_AES_KEY_WRAP_PAD',
  'CKM_AES_ECB',
  'CKM_RSA_PKCS_KEY_PAIR_GEN',
  'CKM_RSA_PKCS',
  'CKM_SHA256_RSA_PKCS',
];

let dir: string;
let env: NodeJS.ProcessEnv;

function objects(label: string): string {
  return execFileSync(
    'pkcs11-tool',
    ['--module', MODULE, '--token-label', label, '--login', '--pin', PIN, '--list-objects'],
    { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-nomech-'));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(
    join(dir, 'softhsm2.conf'),
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.mechanisms = ${MECHANISMS.join(',')}\n`,
  );
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
    TOKEN_PIN: PIN,
  };
  for (const label of ['left', 'right']) {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', 'nomech-so', '--pin', PIN],
      { env, stdio: 'ignore' },
    );
  }
  execFileSync(
    'pkcs11-tool',
    [
      '--module',
      MODULE,
      '--token-label',
      'left',
      '--login',
      '--pin',
      PIN,
      '--keygen',
      '--key-type',
      'AES:32',
      '--label',
      'k',
      '--id',
      '01',
      '--extractable',
      '--sensitive',
    ],
    { env, stdio: 'ignore' },
  );
  writeFileSync(
    join(dir, 'custos.yaml'),
    [
      'hsms:',
      ...['left', 'right'].flatMap((l) => [
        `  ${l}:`,
        `    module: ${MODULE}`,
        `    token: ${l}`,
        '    pin: env:TOKEN_PIN',
      ]),
    ].join('\n') + '\n',
  );
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('copy without a common transport mechanism', () => {
  it('is refused with E_MECHANISM, and neither token changes', () => {
    expect(
      execFileSync('pkcs11-tool', ['--module', MODULE, '--list-mechanisms'], {
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ).not.toMatch(/OAEP/);
    const [left, right] = [objects('left'), objects('right')];
    const r = spawnSync(CUSTOS, ['backup', '--hsm', 'left', '--to-hsm', 'right'], {
      cwd: dir,
      env,
      encoding: 'utf8',
    });
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(
      /^custos: error: tokens "left" and "right" share no transport mechanism \[E_MECHANISM\]$/m,
    );
    expect(r.stderr).toMatch(/^custos: hint: .*RSA-OAEP/m);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain(PIN);
    expect([objects('left'), objects('right')]).toEqual([left, right]);
  }, 60_000);
});
