/**
 * HSM-to-HSM copy end to end, against real SoftHSM2 tokens: primary → backup with
 * `backup --to-hsm`, then backup → new-primary with `restore --from-hsm`. Keys are made by
 * pkcs11-tool; the results are checked from outside (pkcs11-tool object lists, signatures made
 * on the new primary and verified by OpenSSL against the original primary's public keys).
 * Also: no transport object is left behind, re-runs copy only what is missing, a clashing key
 * stops the copy before any write, a killed copy is finished by a re-run, usage errors, a
 * policy's keys section, and no PIN in any output.
 */
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  MODULE,
  ROOT,
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
  mustRun,
  objectCount,
  p11,
  profileFor,
  publicKeyPem,
  signEcdsa,
  signRsa,
  snapshot,
  tokenObjectFiles,
  writeConfig,
  type ListedObject,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const MECHANISM = 'RSA-OAEP-SHA1 + AES-KWP';

interface Spec {
  label: string;
  id: string;
  keygen: string[];
}
/** The copyable keys, all made by pkcs11-tool with --extractable --sensitive. */
const KEYS: Spec[] = [
  { label: 'aes-key', id: '01', keygen: ['--keygen', '--key-type', 'AES:32'] },
  { label: 'hmac-key', id: '02', keygen: ['--keygen', '--key-type', 'GENERIC:32'] },
  {
    label: 'rsa2048-key',
    id: '03',
    keygen: ['--keypairgen', '--key-type', 'rsa:2048', '--usage-sign'],
  },
  {
    label: 'rsa3072-key',
    id: '04',
    keygen: ['--keypairgen', '--key-type', 'rsa:3072', '--usage-sign'],
  },
  {
    label: 'ec256-key',
    id: '05',
    keygen: ['--keypairgen', '--key-type', 'EC:prime256v1', '--usage-sign'],
  },
  {
    label: 'ec384-key',
    id: '06',
    keygen: ['--keypairgen', '--key-type', 'EC:secp384r1', '--usage-sign'],
  },
];
const BOUND = { label: 'bound-key', id: '07' };
const ASYMMETRIC = KEYS.filter((k) => k.keygen[0] === '--keypairgen');
const CRASH_KEYS = 300;

let ws: Workspace;
let primary: TokenRef;
let backup: TokenRef;
let newPrimary: TokenRef;
let lookalike: TokenRef;
let limited: TokenRef;
let crashSrc: TokenRef;
let crashDst: TokenRef;
const profiles: Profile[] = [];
const started = Date.now();

type CopyKey = {
  label: string;
  id: string;
  class: string;
  keyType: string;
  status: string;
  proof: string;
  checkValue: string;
};
type CopyOut = {
  source: { label: string };
  target: { label: string };
  mechanism: string;
  note?: string;
  skipped: { label: string; id: string; class: string; reason: string }[];
  keys: CopyKey[];
  publicObjects: number;
  certificates: number;
};

function copy(from: string, to: string, extra: string[] = ['--json']): Run {
  return custos(ws, ['backup', '--hsm', from, '--to-hsm', to, ...extra]);
}
function copyBack(from: string, to: string, extra: string[] = ['--json']): Run {
  return custos(ws, ['restore', '--from-hsm', from, '--hsm', to, ...extra]);
}

const statuses = (out: CopyOut) => out.keys.map((k) => `${k.label}/${k.id}:${k.status}`).sort();
const allWith = (status: string, specs: { label: string; id: string }[] = KEYS) =>
  specs.map((k) => `${k.label}/${k.id}:${status}`).sort();
/** Objects as (kind, label, id), sorted: what pkcs11-tool sees on the token. */
const shape = (objects: ListedObject[]) =>
  objects.map((o) => `${o.kind}|${o.label}|${o.id}`).sort();
/**
 * Everything pkcs11-tool shows of each object, sorted: pkcs11-tool -O lists SoftHSM objects in no
 * stable order, so lists are compared as sets.
 */
const view = (token: TokenRef) =>
  listObjects(ws, token)
    .map((o) => `${o.kind}|${o.label}|${o.id}|${o.access}|${o.usage}`)
    .sort();
/**
 * The objects a full copy of KEYS leaves on a token: one secret or private key each, plus each
 * public key.
 */
const COPIED_SHAPE = [
  ...KEYS.map(
    (k) => `${k.keygen[0] === '--keygen' ? 'Secret Key' : 'Private Key'}|${k.label}|${k.id}`,
  ),
  ...ASYMMETRIC.map((k) => `Public Key|${k.label}|${k.id}`),
].sort();

