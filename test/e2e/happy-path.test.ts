/**
 * Backup and restore between two real SoftHSM2 tokens named by custos.yaml profiles: inventory,
 * backup (bundle + 0600 share files, the non-extractable key skipped), restore with exactly the
 * threshold, and the target's inventory compared with the source's.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import {
  STANDARD_KEYS,
  TIMEOUT,
  tokenAesKcv,
  cleanup,
  custos,
  expectNoSecrets,
  expectOk,
  json,
  listObjects,
  modeOf,
  type Custodian,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { backUp, sourceAndTarget } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

type Row = {
  label: string;
  id: string;
  class: string;
  keyType: string;
  bits: number;
  extractable: boolean;
  sensitive: boolean;
  checkValue: { method: string; value: string };
};

let ws: Workspace;
let source: TokenRef;
let target: TokenRef;
let custodians: Custodian[];
let policy: string;

beforeAll(() => {
  ({ ws, source, target, custodians, policy } = sourceAndTarget({
    workspace: 'happy',
    source: { label: 'vault-primary', profile: 'primary' },
    target: { label: 'dr-target', profile: 'dr' },
    custodians: ['alice', 'bob', 'carol'],
    threshold: 2,
  }));
});

afterAll(() => cleanup(ws));

const key = (r: { class: string; label: string; id: string }) => `${r.class}/${r.label}/${r.id}`;

describe('backup and restore between profile tokens', () => {
  let before: Row[];

  it("inventory --json lists every key pkcs11-tool made, with check values that match the HSM's own", () => {
    const inv = json<{ token: string; rows: Row[] }>(
      custos(ws, ['inventory', '--hsm', 'primary', '--json']),
    );
    expect(inv.token).toBe('vault-primary');
    before = inv.rows;
    const secretAndPrivate = inv.rows.filter((r) => r.class !== 'public');
    expect(secretAndPrivate.map((r) => `${r.label}/${r.id}`).sort()).toEqual(
      STANDARD_KEYS.map((k) => `${k.label}/${k.id}`).sort(),
    );
    expect(
      inv.rows
        .filter((r) => r.class === 'public')
        .map((r) => r.label)
        .sort(),
    ).toEqual(['ec-key', 'rsa-key']);
    for (const r of inv.rows) {
      expect(r.checkValue.method, key(r)).not.toBe('none');
      expect(r.checkValue.value, key(r)).toMatch(/^[0-9a-f]{6,16}$/);
    }
    const byKey = new Map(inv.rows.map((r) => [key(r), r]));
    expect(byKey.get('secret/bound-key/05')?.extractable).toBe(false);
    expect(byKey.get('secret/aes-key/01')).toMatchObject({
      keyType: 'AES',
      bits: 256,
      extractable: true,
      sensitive: true,
      checkValue: { method: 'aes-ecb-zero' },
    });
    expect(byKey.get('private/rsa-key/03')).toMatchObject({
      keyType: 'RSA',
      bits: 2048,
      checkValue: { method: 'spki-sha256' },
    });
    expect(byKey.get('private/ec-key/04')).toMatchObject({
      keyType: 'EC',
      bits: 256,
      checkValue: { method: 'spki-sha256' },
    });
    // a private key and its public key carry the same check value
    expect(byKey.get('private/rsa-key/03')?.checkValue.value).toBe(
      byKey.get('public/rsa-key/03')?.checkValue.value,
    );

    // outside oracle: the AES KCV is AES(key, 0^128) computed by the HSM through pkcs11-tool
    expect(byKey.get('secret/aes-key/01')?.checkValue.value).toBe(tokenAesKcv(ws, source, '01'));
  });

  it('backup writes the bundle and one 0600 share per custodian, and skips the non-extractable key on stderr', () => {
    const r = backUp(ws, 'primary', 'primary.bundle');
    expect(r.stderr).toMatch(
      /^custos: warning: skipped secret key "bound-key" \(id 05\): not extractable/m,
    );
    expect(r.stdout).toMatch(/4 keys backed up, 1 skipped/);
    expect(modeOf(join(ws.dir, 'primary.bundle'))).toBe(0o600);
    const dir = join(ws.dir, 'primary.bundle.shares');
    expect(readdirSync(dir).sort()).toEqual(['alice.share', 'bob.share', 'carol.share']);
    for (const c of custodians) expect(modeOf(join(dir, `${c.id}.share`)), c.id).toBe(0o600);
    expect(statSync(dir).mode & 0o077).toBe(0);
    // no temp files left behind next to the outputs
    expect(readdirSync(ws.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('backup --json reports the skipped key and each share file', () => {
    const out = json(
      custos(ws, [
        'backup',
        '--hsm',
        'primary',
        '--policy',
        policy,
        '--out',
        'second.bundle',
        '--json',
      ]),
    );
    expect(out.skipped).toEqual([
      expect.objectContaining({
        class: 'secret',
        label: 'bound-key',
        id: '05',
        reason: expect.stringMatching(/not extractable/),
      }),
    ]);
    expect(out.keys.map((k: Row) => k.label).sort()).toEqual([
      'aes-key',
      'ec-key',
      'hmac-key',
      'rsa-key',
    ]);
    expect(out.threshold).toBe(2);
    expect(out.total).toBe(3);
    expect(
      out.shares.map((s: { custodian: string; path: string }) => `${s.custodian}:${s.path}`),
    ).toEqual(custodians.map((c) => `${c.id}:second.bundle.shares/${c.id}.share`));
    for (const k of out.keys as Row[]) {
      const inv = before.find((b) => key(b) === key(k));
      expect(k.checkValue, key(k)).toEqual(inv?.checkValue);
    }
  });

  it('each custodian can verify their own share alone', () => {
    for (const c of custodians) {
      const r = expectOk(
        custos(ws, [
          'shares',
          'verify',
          '--bundle',
          'primary.bundle',
          '--share',
          `primary.bundle.shares/${c.id}.share`,
          '--identity',
          c.identity,
        ]),
      );
      expect(r.stdout).toContain(`custodian  ${c.id}`);
    }
  });

  it('restore with exactly the threshold of shares recreates every extractable key in the target token', () => {
    expect(listObjects(ws, target)).toEqual([]);
    const [, bob, carol] = custodians as [Custodian, Custodian, Custodian];
    const out = json(
      custos(ws, [
        'restore',
        '--bundle',
        'primary.bundle',
        '--hsm',
        'dr',
        '--json',
        '--share',
        'primary.bundle.shares/bob.share',
        '--share',
        'primary.bundle.shares/carol.share',
        '--identity',
        bob.identity,
        '--identity',
        carol.identity,
      ]),
    );
    expect(out.custodians.sort()).toEqual(['bob', 'carol']);
    expect(out.rejected).toEqual([]);
    expect(
      out.keys.map((k: { label: string; status: string }) => `${k.label}:${k.status}`).sort(),
    ).toEqual(['aes-key:restored', 'ec-key:restored', 'hmac-key:restored', 'rsa-key:restored']);
    expect(out.publicObjects).toBe(2);
    for (const k of out.keys) expect(k.proof, k.label).not.toBe('none');
  });

  it('the target inventory shows the same check values as the source, and no non-extractable key', () => {
    const after = json<{ token: string; rows: Row[] }>(
      custos(ws, ['inventory', '--hsm', 'dr', '--json']),
    );
    expect(after.token).toBe('dr-target');
    const expected = before
      .filter((r) => !(r.label === 'bound-key'))
      .map((r) => `${key(r)}=${r.keyType}:${r.checkValue.method}:${r.checkValue.value}`)
      .sort();
    expect(
      after.rows
        .map((r) => `${key(r)}=${r.keyType}:${r.checkValue.method}:${r.checkValue.value}`)
        .sort(),
    ).toEqual(expected);
  });

  it('restored secret and private keys are CKA_SENSITIVE, as inventory and pkcs11-tool -O both show', () => {
    const after = json<{ rows: Row[] }>(custos(ws, ['inventory', '--hsm', 'dr', '--json']));
    for (const r of after.rows.filter((x) => x.class !== 'public')) {
      expect(r.sensitive, key(r)).toBe(true);
      expect(r.extractable, key(r)).toBe(true);
    }
    const listed = listObjects(ws, target);
    expect(listed.map((o) => `${o.kind}/${o.label}`).sort()).toEqual([
      'Private Key/ec-key',
      'Private Key/rsa-key',
      'Public Key/ec-key',
      'Public Key/rsa-key',
      'Secret Key/aes-key',
      'Secret Key/hmac-key',
    ]);
    for (const o of listed.filter((x) => x.kind !== 'Public Key')) {
      expect(o.access.split(', '), `${o.kind} ${o.label}`).toContain('sensitive');
    }
  });

  it('profile runs leave the working directory alone: no embedded store appears, only the audit log', () => {
    expect(readdirSync(join(ws.dir, '.custos'))).toEqual(['audit.jsonl']);
  });

  it('no PIN, identity, share value or KEK appears in any output', () => {
    expectNoSecrets(ws);
  });
});
