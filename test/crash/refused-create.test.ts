/**
 * A create the token refuses leaves nothing behind. SoftHSM 2.6 writes an object to its store
 * before it checks the template, so when it refuses a certificate for want of CKA_SUBJECT
 * (CKR_TEMPLATE_INCOMPLETE) an unlabelled object stays on the token unless custos looks for it. The
 * bundle here is the spec's ok-keys.bundle with the subject taken out of its certificate, MACed
 * again and its shares signed again (as someone holding the KEK and the dealer key could); the
 * objects on the target are counted with pkcs11-tool before and after.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BUNDLE_MAC_PURPOSE } from '../../src/core/bundle.js';
import { parseShare } from '../../src/core/share.js';
import { hmacWithKek } from '../../src/crypto/aes.js';
import { sha256Hex } from '../../src/crypto/check-values.js';
import { signerFromSecret } from '../../src/crypto/ed25519.js';
import { signShare } from '../unit/fixtures.js';
import {
  ROOT,
  TIMEOUT,
  cleanup,
  custos,
  describeRun,
  expectOk,
  initToken,
  listObjects,
  mustRun,
  profileFor,
  writeConfig,
  type Profile,
  type TokenRef,
  type Workspace,
  workspace,
} from '../e2e/helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const VECTORS = join(ROOT, 'spec', 'vectors');
const manifest = JSON.parse(readFileSync(join(VECTORS, 'MANIFEST.json'), 'utf8')) as {
  keys: {
    kek: string;
    dealer: { seed: string };
    custodians: Record<string, { ageIdentity: string; ageRecipient: string }>;
  };
};
const CUSTODIANS = ['hale-llp', 'okafor-law'];

let ws: Workspace;
const profiles: Profile[] = [];
let refusing: TokenRef;
let control: TokenRef;

/**
 * The spec bundle with `edit` applied to its text, MACed again with the spec KEK, and two of its
 * shares signed again with the spec dealer key over the new bytes and encrypted with `age`.
 */
function forge(name: string, edit: (text: string) => string): string[] {
  const original = readFileSync(join(VECTORS, 'bundle', 'ok-keys.bundle'), 'utf8');
  const authenticated = Buffer.from(edit(original.slice(0, original.indexOf('\n--- ') + 1)));
  const mac = hmacWithKek(
    Buffer.from(manifest.keys.kek, 'hex'),
    BUNDLE_MAC_PURPOSE,
    authenticated,
  ).toString('base64');
  writeFileSync(
    join(ws.dir, `${name}.bundle`),
    Buffer.concat([authenticated, Buffer.from(`--- hmac-sha256 ${mac}\n`)]),
  );
  const dealer = signerFromSecret(
    Buffer.concat([
      Buffer.from('302e020100300506032b657004220420', 'hex'),
      Buffer.from(manifest.keys.dealer.seed, 'hex'),
    ]),
  );
  const args = ['restore', '--bundle', `${name}.bundle`];
  for (const c of CUSTODIANS) {
    const share = parseShare(c, readFileSync(join(VECTORS, 'share', `ok-${c}.share`), 'utf8'));
    const plain = join(ws.dir, `${name}-${c}.plain`);
    writeFileSync(
      plain,
      signShare(dealer, { ...share.doc, bundleDigest: sha256Hex(authenticated) }),
    );
    const file = join(ws.dir, `${name}-${c}.share`);
    const recipient = manifest.keys.custodians[c]?.ageRecipient as string;
    mustRun('age', ['-r', recipient, '-o', file, plain], {
      env: { PATH: process.env.PATH! },
      cwd: ws.dir,
    });
    args.push('--share', file, '--identity', join(ws.dir, `${c}.key`));
  }
  return args;
}

beforeAll(() => {
  ws = workspace('refused-create');
  refusing = initToken(ws, 'rc-refusing');
  control = initToken(ws, 'rc-control');
  profileFor(ws, profiles, refusing, 'rc-refusing');
  profileFor(ws, profiles, control, 'rc-control');
  writeConfig(ws, profiles);
  for (const c of CUSTODIANS)
    writeFileSync(join(ws.dir, `${c}.key`), `${manifest.keys.custodians[c]?.ageIdentity}\n`, {
      mode: 0o600,
    });
});

afterAll(() => cleanup(ws));

describe('a create the token refuses', () => {
  it('control: the bundle forged without a change restores (key, public key, certificate)', () => {
    const args = forge('same', (t) => t);
    const r = expectOk(custos(ws, [...args, '--hsm', 'rc-control', '--json']));
    expect(JSON.parse(r.stdout).certificates).toBe(1);
    const kinds = listObjects(ws, control).map((o) => `${o.kind}:${o.label}`);
    expect(kinds.sort()).toEqual([
      'Certificate:tls-ec',
      'Private Key:tls-ec',
      'Public Key:tls-ec',
      'Secret Key:api-hmac',
      'Secret Key:payments-aes-01',
    ]);
  });

  it('a certificate with no subject is refused, and the object SoftHSM wrote for it is removed', () => {
    const args = forge('nosubject', (t) => {
      const edited = t.replace(/\n\s+"subject": "[0-9a-f]+",(?=\n\s+"issuer")/, '');
      expect(edited).not.toBe(t);
      return edited;
    });
    expect(listObjects(ws, refusing)).toEqual([]);
    const r = custos(ws, [...args, '--hsm', 'rc-refusing']);
    expect(r.status, describeRun(r)).toBe(6);
    expect(r.stderr).toMatch(
      /^custos: error: .*create certificate "tls-ec" on token "rc-refusing".*CKR_TEMPLATE_INCOMPLETE.*\[E_HSM\]$/m,
    );
    // Counted from outside: not the key, not its public key, not an unlabelled object.
    expect(listObjects(ws, refusing)).toEqual([]);
    expect(r.stderr).toMatch(
      /^custos: warning: token "rc-refusing" refused certificate "tls-ec" but had written an object for it; custos removed it$/m,
    );
    // And a second try says the same and leaves the same: nothing.
    const again = custos(ws, [...args, '--hsm', 'rc-refusing']);
    expect(again.status, describeRun(again)).toBe(6);
    expect(again.stderr).not.toMatch(/no label and no id/);
    expect(listObjects(ws, refusing)).toEqual([]);
  });
});
