// A copy into a token that runs out of space. The file size limit (ulimit -f, with SIGXFSZ
// ignored) makes SoftHSM's object writes fail part-way. SoftHSM 2.6 does not check those writes:
// it reports success and the key is missing from the token at the next start. Whatever the
// module reports, a later run, with space again, must finish the job with every key exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { BIN, sharedPinStore, type SharedPinStore } from './helpers.js';

const PIN = 'space-pin';

let store: SharedPinStore;

const labels = (label: string) => store.keyLabels(label).sort();

beforeAll(() => {
  store = sharedPinStore('custos-space-', ['full', 'small'], { pin: PIN, soPin: 'space-so' });
  const tool = (...args: string[]) => store.p11('full', [...args, '--extractable', '--sensitive']);
  for (const i of [1, 2, 3])
    tool('--keygen', '--key-type', 'AES:32', '--label', `aes-${i}`, '--id', `0${i}`);
  tool('--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa', '--id', '09');
}, 60_000);

afterAll(() => rmSync(store.dir, { recursive: true, force: true }));

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
      ['-c', `trap '' XFSZ; ulimit -f 2; exec "${BIN}" backup --hsm full --to-hsm small`],
      { cwd: store.dir, env: store.env, encoding: 'utf8' },
    );
    expect(starved.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
    const afterStarved = labels('small');
    expect(afterStarved).not.toEqual(expected); // space ran out: something is missing
    if (starved.status !== 0) expect(starved.stderr).toMatch(/^custos: error: .* \[E_[A-Z_]+\]$/m);

    const again = store.custos(['backup', '--hsm', 'full', '--to-hsm', 'small', '--json']);
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