type Row = {
  label: string;
  id: string;
  class: string;
  checkValue: { method: string; value: string };
};
function checkValues(hsm: string): string[] {
  return json<{ rows: Row[] }>(custos(ws, ['inventory', '--hsm', hsm, '--json']))
    .rows.filter((r) => r.label !== BOUND.label)
    .map((r) => `${r.class}/${r.label}/${r.id}=${r.checkValue.method}:${r.checkValue.value}`)
    .sort();
}

beforeAll(() => {
  ws = workspace('hsm-copy');
  primary = initToken(ws, 'primary');
  backup = initToken(ws, 'backup');
  newPrimary = initToken(ws, 'new-primary');
  lookalike = initToken(ws, 'lookalike');
  limited = initToken(ws, 'limited');
  crashSrc = initToken(ws, 'crash-src');
  crashDst = initToken(ws, 'crash-dst');
  for (const t of [primary, backup, newPrimary, lookalike, limited, crashSrc, crashDst])
    profileFor(ws, profiles, t);
  // a second profile for the primary token, under another name
  profileFor(ws, profiles, primary, 'primary-alias');
  writeConfig(ws, profiles);

  for (const k of KEYS)
    p11(ws, primary, [
      ...k.keygen,
      '--label',
      k.label,
      '--id',
      k.id,
      '--extractable',
      '--sensitive',
    ]);
  p11(ws, primary, [
    '--keygen',
    '--key-type',
    'AES:32',
    '--label',
    BOUND.label,
    '--id',
    BOUND.id,
    '--sensitive',
  ]);
  expect(objectCount(ws, primary)).toBe(KEYS.length + ASYMMETRIC.length + 1);

  // Many AES keys for the crash test, made quickly through custos's own generator in a child
  // process (the PIN travels in the environment, not argv).
  const gen = `
    const { Token } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/token.js'))});
    const { generateSecretKey } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/generate.js'))});
    const t = await Token.open({ module: ${JSON.stringify(MODULE)}, token: 'crash-src' }, async () => process.env.GEN_PIN, true);
    for (let i = 0; i < ${CRASH_KEYS}; i++) generateSecretKey(t, { label: 'k-' + i, id: i.toString(16).padStart(4, '0'), keyType: 'AES', bytes: 32, extractable: true });
    t.close();`;
  mustRun(process.execPath, ['--input-type=module', '-e', gen], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: ws.dir,
      SOFTHSM2_CONF: ws.conf,
      GEN_PIN: crashSrc.pin,
    },
    cwd: ws.dir,
  });
});

