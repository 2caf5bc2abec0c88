/**
 * custos escrow-pin against real SoftHSM2 tokens: a fresh user PIN held m-of-n by custodians, a
 * profile saying `pin: escrow:DIR` unlocked with --escrow-identity, an outside reassembly of the
 * PIN (age CLI + secrets.js-grempe + an independent base32) that logs in with pkcs11-tool, the
 * rejections (too few or no identities, wrong SO PIN, existing outputs, another token's escrow, a
 * void escrow), `shares verify` on a PIN share, the DR path through a backup HSM whose PIN is
 * escrowed, and a scan of every output and file for the PIN.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  TIMEOUT,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  exists,
  expectNoSecrets,
  expectOk,
  expectUserError,
  json,
  makeCustodians,
  makeKey,
  modeOf,
  openShare,
  opensslVerify,
  p11Raw,
  publicKeyPem,
  signRsa,
  snapshot,
  writePolicy,
  type Custodian,
  type Run,
  type TokenRef,
  type Workspace,
  workspace,
} from './helpers.js';
import { pinVar, SoPinProfiles } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let custodians: Custodian[];
let a: Custodian;
let b: Custodian;
let c: Custodian;
let profiles: SoPinProfiles;
/** Every distinct PIN custos escrowed, as reassembled outside custos, with its 32-byte seed. */
const escrowed: { pin: string; seed: Buffer }[] = [];

/** RFC 4648 base32 without padding, written independently of custos (bit string, 5 at a time). */
function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...bytes].map((x) => x.toString(2).padStart(8, '0')).join('');
  let out = '';
  for (let i = 0; i < bits.length; i += 5)
    out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
}

/**
 * Reassembles an escrowed PIN outside custos: age CLI, secrets.js-grempe, base32, cut to
 * escrowOf.pinLength.
 */
function reassemblePin(dir: string, who: Custodian[]): { pin: string; seed: Buffer; record: any } {
  const record = bundleBody(join(dir, 'pin-escrow.bundle'));
  const seed = combineKek(
    ws,
    who.map((x) => openShare(ws, join(dir, `${x.id}.share`), x.identity)),
  );
  const pin = base32(seed).slice(0, record.escrowOf.pinLength);
  ws.secrets.add(pin);
  if (!escrowed.some((e) => e.pin === pin)) escrowed.push({ pin, seed });
  return { pin, seed, record };
}

/** Can pkcs11-tool log in to the token as the user with this PIN? */
function logsIn(t: TokenRef, pin: string): boolean {
  const r = p11Raw(ws, { ...t, pin }, ['--list-objects']);
  return r.status === 0;
}

function escrowPin(hsm: string, out: string, extra: string[] = []): Run {
  return custos(ws, [
    'escrow-pin',
    '--hsm',
    hsm,
    '--policy',
    'policy.yaml',
    '--out',
    out,
    ...extra,
  ]);
}

const ids = (...who: Custodian[]) => who.flatMap((x) => ['--escrow-identity', x.identity]);

beforeAll(() => {
  ws = workspace('pin-escrow');
  custodians = makeCustodians(ws, ['a', 'b', 'c']);
  [a, b, c] = custodians as [Custodian, Custodian, Custodian];
  writePolicy(ws, 'policy.yaml', 2, custodians);
  profiles = new SoPinProfiles(ws, join(ws.dir, 'custos.yaml'));
  profiles.add('vault');
});

afterAll(() => cleanup(ws));

