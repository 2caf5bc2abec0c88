/**
 * custos custodian enroll leaves one audit entry, as every command that makes something does: the
 * token, the key, the identity file and its digest, the recipient, whether the key was made or
 * picked and whether a copy of it may exist. The entry is checked against what pkcs11-tool and
 * the identity file say, in a log `custos audit verify` passes; a refused key leaves a failed
 * entry with its code, and no entry holds the PIN.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AUDIT_LOG,
  MODULE,
  ROOT,
  TIMEOUT,
  auditEntries,
  cleanup,
  custos,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  mustRun,
  p11,
  profileFor,
  workspace,
  writeConfig,
  type Profile,
  type TokenRef,
  type Workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let token: TokenRef;

const env = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: ws.dir,
  LANG: 'C.UTF-8',
  SOFTHSM2_CONF: ws.conf,
});
const sha256 = (file: string) =>
  createHash('sha256')
    .update(readFileSync(join(ws.dir, file)))
    .digest('hex');
const stubBody = (file: string) => {
  const text = readFileSync(join(ws.dir, file), 'utf8');
  return JSON.parse(text.slice(text.indexOf('\n') + 1)) as Record<string, any>;
};

/** The token as `pkcs11-tool -L` describes it. */
function slotFacts(label: string): { serial: string; model: string; manufacturer: string } {
  const out = mustRun('pkcs11-tool', ['--module', MODULE, '-L'], { env: env(), cwd: ws.dir });
  const slots = out.toString().split(/^Slot /m);
  const mine = slots.find((s) => new RegExp(`^\\s+token label\\s+:\\s${label}\\s*$`, 'm').test(s));
  const field = (name: string) =>
    (new RegExp(`^\\s+${name}\\s+:\\s(.*)$`, 'm').exec(mine ?? '')?.[1] ?? '').trim();
  return {
    serial: field('serial num'),
    model: field('token model'),
    manufacturer: field('token manufacturer'),
  };
}

/** The CKA_ID of the private key with this label, as `pkcs11-tool --list-objects` shows it. */
function privateKeyId(label: string): string {
  const objects = p11(ws, token, ['--list-objects', '--type', 'privkey']).split(/^(?=\S)/m);
  const key = objects.find((o) => new RegExp(`^\\s+label:\\s+${label}$`, 'm').test(o));
  return (/^\s+ID:\s+([0-9a-f]+)$/m.exec(key ?? '')?.[1] ?? '').trim();
}

const enroll = (label: string, out: string) =>
  custos(ws, [
    '--actor',
    'hale-llp',
    'custodian',
    'enroll',
    '--hsm',
    'hale',
    '--label',
    label,
    '--out',
    out,
  ]);

beforeAll(() => {
  ws = workspace('custodian-enroll-audit');
  token = initToken(ws, 'hale');
  const profiles: Profile[] = [];
  profileFor(ws, profiles, token);
  writeConfig(ws, profiles);
});

afterAll(() => cleanup(ws));

describe('custos custodian enroll is in the audit log', () => {
  it('a made key: the token, the key, the identity file and its digest, the recipient', () => {
    const r = expectOk(enroll('custodian', 'hale.token-identity'));
    const entries = auditEntries(ws);
    expect(entries).toHaveLength(1);
    const [entry] = entries;
    const slot = slotFacts('hale');
    expect(slot.serial).toMatch(/^[0-9a-f]{16}$/);
    const stub = stubBody('hale.token-identity');
    expect(entry).toMatchObject({
      seq: 1,
      op: 'custodian-enroll',
      actor: 'hale-llp',
      outcome: 'ok',
      artifacts: { identity: sha256('hale.token-identity') },
      detail: {
        hsm: 'hale',
        label: 'custodian',
        token: 'hale',
        serial: slot.serial,
        model: slot.model,
        manufacturer: slot.manufacturer,
        keyId: privateKeyId('custodian'),
        bits: 3072,
        made: true,
        imported: false,
        identity: 'hale.token-identity',
        recipient: stub.recipient,
        decryption: 'rsa-x509+host-oaep',
      },
    });
    expect(entry?.code).toBeUndefined();
    expect(entry?.detail.warnings).toBeUndefined();
    expect(entry?.detail.keyId).toBe(stub.key.id);
    expect(entry?.detail.serial).toBe(stub.token.serial);
    expect(r.stdout.trim().split('\n').pop()).toBe(entry?.detail.recipient);
  });

  it('a picked key imported from OpenSSL: picked, and named as possibly copied', () => {
    mustRun(
      'openssl',
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'k.pem'],
      { env: env(), cwd: ws.dir },
    );
    const req = {
      module: MODULE,
      token: token.label,
      pin: token.pin,
      op: 'import',
      pem: join(ws.dir, 'k.pem'),
      id: 'c0ffee',
      label: 'imported',
    };
    mustRun(
      process.execPath,
      [join(ROOT, 'test', 'e2e', 'rsa-key-tool.mjs'), JSON.stringify(req)],
      {
        env: env(),
        cwd: ws.dir,
      },
    );
    const r = expectOk(enroll('imported', 'imported.tid'));
    expect(r.stderr).toMatch(/CKA_NEVER_EXTRACTABLE is false/);
    const entry = auditEntries(ws).at(-1);
    expect(entry).toMatchObject({
      seq: 2,
      op: 'custodian-enroll',
      outcome: 'ok',
      artifacts: { identity: sha256('imported.tid') },
      detail: {
        label: 'imported',
        keyId: 'c0ffee',
        bits: 2048,
        made: false,
        imported: true,
        identity: 'imported.tid',
        recipient: stubBody('imported.tid').recipient,
      },
    });
    expect(privateKeyId('imported')).toBe('c0ffee');
    expect(entry?.detail.warnings).toEqual([
      expect.stringMatching(/^CKA_NEVER_EXTRACTABLE is false: the key was imported/),
    ]);
  });

  it('a refused key: a failed entry with its code and reasons, no identity file in it', () => {
    p11(ws, token, ['--keypairgen', '--key-type', 'rsa:2048', '--label', 'signing', '--id', '51']);
    expectUserError(enroll('signing', 's.tid'), 6, /\[E_CUSTODIAN_KEY\]/, /CKA_SIGN is true/);
    const entry = auditEntries(ws).at(-1);
    expect(entry).toMatchObject({
      seq: 3,
      op: 'custodian-enroll',
      outcome: 'failed',
      code: 'E_CUSTODIAN_KEY',
      detail: {
        hsm: 'hale',
        label: 'signing',
        token: 'hale',
        keyId: privateKeyId('signing'),
        made: false,
        error: expect.stringMatching(
          /key "signing" on token "hale" cannot hold .*CKA_SIGN is true/,
        ),
      },
    });
    expect(entry?.detail.keyId).toBe('51');
    expect(entry?.artifacts).toBeUndefined();
    expect(entry?.detail.identity).toBeUndefined();
    expect(entry?.detail.recipient).toBeUndefined();
  });

  it('the log verifies, and holds no PIN', () => {
    const r = expectOk(custos(ws, ['audit', 'verify', AUDIT_LOG]));
    expect(r.stdout).toMatch(/3 entries/);
    const log = readFileSync(join(ws.dir, AUDIT_LOG), 'utf8');
    expect(log).not.toContain(token.pin);
    expect(log).not.toContain(token.soPin);
    expectNoSecrets(ws);
  });
});
