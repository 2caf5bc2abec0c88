// An HSM-to-HSM copy between tokens that share no transport mechanism stops before any key is
// wrapped, names the mechanisms it tried, and leaves both tokens as they were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { MODULE, sharedPinStore, type SharedPinStore } from './helpers.js';

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

let store: SharedPinStore;

beforeAll(() => {
  store = sharedPinStore('custos-nomech-', ['left', 'right'], { pin: PIN, soPin: 'nomech-so' }, [
    `slots.mechanisms = ${MECHANISMS.join(',')}`,
  ]);
  store.p11('left', [
    '--keygen',
    '--key-type',
    'AES:32',
    '--label',
    'k',
    '--id',
    '01',
    '--extractable',
    '--sensitive',
  ]);
}, 60_000);

afterAll(() => rmSync(store.dir, { recursive: true, force: true }));

describe('copy without a common transport mechanism', () => {
  it('is refused with E_MECHANISM, and neither token changes', () => {
    expect(
      execFileSync('pkcs11-tool', ['--module', MODULE, '--list-mechanisms'], {
        env: store.env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ).not.toMatch(/OAEP/);
    const [left, right] = [store.objects('left'), store.objects('right')];
    const r = store.custos(['backup', '--hsm', 'left', '--to-hsm', 'right']);
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(
      /^custos: error: tokens "left" and "right" share no transport mechanism \[E_MECHANISM\]$/m,
    );
    expect(r.stderr).toMatch(/^custos: hint: .*RSA-OAEP/m);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain(PIN);
    expect([store.objects('left'), store.objects('right')]).toEqual([left, right]);
  }, 60_000);
});