describe('escrow-pin on a token', () => {
  let vaultPin: string;

  it('gives the token a new PIN held 2-of-3: one 0600 share per custodian and the record; the old PIN stops working', () => {
    const vault = profiles.token('vault');
    expect(logsIn(vault, vault.pin)).toBe(true);
    const out = json(escrowPin('vault', 'escrow-vault', ['--json']));
    expect(out.threshold).toBe(2);
    expect(out.total).toBe(3);
    expect(out.pinLength).toBe(52);
    expect(out.token.label).toBe('vault');

    const dir = join(ws.dir, 'escrow-vault');
    expect(readdirSync(dir).sort()).toEqual(['a.share', 'b.share', 'c.share', 'pin-escrow.bundle']);
    for (const f of readdirSync(dir)) expect(modeOf(join(dir, f)), f).toBe(0o600);

    const record = bundleBody(join(dir, 'pin-escrow.bundle'));
    expect(record.escrowOf).toEqual({
      kind: 'token-pin',
      tokenLabel: 'vault',
      tokenSerial: out.token.serial,
      pinLength: 52,
    });
    expect(record.keys).toEqual([]);

    expect(logsIn(vault, vault.pin)).toBe(false);
  });

  it('with pin: escrow:DIR in the profile, inventory opens the token with 2 of the 3 identities', () => {
    profiles.usePin('vault', 'escrow:escrow-vault');
    const r = custos(ws, ['inventory', '--hsm', 'vault', ...ids(a, c)]);
    expectOk(r);
    expect(r.stderr).toMatch(/token "vault" \(serial [0-9a-f]+\): 0 key objects/);
    // the identities may also come before the command, as global options
    expectOk(custos(ws, [...ids(b, c), 'inventory', '--hsm', 'vault', '--json']));
  });

  it("outside custos: age + secrets.js + base32 cut to escrowOf.pinLength give a PIN that logs in, and kek.kcv is the seed's KCV", () => {
    const vault = profiles.token('vault');
    const dir = join(ws.dir, 'escrow-vault');
    const { pin, seed, record } = reassemblePin(dir, [a, c]);
    expect(seed).toHaveLength(32);
    expect(pin).toMatch(/^[A-Z2-7]{52}$/);
    expect(record.kek.kcv).toBe(aesKcv(seed));
    // another quorum gives the same PIN
    const other = reassemblePin(dir, [b, a]);
    expect(other.pin).toBe(pin);
    expect(logsIn(vault, pin)).toBe(true);
    // a near miss does not (so the check above can fail)
    expect(logsIn(vault, pin.slice(0, 51))).toBe(false);
    vaultPin = pin;
  });

  it("shares verify accepts a PIN-escrow share, and rejects it with another custodian's identity", () => {
    const verifyA = (identity: Custodian) =>
      custos(ws, [
        'shares',
        'verify',
        '--bundle',
        'escrow-vault/pin-escrow.bundle',
        '--share',
        'escrow-vault/a.share',
        '--identity',
        identity.identity,
      ]);
    const r = expectOk(verifyA(a));
    expect(r.stdout).toMatch(/share escrow-vault\/a\.share is good/);
    expect(r.stdout).toMatch(/custodian {2}a \(Custodian A\), share 1 of 3, 2 needed/);
    expect(r.stdout).toMatch(/token "vault"/);
    const wrong = verifyA(b);
    expect(wrong.status, describeRun(wrong)).not.toBe(0);
  });

  it('the reassembled PIN is what the token now takes', () => {
    expect(vaultPin).toBeDefined();
    expect(logsIn(profiles.token('vault'), vaultPin)).toBe(true);
  });
});

