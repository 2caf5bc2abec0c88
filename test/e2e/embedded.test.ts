/**
 * The embedded SoftHSM2 store: `--hsm NAME` with no custos.yaml profile, tokens under .custos/ in
 * the working directory, created by `custos hsm init` with CUSTOS_SO_PIN / CUSTOS_PIN. Keys are
 * made in it with pkcs11-tool (through the store's own softhsm2.conf), backed up, and restored
 * into a second embedded token.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TIMEOUT,
  cleanup,
  custos,
  exists,
  expectNoSecrets,
  expectOk,
  expectUserError,
  json,
  listObjects,
  makeCustodians,
  makeKey,
  modeOf,
  newPin,
  snapshot,
  writePolicy,
  type Custodian,
  type TokenRef,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let pin: string;
let soPin: string;
let storeConf: string;
let custodians: Custodian[];
/** An inherited SOFTHSM2_CONF that points elsewhere: the embedded store must not use it. */
let decoyConf: string;

type Row = {
  label: string;
  id: string;
  class: string;
  checkValue: { method: string; value: string };
};

beforeAll(() => {
  ws = workspace('embedded');
  pin = newPin(ws);
  soPin = newPin(ws);
  storeConf = join(ws.dir, '.custos', 'softhsm2.conf');
  decoyConf = ws.conf; // the workspace's own (empty) store
  custodians = makeCustodians(ws, ['e1', 'e2', 'e3']);
  writePolicy(ws, 'policy.yaml', 2, custodians);
});

afterAll(() => cleanup(ws));

const embedded = (args: string[], env: Record<string, string | undefined> = {}) =>
  custos(ws, args, { env: { CUSTOS_PIN: pin, CUSTOS_SO_PIN: soPin, ...env }, conf: decoyConf });

const token = (label: string): TokenRef => ({ label, pin, soPin, conf: storeConf });

describe('the embedded store', () => {
  it('hsm init creates a token under .custos/ in the working directory', () => {
    expect(exists(join(ws.dir, '.custos'))).toBe(false);
    const r = expectOk(embedded(['hsm', 'init', 'primary']));
    expect(r.stdout).toMatch(/created token "primary" \(serial [0-9a-f]+\) in .*\.custos/);
    expect(exists(storeConf)).toBe(true);
    expect(readFileSync(storeConf, 'utf8')).toContain(
      `directories.tokendir = ${join(ws.dir, '.custos', 'tokens')}`,
    );
    expect(modeOf(join(ws.dir, '.custos', 'tokens')) & 0o077).toBe(0);
    expectOk(embedded(['hsm', 'init', 'dr-site']));
    // the decoy store named by the inherited SOFTHSM2_CONF was not used
    expect(snapshot(join(ws.dir, 'tokens'))).toEqual({});
  });

  it('hsm init refuses a label that already exists, and changes nothing', () => {
    const files = snapshot(ws.dir);
    const r = embedded(['hsm', 'init', 'primary']);
    expect(expectUserError(r, 6)).toMatch(/already has a token labelled "primary"/);
    expect(snapshot(ws.dir)).toEqual(files);
  });

  it('hsm init refuses a too-short user PIN', () => {
    const r = embedded(['hsm', 'init', 'short'], { CUSTOS_PIN: 'x1' });
    expect(expectUserError(r, 2)).toMatch(/user PIN must be 4 to 255 bytes long/);
  });

  it('keys made with pkcs11-tool in the store show in inventory --hsm NAME', () => {
    makeKey(ws, token('primary'), { kind: 'aes', label: 'ledger-aes', id: 'a1' });
    makeKey(ws, token('primary'), { kind: 'rsa', label: 'ledger-rsa', id: 'a2' });
    makeKey(ws, token('primary'), {
      kind: 'aes',
      label: 'ledger-bound',
      id: 'a3',
      extractable: false,
    });
    const inv = json<{ token: string; rows: Row[] }>(
      embedded(['inventory', '--hsm', 'primary', '--json']),
    );
    expect(inv.token).toBe('primary');
    expect(inv.rows.map((r) => `${r.class}/${r.label}`).sort()).toEqual([
      'private/ledger-rsa',
      'public/ledger-rsa',
      'secret/ledger-aes',
      'secret/ledger-bound',
    ]);
  });

  it('without CUSTOS_PIN and without a terminal, custos says so instead of waiting', () => {
    const r = embedded(['inventory', '--hsm', 'primary'], { CUSTOS_PIN: undefined });
    expect(expectUserError(r, 8)).toMatch(/needs a terminal/);
    expect(r.stderr).toMatch(/CUSTOS_PIN/);
  });

  it('backup from one embedded token and restore into another reproduce every check value', () => {
    const b = expectOk(
      embedded([
        'backup',
        '--hsm',
        'primary',
        '--policy',
        'policy.yaml',
        '--out',
        'primary.bundle',
      ]),
    );
    expect(b.stderr).toMatch(/skipped secret key "ledger-bound"/);
    expect(modeOf(join(ws.dir, 'primary.bundle.shares', 'e2.share'))).toBe(0o600);
    const out = json(
      embedded([
        'restore',
        '--bundle',
        'primary.bundle',
        '--hsm',
        'dr-site',
        '--json',
        '--share',
        'primary.bundle.shares/e2.share',
        '--share',
        'primary.bundle.shares/e3.share',
        '--identity',
        custodians[1]!.identity,
        '--identity',
        custodians[2]!.identity,
      ]),
    );
    expect(
      out.keys.map((k: { label: string; status: string }) => `${k.label}:${k.status}`).sort(),
    ).toEqual(['ledger-aes:restored', 'ledger-rsa:restored']);
    const cv = (hsm: string) =>
      json<{ rows: Row[] }>(embedded(['inventory', '--hsm', hsm, '--json']))
        .rows.filter((r) => r.label !== 'ledger-bound')
        .map((r) => `${r.class}/${r.label}/${r.id}=${r.checkValue.method}:${r.checkValue.value}`)
        .sort();
    expect(cv('dr-site')).toEqual(cv('primary'));
    expect(
      listObjects(ws, token('dr-site'))
        .map((o) => `${o.kind}/${o.label}`)
        .sort(),
    ).toEqual(['Private Key/ledger-rsa', 'Public Key/ledger-rsa', 'Secret Key/ledger-aes']);
  });

  it('no PIN, SO PIN, identity or share value appears in any output', () => {
    expectNoSecrets(ws);
  });
});
