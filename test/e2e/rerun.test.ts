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
  makeKey,
  objectCount,
  p11,
  profileFor,
  quorumArgs,
  snapshot,
  writeConfig,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { sourceAndTarget } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let target: TokenRef;
let custodians: Custodian[];
let profiles: Profile[];

beforeAll(() => {
  ({ ws, target, custodians, profiles } = sourceAndTarget({
    workspace: 'rerun',
    source: 'mainframe',
    target: 'standby',
    custodians: ['r1', 'r2', 'r3'],
    threshold: 2,
    backups: ['main.bundle'],
  }));
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
    ...quorumArgs('main.bundle', [custodians[0]!, custodians[2]!]),
  ]);
}

const statuses = (out: { keys: { label: string; status: string }[] }) =>
  out.keys.map((k) => `${k.label}:${k.status}`).sort();
/** What `statuses` gives when each of the four keys is `status`, unless named in `others`. */
const keysAre = (status: string, others: Record<string, string> = {}) =>
  ['aes-key', 'ec-key', 'hmac-key', 'rsa-key'].map((l) => `${l}:${others[l] ?? status}`);
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
    expect(statuses(out)).toEqual(keysAre('restored'));
    expect(out.publicObjects).toBe(2);
    expect(objectCount(ws, target)).toBe(6);
  });

  it('the second run reports every key as present and creates nothing', () => {
    const files = snapshot(ws.dir);
    const objects = listObjects(ws, target);
    const out = json(restore('standby'));
    expect(statuses(out)).toEqual(keysAre('present'));
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
    expect(statuses(out)).toEqual(keysAre('present', { 'aes-key': 'restored' }));
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
    expect(statuses(out)).toEqual(keysAre('present'));
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