describe('unlocking an escrowed PIN: refusals', () => {
  it('one identity of a 2-of-3 escrow is E_QUORUM: 1 more needed', () => {
    const r = custos(ws, ['inventory', '--hsm', 'vault', ...ids(b)]);
    const line = expectUserError(r, 5, /E_QUORUM/);
    expect(line).toMatch(/1 of 2 shares accepted: 1 more needed/);
  });

  it('no identity at all is E_QUORUM, with a hint naming --escrow-identity', () => {
    const r = custos(ws, ['inventory', '--hsm', 'vault']);
    const line = expectUserError(r, 5, /E_QUORUM/);
    expect(line).toMatch(/held by 2 of 3 custodians/);
    expect(r.stderr).toMatch(/^custos: hint: .*--escrow-identity/m);
  });

  it('an escrow directory made for another token is E_PIN_SOURCE naming both tokens', () => {
    const other = profiles.add('other');
    profiles.usePin('other', 'escrow:escrow-vault');
    const r = custos(ws, ['inventory', '--hsm', 'other', ...ids(a, c)]);
    const line = expectUserError(r, 3, /E_PIN_SOURCE/);
    expect(line).toMatch(
      /for token "vault" \(serial [0-9a-f]+\), not "other" \(serial [0-9a-f]+\)/,
    );
    // the other token's own PIN still works: nothing was tried on it
    expect(logsIn(other, other.pin)).toBe(true);
  });

  it('a VOID file in the escrow directory is E_PIN_SOURCE "void", even with a quorum', () => {
    cpSync(join(ws.dir, 'escrow-vault'), join(ws.dir, 'escrow-void'), { recursive: true });
    writeFileSync(join(ws.dir, 'escrow-void', 'VOID'), 'custos: setting the new PIN failed\n');
    profiles.tokens.set('vault-void', profiles.token('vault'));
    ws.env[pinVar('vault-void', 'SO')] = profiles.token('vault').soPin;
    profiles.usePin('vault-void', 'escrow:escrow-void');
    const r = custos(ws, ['inventory', '--hsm', 'vault-void', ...ids(a, c)]);
    const line = expectUserError(r, 3, /E_PIN_SOURCE/);
    expect(line).toMatch(/void/);
  });
});

describe('escrow-pin refusals write nothing and keep the old PIN', () => {
  it('a wrong SO PIN is E_PIN_INCORRECT: no files, and the old user PIN still logs in', () => {
    const fresh = profiles.add('fresh');
    ws.env[pinVar('fresh', 'SO')] = `${fresh.soPin}-wrong`;
    const before = snapshot(ws.dir);
    const r = escrowPin('fresh', 'escrow-fresh');
    const line = expectUserError(r, 6, /E_PIN_INCORRECT/);
    expect(line).toMatch(/security officer/);
    expect(exists(join(ws.dir, 'escrow-fresh'))).toBe(false);
    expect(snapshot(ws.dir)).toEqual(before);
    expect(logsIn(fresh, fresh.pin)).toBe(true);
    ws.env[pinVar('fresh', 'SO')] = fresh.soPin;
  });

  it('an existing output file is refused before anything (E_EXISTS), and the old user PIN still logs in', () => {
    const fresh = profiles.token('fresh');
    mkdirSync(join(ws.dir, 'escrow-taken'));
    writeFileSync(join(ws.dir, 'escrow-taken', 'b.share'), 'an older share\n', { mode: 0o600 });
    const before = snapshot(ws.dir);
    const r = escrowPin('fresh', 'escrow-taken');
    const line = expectUserError(r, 3, /E_EXISTS/);
    expect(line).toMatch(/b\.share/);
    expect(snapshot(ws.dir)).toEqual(before);
    expect(logsIn(fresh, fresh.pin)).toBe(true);
    // and with a free directory the same token escrows fine (the refusal above was the directory)
    expectOk(escrowPin('fresh', 'escrow-fresh'));
    expect(logsIn(fresh, fresh.pin)).toBe(false);
    const { pin } = reassemblePin(join(ws.dir, 'escrow-fresh'), [b, c]);
    expect(logsIn(fresh, pin)).toBe(true);
  });
});

