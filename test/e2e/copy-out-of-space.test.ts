// A copy into a token that runs out of space. The file size limit (ulimit -f, with SIGXFSZ
// ignored) makes SoftHSM's object writes fail part-way. SoftHSM 2.6 does not check those writes:
// it reports success and the key is missing from the token at the next start. Whatever the
// module reports, a later run, with space again, must finish the job with every key exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CUSTOS = resolve(__dirname, '..', '..', 'bin', 'custos');
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = 'space-pin';

let dir: string;
let env: NodeJS.ProcessEnv;

function labels(label: string): string[] {
  const out = execFileSync(
    'pkcs11-tool',
    ['--module', MODULE, '--token-label', label, '--login', '--pin', PIN, '--list-objects'],
    { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const found: string[] = [];
  let kind = '';
  for (const line of out.split('\n')) {
    const k = /^(\w+) Key Object/.exec(line);
    if (k) kind = (k[1] ?? '').toLowerCase();
    const l = /^\s+label:\s+(.*)$/.exec(line);
    if (l) found.push(`${kind}:${l[1]}`);
  }
  return found.sort();
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-space-'));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(
    join(dir, 'softhsm2.conf'),
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
    TOKEN_PIN: PIN,
  };
  for (const label of ['full', 'small']) {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', 'space-so', '--pin', PIN],
      { env, stdio: 'ignore' },
    );
  }
  const tool = (...args: string[]) =>
    execFileSync(
      'pkcs11-tool',
      [
        '--module',
        MODULE,
        '--token-label',
        'full',
        '--login',
        '--pin',
        PIN,
        ...args,
        '--extractable',
        '--sensitive',
      ],
      { env, stdio: 'ignore' },
    );
  for (const i of [1, 2, 3])
    tool('--keygen', '--key-type', 'AES:32', '--label', `aes-${i}`, '--id', `0${i}`);
  tool('--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa', '--id', '09');
  writeFileSync(
    join(dir, 'custos.yaml'),
    [
      'hsms:',
      ...['full', 'small'].flatMap((l) => [
        `  ${l}:`,
        `    module: ${MODULE}`,
        `    token: ${l}`,
        '    pin: env:TOKEN_PIN',
      ]),
    ].join('\n') + '\n',
  );
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('copy into a token that runs out of space', () => {
  it('is finished by a later run, with every key exactly once', () => {
    const expected = labels('full');
    expect(expected).toEqual([
      'private:rsa',
      'public:rsa',
      'secret:aes-1',
      'secret:aes-2',
      'secret:aes-3',
    ]);
    // 2 KiB per file: the AES objects fit, the RSA private key object (over 2 KiB) does not.
    const starved = spawnSync(
      'bash',
      ['-c', `trap '' XFSZ; ulimit -f 2; exec "${CUSTOS}" backup --hsm full --to-hsm small`],
      { cwd: dir, env, encoding: 'utf8' },
    );
    expect(starved.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
    const afterStarved = labels('small');
    expect(afterStarved).not.toEqual(expected); // space ran out: something is missing
    if (starved.status !== 0) expect(starved.stderr).toMatch(/^custos: error: .* \[E_[A-Z_]+\]$/m);

    const again = spawnSync(CUSTOS, ['backup', '--hsm', 'full', '--to-hsm', 'small', '--json'], {
      cwd: dir,
      env,
      encoding: 'utf8',
    });
    expect(again.status, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as {
      keys: { label: string; status: string; proof: string }[];
    };
    expect(report.keys.map((k) => k.label).sort()).toEqual(['aes-1', 'aes-2', 'aes-3', 'rsa']);
    expect(report.keys.find((k) => k.label === 'rsa')?.status).toBe('restored');
    expect(report.keys.every((k) => k.proof !== 'none')).toBe(true);
    expect(labels('small')).toEqual(expected);
  }, 90_000);
});