afterAll(() => {
  cleanup(ws);
  console.log(`hsm-copy.test.ts: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

describe('primary → backup → new-primary', () => {
  let primaryBefore: string[];

  it('backup --to-hsm copies every extractable key, proves each, and skips the non-extractable one', () => {
    primaryBefore = view(primary);
    const r = copy('primary', 'backup');
    const out = json<CopyOut>(r);
    expect(r.stderr, describeRun(r)).toMatch(
      new RegExp(`^custos: transport: ${MECHANISM.replace(/[+]/g, '\\+')}$`, 'm'),
    );
    expect(out.mechanism).toBe(MECHANISM);
    expect(out.source.label).toBe('primary');
    expect(out.target.label).toBe('backup');
    expect(out.note).toBeUndefined();
    expect(statuses(out)).toEqual(allWith('restored'));
    for (const k of out.keys) expect(k.proof, `${k.label}: ${k.proof}`).not.toBe('none');
    // the secret keys are proved by re-wrapping, the private keys by a signature
    for (const k of out.keys.filter((x) => x.class === 'secret')) expect(k.proof).toMatch(/rewrap/);
    for (const k of out.keys.filter((x) => x.class === 'private'))
      expect(k.proof).toMatch(/signature/);
    expect(out.publicObjects).toBe(ASYMMETRIC.length);
    expect(out.certificates).toBe(0);
    expect(out.skipped.map((s) => `${s.label}/${s.id}`)).toEqual([`${BOUND.label}/${BOUND.id}`]);
    expect(out.skipped[0]?.reason).toMatch(/extractable/);
  });

  it('leaves no transport object behind: the primary is unchanged, the backup holds only the copied keys and public keys', () => {
    expect(objectCount(ws, primary)).toBe(KEYS.length + ASYMMETRIC.length + 1);
    expect(view(primary)).toEqual(primaryBefore);
    const onBackup = listObjects(ws, backup);
    expect(onBackup).toHaveLength(KEYS.length + ASYMMETRIC.length);
    expect(shape(onBackup)).toEqual(COPIED_SHAPE);
    expect(onBackup.some((o) => /transport|ephemeral/.test(o.label))).toBe(false);
    expect(onBackup.some((o) => o.label === BOUND.label)).toBe(false);
    // copied keys stay sensitive and unextractable-in-the-clear (pkcs11-tool shows "sensitive")
    for (const o of onBackup.filter((x) => x.kind !== 'Public Key'))
      expect(o.access, `${o.label}`).toMatch(/sensitive/);
  });

  it('restore --from-hsm copies them on to the new primary', () => {
    const r = copyBack('backup', 'new-primary');
    const out = json<CopyOut>(r);
    expect(r.stderr).toContain(`custos: transport: ${MECHANISM}`);
    expect(out.mechanism).toBe(MECHANISM);
    expect(out.source.label).toBe('backup');
    expect(out.target.label).toBe('new-primary');
    expect(statuses(out)).toEqual(allWith('restored'));
    for (const k of out.keys) expect(k.proof, `${k.label}: ${k.proof}`).not.toBe('none');
    expect(out.skipped).toEqual([]);
    expect(shape(listObjects(ws, newPrimary))).toEqual(COPIED_SHAPE);
  });

  it('every key has the same check value on all three tokens (inventory)', () => {
    const onPrimary = checkValues('primary');
    expect(onPrimary).toHaveLength(KEYS.length + ASYMMETRIC.length);
    for (const line of onPrimary) expect(line).toMatch(/=[^:]+:[0-9a-f]{6,}$/);
    expect(checkValues('backup')).toEqual(onPrimary);
    expect(checkValues('new-primary')).toEqual(onPrimary);
  });

  it('signatures made on the new primary verify with the original primary public keys (OpenSSL)', () => {
    const data = join(ws.dir, 'to-sign.txt');
    writeFileSync(data, 'payment batch 2026-11-22\n');
    const env = { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir }, cwd: ws.dir };
    for (const k of ASYMMETRIC) {
      const rsa = k.keygen.some((a) => a.startsWith('rsa:'));
      // the ORIGINAL primary's public key, exported from outside
      const pem = join(ws.dir, `primary-${k.id}.pem`);
      if (rsa) publicKeyPem(ws, primary, k.id, pem);
      else writeFileSync(pem, ecPublicKeyPem(primary, k.id));
      const sig = join(ws.dir, `sig-${k.id}.bin`);
      if (rsa) signRsa(ws, newPrimary, k.id, data, sig);
      else signEcdsa(ws, newPrimary, k.id, data, join(ws.dir, 'to-sign.sha256'), sig);
      const ok = mustRun(
        'openssl',
        ['dgst', '-sha256', '-verify', pem, '-signature', sig, data],
        env,
      ).toString();
      expect(ok, k.label).toMatch(/Verified OK/);
      // and the oracle can fail: a signature over other data does not verify
      writeFileSync(join(ws.dir, 'other.txt'), 'something else\n');
      expect(
        commandOk([
          'openssl',
          'dgst',
          '-sha256',
          '-verify',
          pem,
          '-signature',
          sig,
          join(ws.dir, 'other.txt'),
        ]),
      ).toBe(false);
    }
  });
});

const CURVES: Record<string, { crv: string; size: number }> = {
  '06082a8648ce3d030107': { crv: 'P-256', size: 32 },
  '06052b81040022': { crv: 'P-384', size: 48 },
};

/**
 * The token's EC public key as PEM, built from CKA_EC_POINT and CKA_EC_PARAMS as pkcs11-tool
 * lists them. (pkcs11-tool 0.23's --read-object fails on P-384 public keys with "cannot create
 * EVP_PKEY", so it cannot export them; for P-256 the two ways are checked to agree.)
 */
function ecPublicKeyPem(token: TokenRef, id: string): string {
  const listing = p11(ws, token, ['-O', '--type', 'pubkey']);
  const block =
    listing
      .split(/^(?=\S)/m)
      .find(
        (b) =>
          b.startsWith('Public Key Object') && new RegExp(`^\\s+ID:\\s+${id}\\s*$`, 'm').test(b),
      ) ?? '';
  const point = /EC_POINT:\s+([0-9a-f]+)/.exec(block)?.[1];
  const params = /EC_PARAMS:\s+([0-9a-f]+)/.exec(block)?.[1];
  const curve = CURVES[params ?? ''];
  if (!point || !curve) throw new Error(`no EC public key with id ${id}:\n${listing}`);
  let raw = Buffer.from(point, 'hex');
  // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point 04 || X || Y
  if (raw.length !== 1 + 2 * curve.size)
    raw = raw.subarray(raw[1]! & 0x80 ? 2 + (raw[1]! & 0x7f) : 2);
  expect(raw.length).toBe(1 + 2 * curve.size);
  expect(raw[0]).toBe(4);
  const jwk = {
    kty: 'EC',
    crv: curve.crv,
    x: raw.subarray(1, 1 + curve.size).toString('base64url'),
    y: raw.subarray(1 + curve.size).toString('base64url'),
  };
  const pem = createPublicKey({ key: jwk, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
  if (curve.crv === 'P-256') {
    const viaTool = publicKeyPem(ws, token, id, join(ws.dir, `p256-check-${id}.pem`));
    expect(createPublicKey(readFileSync(viaTool)).export({ type: 'spki', format: 'pem' })).toBe(
      pem,
    );
  }
  return pem;
}

/** Runs a command; true when it exits 0. */
function commandOk(cmd: string[]): boolean {
  try {
    mustRun(cmd[0] as string, cmd.slice(1), {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir },
      cwd: ws.dir,
    });
    return true;
  } catch {
    return false;
  }
}

describe('re-running the copy', () => {
  it('a second backup --to-hsm finds every key present and creates nothing', () => {
    const primaryObjects = view(primary);
    const backupObjects = view(backup);
    const files = snapshot(ws.dir);
    const out = json<CopyOut>(copy('primary', 'backup'));
    expect(statuses(out)).toEqual(allWith('present'));
    for (const k of out.keys) expect(k.proof).not.toBe('none');
    expect(out.publicObjects).toBe(0);
    expect(out.certificates).toBe(0);
    expect(view(backup)).toEqual(backupObjects);
    expect(view(primary)).toEqual(primaryObjects);
    expect(snapshot(ws.dir)).toEqual(files);
    // the table form says the same, and warns about the skipped key
    const table = expectOk(copy('primary', 'backup', []));
    expect(table.stdout).toMatch(
      new RegExp(
        `token "primary" → token "backup" by ${MECHANISM.replace(/[+]/g, '\\+')}: 0 keys copied, ${KEYS.length} already present, 1 skipped`,
      ),
    );
    expect(table.stderr).toMatch(
      /^custos: warning: skipped secret key "bound-key" \(id 07\): .*extractable/m,
    );
    expect(view(backup)).toEqual(backupObjects);
  });

  it('after one key is deleted on the backup, a re-run copies only that key', () => {
    const before = view(backup);
    p11(ws, backup, ['--delete-object', '--type', 'secrkey', '--id', '01']);
    expect(objectCount(ws, backup)).toBe(before.length - 1);
    const out = json<CopyOut>(copy('primary', 'backup'));
    expect(statuses(out)).toEqual(
      KEYS.map((k) => `${k.label}/${k.id}:${k.id === '01' ? 'restored' : 'present'}`).sort(),
    );
    expect(out.publicObjects).toBe(0);
    expect(shape(listObjects(ws, backup))).toEqual(COPIED_SHAPE);
    expect(checkValues('backup')).toEqual(checkValues('primary'));
  });

  it('after a private key is deleted (its public key left), a re-run copies only that private key', () => {
    p11(ws, backup, ['--delete-object', '--type', 'privkey', '--id', '06']);
    const out = json<CopyOut>(copy('primary', 'backup'));
    expect(statuses(out)).toEqual(
      KEYS.map((k) => `${k.label}/${k.id}:${k.id === '06' ? 'restored' : 'present'}`).sort(),
    );
    expect(out.publicObjects).toBe(0);
    expect(shape(listObjects(ws, backup))).toEqual(COPIED_SHAPE);
  });
});

describe('a conflicting key on the target', () => {
  it('stops the copy with E_CONFLICT before any write, naming the source token', () => {
    // same class, label and id as the primary's AES key, different key material
    p11(ws, lookalike, [
      '--keygen',
      '--key-type',
      'AES:32',
      '--label',
      'aes-key',
      '--id',
      '01',
      '--extractable',
      '--sensitive',
    ]);
    const objects = view(lookalike);
    expect(objects).toHaveLength(1);
    const primaryObjects = view(primary);
    const files = snapshot(ws.dir);

    const r = copy('primary', 'lookalike');
    const line = expectUserError(r, 7, /nothing was written/);
    expect(line).toMatch(
      /^custos: error: 1 object on token "lookalike" conflicts with token "primary"; nothing was written \[E_CONFLICT\]$/,
    );
    expect(r.stderr).toMatch(
      /^custos: {3}"aes-key" \(id 01\): the token already has a secret key/m,
    );
    expect(view(lookalike)).toEqual(objects);
    expect(view(primary)).toEqual(primaryObjects);
    expect(snapshot(ws.dir)).toEqual(files);
    // the same through restore --from-hsm
    const back = copyBack('primary', 'lookalike');
    expect(expectUserError(back, 7)).toMatch(/conflicts with token "primary"/);
    expect(view(lookalike)).toEqual(objects);
  });
});

describe('a copy killed mid-run', () => {
  it('is finished by a re-run, with every key on the target exactly once', async () => {
    const args = ['backup', '--hsm', 'crash-src', '--to-hsm', 'crash-dst'];
    expect(objectCount(ws, crashDst)).toBe(0);
    const filesBefore = tokenObjectFiles(ws, 'crash-dst');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: ws.dir,
      LANG: 'C.UTF-8',
      NO_COLOR: '1',
      SOFTHSM2_CONF: ws.conf,
      ...ws.env,
    };
    const child = spawn(join(ROOT, 'bin', 'custos'), args, {
      cwd: ws.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    let created = 0;
    for (let i = 0; i < 4000 && created < 20; i++) {
      await new Promise((r) => setTimeout(r, 10));
      created = tokenObjectFiles(ws, 'crash-dst') - filesBefore;
    }
    child.kill('SIGKILL');
    const code = await exited;
    ws.runs.push({ args, status: code, stdout, stderr });
    expect(code, `the copy finished before it could be killed:\n${stderr}`).toBeNull();
    const partial = listObjects(ws, crashDst).filter((o) => o.kind !== 'Data').length; // not the run marker
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(CRASH_KEYS);

    const again = json<CopyOut>(custos(ws, [...args, '--json']));
    const present = again.keys.filter((k) => k.status === 'present').length;
    const restored = again.keys.filter((k) => k.status === 'restored').length;
    expect(present + restored).toBe(CRASH_KEYS);
    expect(present).toBeGreaterThanOrEqual(partial - 1);
    expect(restored).toBeGreaterThan(0);

    const labels = listObjects(ws, crashDst).map((o) => `${o.kind}|${o.label}|${o.id}`);
    const counts = new Map<string, number>();
    for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    expect(
      [...counts].filter(([, n]) => n > 1),
      'objects on the target more than once',
    ).toEqual([]);
    // Each source key is on the target exactly once.
    const copied = labels.filter((l) => /^Secret Key\|k-\d+\|[0-9a-f]{4}$/.test(l));
    expect(copied).toHaveLength(CRASH_KEYS);
    expect(new Set(copied)).toEqual(
      new Set(
        Array.from(
          { length: CRASH_KEYS },
          (_, i) => `Secret Key|k-${i}|${i.toString(16).padStart(4, '0')}`,
        ),
      ),
    );
    // Anything else can only be the one object SoftHSM was creating when the copy was killed:
    // SoftHSM's file store makes an object's file first and fills in its attributes afterwards,
    // so a SIGKILL inside C_UnwrapKey can leave an empty shell (no label, no id, no value; seen
    // as a non-sensitive, never-extractable secret key). Neither run reports it. More than one
    // such object, or any other extra object, fails here.
    const extra = listObjects(ws, crashDst).filter(
      (o) => !copied.includes(`${o.kind}|${o.label}|${o.id}`),
    );
    expect(extra.length, JSON.stringify(extra)).toBeLessThanOrEqual(1);
    for (const o of extra)
      expect(o).toEqual({
        kind: 'Secret Key',
        label: '',
        id: '',
        access: 'never extractable',
        usage: expect.any(String),
      });
    if (extra.length)
      console.log(
        'hsm-copy.test.ts: the killed copy left an empty SoftHSM object shell on the target (no label, no id)',
      );

    const third = json<CopyOut>(custos(ws, [...args, '--json']));
    expect(third.keys.every((k) => k.status === 'present')).toBe(true);
    expect(objectCount(ws, crashDst)).toBe(CRASH_KEYS + extra.length);
  });
});

describe('usage errors', () => {
  it('backup --to-hsm with --out is exit 2 and writes nothing', () => {
    const files = snapshot(ws.dir);
    const r = custos(ws, [
      'backup',
      '--hsm',
      'primary',
      '--to-hsm',
      'limited',
      '--out',
      'f.bundle',
    ]);
    expect(expectUserError(r, 2)).toMatch(
      /--to-hsm copies into a token; it takes no --out or --shares-dir \[E_USAGE\]$/,
    );
    expect(snapshot(ws.dir)).toEqual(files);
    expect(objectCount(ws, limited)).toBe(0);
  });

  it('restore --from-hsm with --bundle is exit 2 and writes nothing', () => {
    const files = snapshot(ws.dir);
    const r = custos(ws, [
      'restore',
      '--from-hsm',
      'backup',
      '--hsm',
      'limited',
      '--bundle',
      'b.bundle',
    ]);
    expect(expectUserError(r, 2)).toMatch(
      /--from-hsm copies from a token; it takes no --bundle, --share or --identity \[E_USAGE\]$/,
    );
    expect(snapshot(ws.dir)).toEqual(files);
    expect(objectCount(ws, limited)).toBe(0);
  });

  it('a copy from a token into itself is refused, by the same profile or by another profile naming it', () => {
    const objects = view(primary);
    for (const to of ['primary', 'primary-alias']) {
      const r = copy('primary', to);
      expect(expectUserError(r, 2)).toMatch(
        /the source and the target of the copy are the same token \("primary"\) \[E_USAGE\]$/,
      );
      expect(r.stderr).not.toMatch(/custos: transport:/);
    }
    const back = copyBack('primary-alias', 'primary');
    expect(expectUserError(back, 2)).toMatch(/same token \("primary"\)/);
    expect(view(primary)).toEqual(objects);
  });
});

describe('a policy', () => {
  it('limits the copy to the keys its keys section selects', () => {
    const custodians = makeCustodians(ws, ['p1', 'p2']);
    const lines = [
      'threshold: 2',
      'custodians:',
      ...custodians.flatMap((c) => [`  - id: ${c.id}`, `    recipient: ${c.recipient}`]),
      'keys:',
      '  include: ["rsa*", "aes-key"]',
      '  exclude: ["rsa3072-*"]',
    ];
    writeFileSync(join(ws.dir, 'copy-policy.yaml'), `${lines.join('\n')}\n`);
    const out = json<CopyOut>(
      copy('primary', 'limited', ['--policy', 'copy-policy.yaml', '--json']),
    );
    const chosen = KEYS.filter((k) => k.id === '01' || k.id === '03');
    expect(statuses(out)).toEqual(allWith('restored', chosen));
    expect(out.skipped).toEqual([]);
    expect(shape(listObjects(ws, limited))).toEqual([
      'Private Key|rsa2048-key|03',
      'Public Key|rsa2048-key|03',
      'Secret Key|aes-key|01',
    ]);

    // restore --from-hsm takes a policy too
    const again = initToken(ws, 'limited-2');
    profileFor(ws, profiles, again);
    writeConfig(ws, profiles);
    lines.splice(lines.indexOf('keys:') + 1, 2, '  include: ["aes-*"]');
    writeFileSync(join(ws.dir, 'copy-policy-2.yaml'), `${lines.join('\n')}\n`);
    const back = json<CopyOut>(
      copyBack('limited', 'limited-2', ['--policy', 'copy-policy-2.yaml', '--json']),
    );
    expect(statuses(back)).toEqual(['aes-key/01:restored']);
    expect(shape(listObjects(ws, again))).toEqual(['Secret Key|aes-key|01']);
  });

  it('a policy that selects nothing is refused before anything is written', () => {
    const text = readFileSync(join(ws.dir, 'copy-policy-2.yaml'), 'utf8').replace(
      '["aes-*"]',
      '["no-such-*"]',
    );
    writeFileSync(join(ws.dir, 'copy-policy-3.yaml'), text);
    const before = view(backup);
    const r = copy('primary', 'backup', ['--policy', 'copy-policy-3.yaml']);
    expect(expectUserError(r, 2)).toMatch(/no extractable key on token "primary" is selected/);
    expect(view(backup)).toEqual(before);
  });
});

describe('secrets', () => {
  it('no PIN appears in any output', () => {
    expect(ws.runs.length).toBeGreaterThan(20);
    expectNoSecrets(ws);
  });
});
