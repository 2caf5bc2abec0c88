/**
 * Re-running restores: a second run into the same token finds every key present and creates
 * nothing; a run after a partial restore finishes the job; a key that clashes with the bundle
 * (same label and id, different value) stops the restore before any write.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  TIMEOUT,
  cleanup,
  custos,
  describeRun,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  json,
  listObjects,
  makeCustodians,
  makeKey,
  makeStandardKeys,
  objectCount,
  p11,
  profileFor,
  snapshot,
  writeConfig,
  writePolicy,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let source: TokenRef;
let target: TokenRef;
let custodians: Custodian[];
const profiles: Profile[] = [];

beforeAll(() => {
  ws = workspace('rerun');
  source = initToken(ws, 'mainframe');
  target = initToken(ws, 'standby');
  makeStandardKeys(ws, source);
  profileFor(ws, profiles, source, 'mainframe');
  profileFor(ws, profiles, target, 'standby');
  writeConfig(ws, profiles);
  custodians = makeCustodians(ws, ['r1', 'r2', 'r3']);
  writePolicy(ws, 'policy.yaml', 2, custodians);
  expectOk(
    custos(ws, ['backup', '--hsm', 'mainframe', '--policy', 'policy.yaml', '--out', 'main.bundle']),
  );
});

afterAll(() => cleanup(ws));

function restore(hsm: string, extra: string[] = ['--json']): Run {
  return custos(ws, [
    'restore',
    '--bundle',
    'main.bundle',
    '--hsm',
    hsm,
    ...extra,
    '--share',
    'main.bundle.shares/r1.share',
    '--share',
    'main.bundle.shares/r3.share',
    '--identity',
    custodians[0]!.identity,
    '--identity',
    custodians[2]!.identity,
  ]);
}

const statuses = (out: { keys: { label: string; status: string }[] }) =>
  out.keys.map((k) => `${k.label}:${k.status}`).sort();
type Row = {
  label: string;
  id: string;
  class: string;
  checkValue: { method: string; value: string };
};
const checkValues = (hsm: string) =>
  json<{ rows: Row[] }>(custos(ws, ['inventory', '--hsm', hsm, '--json']))
    .rows.filter((r) => r.label !== 'bound-key')
    .map((r) => `${r.class}/${r.label}/${r.id}=${r.checkValue.value}`)
    .sort();

describe('restoring twice into the same token', () => {
  it('the first run restores every key', () => {
    const out = json(restore('standby'));
    expect(statuses(out)).toEqual([
      'aes-key:restored',
      'ec-key:restored',
      'hmac-key:restored',
      'rsa-key:restored',
    ]);
    expect(out.publicObjects).toBe(2);
    expect(objectCount(ws, target)).toBe(6);
  });

  it('the second run reports every key as present and creates nothing', () => {
    const files = snapshot(ws.dir);
    const objects = listObjects(ws, target);
    const out = json(restore('standby'));
    expect(statuses(out)).toEqual([
      'aes-key:present',
      'ec-key:present',
      'hmac-key:present',
      'rsa-key:present',
    ]);
    expect(out.publicObjects).toBe(0);
    expect(out.certificates).toBe(0);
    expect(listObjects(ws, target)).toEqual(objects);
    expect(snapshot(ws.dir)).toEqual(files);
    const table = expectOk(restore('standby', []));
    expect(table.stdout).toMatch(
      /token "standby": 0 keys restored, 4 already present, 0 public keys and 0 certificates recreated/,
    );
  });

  it('a run after a partial restore (a secret key and a public key missing) finishes the job', () => {
    p11(ws, target, ['--delete-object', '--type', 'secrkey', '--id', '01']);
    p11(ws, target, ['--delete-object', '--type', 'pubkey', '--id', '03']);
    expect(objectCount(ws, target)).toBe(4);
    const out = json(restore('standby'));
    expect(statuses(out)).toEqual([
      'aes-key:restored',
      'ec-key:present',
      'hmac-key:present',
      'rsa-key:present',
    ]);
    expect(out.publicObjects).toBe(1);
    expect(objectCount(ws, target)).toBe(6);
    expect(checkValues('standby')).toEqual(checkValues('mainframe'));
  });

  it('a run after a crash between unwrapping an EC private key and creating its public key finishes the job', () => {
    // the EC private key is on the token with the right value; only its public key object is
    // missing
    p11(ws, target, ['--delete-object', '--type', 'pubkey', '--id', '04']);
    expect(objectCount(ws, target)).toBe(5);
    const r = restore('standby');
    expect(r.status, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(statuses(out)).toEqual([
      'aes-key:present',
      'ec-key:present',
      'hmac-key:present',
      'rsa-key:present',
    ]);
    expect(out.publicObjects).toBe(1);
    expect(objectCount(ws, target)).toBe(6);
  });
});

describe('a conflicting key in the target', () => {
  it('stops the restore before any write, naming each clash', () => {
    const lookalike = initToken(ws, 'lookalike');
    profileFor(ws, profiles, lookalike, 'lookalike');
    writeConfig(ws, profiles);
    // same class, label and id as keys in the bundle, but different key material
    makeKey(ws, lookalike, { kind: 'aes', label: 'aes-key', id: '01' });
    makeKey(ws, lookalike, { kind: 'rsa', label: 'rsa-key', id: '03' });
    const objects = listObjects(ws, lookalike);
    expect(objects).toHaveLength(3);
    const files = snapshot(ws.dir);

    const r = restore('lookalike');
    const line = expectUserError(r, 7, /nothing was written/);
    // The AES key, the RSA private key and the RSA public key each clash.
    expect(line).toMatch(/3 objects on token "lookalike" conflict with the bundle/);
    expect(r.stderr).toMatch(
      /^custos: {3}"aes-key" \(id 01\): the token already has a secret key/m,
    );
    expect(r.stderr).toMatch(
      /^custos: {3}"rsa-key" \(id 03\): the token already has a private key/m,
    );
    expect(r.stderr).toMatch(
      /^custos: {3}"rsa-key" \(id 03\): the token already has a different public key/m,
    );
    // nothing else from the bundle was written first: not hmac-key, not ec-key
    expect(listObjects(ws, lookalike)).toEqual(objects);
    expect(snapshot(ws.dir)).toEqual(files);
  });

  it('no PIN, identity, share value or KEK appears in any output', () => {
    expectNoSecrets(ws);
  });
});