describe('disaster recovery through a backup HSM whose PIN is escrowed', () => {
  it('primary → backup HSM → escrow its PIN → restore into a new primary with 2 custodians; check values and signatures match', () => {
    const primary = profiles.add('primary');
    profiles.add('backup');
    const newPrimary = profiles.add('new-primary');
    makeKey(ws, primary, { kind: 'aes', label: 'dr-aes', id: '11' });
    makeKey(ws, primary, { kind: 'rsa', label: 'dr-rsa', id: '12' });
    makeKey(ws, primary, { kind: 'ec', label: 'dr-ec', id: '13' });

    const copied = json(custos(ws, ['backup', '--hsm', 'primary', '--to-hsm', 'backup', '--json']));
    expect(
      copied.keys.map((k: { label: string; status: string }) => `${k.label}:${k.status}`).sort(),
    ).toEqual(['dr-aes:restored', 'dr-ec:restored', 'dr-rsa:restored']);

    expectOk(escrowPin('backup', 'escrow-backup'));
    expect(logsIn(profiles.token('backup'), profiles.token('backup').pin)).toBe(false);
    profiles.usePin('backup', 'escrow:escrow-backup');
    const backupPin = reassemblePin(join(ws.dir, 'escrow-backup'), [a, b]).pin;
    expect(escrowed.map((e) => e.pin)).toContain(backupPin);
    expect(escrowed).toHaveLength(3); // vault, fresh and backup: three different PINs

    const restored = custos(ws, [
      'restore',
      '--from-hsm',
      'backup',
      '--hsm',
      'new-primary',
      ...ids(a, c),
      '--json',
    ]);
    const out = json(restored);
    expect(
      out.keys.map((k: { label: string; status: string }) => `${k.label}:${k.status}`).sort(),
    ).toEqual(['dr-aes:restored', 'dr-ec:restored', 'dr-rsa:restored']);

    type Row = {
      label: string;
      id: string;
      class: string;
      checkValue: { method: string; value: string };
    };
    const checkValues = (hsm: string, extra: string[] = []) =>
      json<{ rows: Row[] }>(custos(ws, ['inventory', '--hsm', hsm, '--json', ...extra]))
        .rows.map(
          (r) => `${r.class}/${r.label}/${r.id}=${r.checkValue.method}:${r.checkValue.value}`,
        )
        .sort();
    const original = checkValues('primary');
    expect(original).toHaveLength(5);
    expect(original.filter((v) => /=none:/.test(v))).toEqual([]);
    expect(checkValues('new-primary')).toEqual(original);
    expect(checkValues('backup', ids(b, c))).toEqual(original);

    // a signature made on the new primary verifies with the original public key (OpenSSL)
    const data = join(ws.dir, 'dr-message.txt');
    const sig = join(ws.dir, 'dr-message.sig');
    writeFileSync(data, 'wire transfer 42\n');
    signRsa(ws, newPrimary, '12', data, sig);
    const pem = publicKeyPem(ws, primary, '12', join(ws.dir, 'primary-rsa.pem'));
    const verify = (file: string) => opensslVerify(pem, sig, file);
    const ok = verify(data);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Verified OK/);
    writeFileSync(join(ws.dir, 'dr-other.txt'), 'wire transfer 43\n');
    expect(verify(join(ws.dir, 'dr-other.txt')).status).not.toBe(0);
  });
});

describe('the escrowed PINs are never shown or stored', () => {
  it('no escrowed PIN, seed, share value, identity or token PIN appears in any custos output', () => {
    expect(escrowed.length).toBeGreaterThanOrEqual(3);
    expectNoSecrets(
      ws,
      escrowed.flatMap((e) => [e.pin, e.seed.toString('hex'), e.seed.toString('base64')]),
    );
  });

  it('no escrowed PIN or its seed is in any file of the workspace (SoftHSM token files aside)', () => {
    const needles = escrowed.flatMap((e) => [
      e.pin,
      e.pin.toLowerCase(),
      e.seed.toString('hex'),
      e.seed.toString('base64'),
    ]);
    const scan = (root: string): { files: number; hits: string[] } => {
      const hits: string[] = [];
      let files = 0;
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = join(d, e.name);
          if (e.isDirectory()) {
            if (relative(ws.dir, p) !== 'tokens') walk(p);
            continue;
          }
          files += 1;
          const text = readFileSync(p).toString('latin1');
          for (const n of needles)
            if (text.includes(n)) hits.push(`${relative(ws.dir, p)} holds ${n.slice(0, 4)}…`);
        }
      };
      walk(root);
      return { files, hits };
    };
    const clean = scan(ws.dir);
    expect(clean.files).toBeGreaterThan(10);
    expect(clean.hits).toEqual([]);
    // the scan can fail: a planted copy of a PIN is found
    const plantedDir = join(ws.dir, 'planted');
    mkdirSync(plantedDir);
    writeFileSync(join(plantedDir, 'note.txt'), `x${escrowed[2]?.pin}y`);
    expect(scan(plantedDir).hits).toHaveLength(1);
  });
});
