/**
 * The hardening of 150280f, each against real SoftHSM2 tokens:
 * - a key already on the target counts as present only with a strong proof (re-wrap) and its
 *   recorded attributes: a planted key with the recorded 3-byte KCV (found by a birthday search),
 *   the right value without extractability, with other usage flags or not sensitive, are all
 *   conflicts; the right value with the recorded attributes is present (proved by re-wrap);
 * - a different public key or certificate under a bundle key's label and id is a conflict; a
 *   backed-up certificate is recreated byte for byte;
 * - a policy recipient with a broken bech32 checksum is a policy error before any PIN is needed;
 * - an edited dealer key is a changed bundle, not a missing quorum;
 * - `hsm init` checks label bytes, blanks and PIN length before it creates a token;
 * - restore judges the shares before it asks for a PIN, and reads the PIN before the KEK exists;
 * - a failed write leaves no directory behind.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TIMEOUT,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  errorLine,
  exists,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  json,
  kwpUnwrap,
  listObjects,
  makeKey,
  mustRun,
  newPin,
  objectCount,
  openShare,
  p11,
  profileFor,
  proofsByLabel,
  publicKeyDer,
  publicKeyPem,
  secretKeyArgs,
  snapshot,
  toolEnv,
  withPkcs11js,
  writeConfig,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { backUp, backupArgs, sourceOnly } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let source: TokenRef;
let custodians: Custodian[];
let body: any;
let profiles: Profile[];
/** The AES key on the source (A) and another key with the same 3-byte KCV (B). */
let valueA: Buffer;
let valueB: Buffer;
/** A as unwrapped from the bundle with the KEK reassembled outside custos. */
let unwrappedA: Buffer;
let signerCert: Buffer;
let otherCert: Buffer;
let otherPublicKey: Buffer;

const BUNDLE = 'main.bundle';
const share = (id: string, bundle = BUNDLE) => `${bundle}.shares/${id}.share`;
const identity = (id: string) => custodians.find((c) => c.id === id)!.identity;
/** The usage the source's AES key is created with (every secret-key flag set explicitly). */
const USAGE_A = {
  encrypt: true,
  decrypt: true,
  sign: false,
  verify: false,
  wrap: true,
  unwrap: true,
  derive: false,
};

interface SecretSpec {
  label: string;
  id: string;
  value: Buffer;
  extractable: boolean;
  sensitive: boolean;
  usage: Record<string, boolean>;
  /**
   * CKA_WRAP_WITH_TRUSTED: the key can be wrapped only by a CKA_TRUSTED key (so not by the session
   * KEK).
   */
  wrapWithTrusted?: boolean;
}

/**
 * Creates an AES token object with a known CKA_VALUE through pkcs11js C_CreateObject, in a child
 * process, with every security and usage attribute set explicitly.
 */
function createAesObject(token: TokenRef, spec: SecretSpec): void {
  const { value, ...rest } = spec;
  withPkcs11js(
    ws,
    token,
    'C_CreateObject',
    rest,
    `
      lib.C_CreateObject(s, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: spec.sensitive },
        { type: P.CKA_EXTRACTABLE, value: spec.extractable },
        { type: P.CKA_LABEL, value: spec.label },
        { type: P.CKA_ID, value: Buffer.from(spec.id, 'hex') },
        { type: P.CKA_VALUE, value: Buffer.from(process.env.KEY_VALUE, 'hex') },
        { type: P.CKA_WRAP_WITH_TRUSTED, value: !!spec.wrapWithTrusted },
        ...Object.entries(flag).map(([k, t]) => ({ type: t, value: !!spec.usage[k] })),
      ]);`,
    { KEY_VALUE: value.toString('hex') },
  );
}

/** Two different AES-256 keys with the same 3-byte KCV: a birthday search, a few thousand tries. */
function kcvCollision(): [Buffer, Buffer] {
  const seen = new Map<string, Buffer>();
  for (let i = 0; i < 1_000_000; i++) {
    const k = randomBytes(32);
    const kcv = aesKcv(k);
    const other = seen.get(kcv);
    if (other && !other.equals(k)) return [other, k];
    seen.set(kcv, k);
  }
  throw new Error('no KCV collision in 1M tries');
}

/** AES-ECB of a zero block by the token, with the key of this id (an outside KCV). */
function tokenKcv(token: TokenRef, id: string): string {
  const input = join(ws.dir, 'zero16.bin');
  const output = join(ws.dir, `kcv-${randomBytes(4).toString('hex')}.bin`);
  writeFileSync(input, Buffer.alloc(16));
  p11(ws, token, [...secretKeyArgs('--encrypt', 'AES-ECB', id), '-i', input, '-o', output]);
  return readFileSync(output).subarray(0, 3).toString('hex');
}

const targets = new Map<string, { token: TokenRef; pinVar: string }>();

/** A new, empty target token with a custos.yaml profile of the same name (PIN in an env var). */
function freshTarget(label: string): TokenRef {
  const token = initToken(ws, label);
  const { pinVar } = profileFor(ws, profiles, token, label);
  writeConfig(ws, profiles);
  targets.set(label, { token, pinVar });
  return token;
}

const target = (label: string) => targets.get(label)!;

/**
 * A fresh target holding an AES key under the bundle's "planted-aes" label and id, with this value,
 * and the recorded attributes unless `attributes` says otherwise.
 */
function plantedTarget(
  label: string,
  value: Buffer,
  attributes: Partial<Omit<SecretSpec, 'label' | 'id' | 'value'>> = {},
): TokenRef {
  const t = freshTarget(label);
  createAesObject(t, {
    label: 'planted-aes',
    id: 'a1',
    value,
    extractable: true,
    sensitive: true,
    usage: USAGE_A,
    ...attributes,
  });
  return t;
}

function restore(
  hsm: string,
  ids: string[],
  opts: {
    bundle?: string;
    extra?: string[];
    env?: Record<string, string | undefined>;
    cwd?: string;
  } = {},
): Run {
  const bundle = opts.bundle ?? BUNDLE;
  return custos(
    ws,
    [
      'restore',
      '--bundle',
      bundle,
      '--hsm',
      hsm,
      ...(opts.extra ?? []),
      ...ids.flatMap((id) => ['--share', join(ws.dir, share(id))]),
      ...ids.flatMap((id) => ['--identity', identity(id)]),
    ],
    { env: opts.env, cwd: opts.cwd },
  );
}

/** A conflict: exit 7, [E_CONFLICT], the detail lines matching, and the token exactly as it was. */
function expectConflict(
  r: Run,
  token: TokenRef,
  before: ReturnType<typeof listObjects>,
  ...details: RegExp[]
): void {
  const line = expectUserError(r, 7);
  expect(line).toMatch(
    /^custos: error: 1 object on token ".*" conflicts with the bundle; nothing was written \[E_CONFLICT\]$/,
  );
  for (const d of details) expect(r.stderr, describeRun(r)).toMatch(d);
  expect(listObjects(ws, token), 'objects on the target after the refused restore').toEqual(before);
}

const record = (label: string) => {
  const r = body.keys.find((k: { label: string }) => k.label === label);
  expect(r, `bundle record of ${label}`).toBeDefined();
  return r;
};

/** A certificate for signer.pub.pem issued by the outside CA (ca.key): DER, written to `out`. */
function issueCertificate(subject: string, out: string): Buffer {
  mustRun(
    'openssl',
    [
      'x509',
      '-new',
      '-subj',
      subject,
      '-key',
      'ca.key',
      '-force_pubkey',
      'signer.pub.pem',
      '-days',
      '30',
      '-outform',
      'DER',
      '-out',
      out,
    ],
    { env: toolEnv(ws), cwd: ws.dir },
  );
  return readFileSync(join(ws.dir, out));
}

beforeAll(() => {
  ({ ws, source, custodians, profiles } = sourceOnly({
    workspace: 'hardening',
    source: 'vault',
    standardKeys: false,
    custodians: ['r1', 'r2', 'r3'],
    threshold: 2,
  }));
  [valueA, valueB] = kcvCollision();
  ws.secrets.add(valueA.toString('hex'));
  ws.secrets.add(valueB.toString('hex'));
  createAesObject(source, {
    label: 'planted-aes',
    id: 'a1',
    value: valueA,
    extractable: true,
    sensitive: true,
    usage: USAGE_A,
  });
  // an RSA pair made by pkcs11-tool, with a certificate for its public key issued by an outside CA
  makeKey(ws, source, { kind: 'rsa', label: 'signer', id: '03' });
  const opts = { env: toolEnv(ws), cwd: ws.dir };
  publicKeyPem(ws, source, '03', join(ws.dir, 'signer.pub.pem'));
  mustRun(
    'openssl',
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'],
    opts,
  );
  signerCert = issueCertificate('/CN=custos test signer', 'signer.der');
  p11(ws, source, [
    '--write-object',
    join(ws.dir, 'signer.der'),
    '--type',
    'cert',
    '--label',
    'signer',
    '--id',
    '03',
  ]);
  // another RSA public key, and another certificate, for the clashes on targets
  mustRun(
    'openssl',
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'other.key'],
    opts,
  );
  mustRun(
    'openssl',
    ['pkey', '-in', 'other.key', '-pubout', '-outform', 'DER', '-out', 'other.pub.der'],
    opts,
  );
  otherPublicKey = readFileSync(join(ws.dir, 'other.pub.der'));
  otherCert = issueCertificate('/CN=someone else', 'other.der');
  json(backUp(ws, 'vault', BUNDLE, ['--json']));
  body = bundleBody(join(ws.dir, BUNDLE));
  // the KEK reassembled outside custos (age CLI + secrets.js), and A unwrapped from its blob
  // (OpenSSL KWP)
  const kek = combineKek(
    ws,
    ['r1', 'r3'].map((id) => openShare(ws, join(ws.dir, share(id)), identity(id))),
  );
  expect(aesKcv(kek)).toBe(body.kek.kcv);
  unwrappedA = kwpUnwrap(kek, Buffer.from(record('planted-aes').wrapped, 'base64'));
  kek.fill(0);
});

afterAll(() => cleanup(ws));

describe('the fixture', () => {
  it('A and B differ but share the KCV the bundle records for A; the bundle holds A, the RSA pair and its certificate', () => {
    expect(valueA.equals(valueB)).toBe(false);
    expect(aesKcv(valueA)).toBe(aesKcv(valueB));
    expect(unwrappedA.equals(valueA)).toBe(true);
    const a = record('planted-aes');
    expect(a.checkValue).toEqual({ method: 'aes-ecb-zero', value: aesKcv(valueA) });
    expect(a.extractable).toBe(true);
    expect(a.sensitive).toBe(true);
    expect(a.usage).toMatchObject(USAGE_A);
    const signer = record('signer');
    expect(signer.publicKey?.label).toBe('signer');
    expect(signer.certificates).toHaveLength(1);
    expect(Buffer.from(signer.certificates[0].value, 'base64').equals(signerCert)).toBe(true);
    expect(otherCert.equals(signerCert)).toBe(false);
  });
});

describe('1. a planted key cannot pass as present', () => {
  const CANNOT_SHOW =
    /^custos: {3}"planted-aes" \(id a1\): the token already has a secret key with this label and id, and custos cannot show it is the same key with the same attributes$/m;

  /** A restore into the planted target is refused as a conflict, and leaves it as it was. */
  const expectRefused = (t: TokenRef, ids: string[], before = listObjects(ws, t)) =>
    expectConflict(restore(t.label, ids), t, before, CANNOT_SHOW);

  it('another key with the recorded 3-byte KCV, non-extractable, same usage: E_CONFLICT naming the key, token unchanged', () => {
    const t = plantedTarget('plant-kcv', valueB, { extractable: false });
    // outside check: the planted key really gives the recorded check value
    expect(tokenKcv(t, 'a1')).toBe(record('planted-aes').checkValue.value);
    const before = listObjects(ws, t);
    expect(before).toHaveLength(1);
    expectRefused(t, ['r1', 'r2'], before);
  });

  it('the same KCV twin with the recorded attributes (extractable, sensitive, same usage): the re-wrap tells them apart', () => {
    const t = plantedTarget('plant-kcv-x', valueB);
    expect(tokenKcv(t, 'a1')).toBe(record('planted-aes').checkValue.value);
    expectRefused(t, ['r2', 'r3']);
  });

  it('the KCV twin with the recorded attributes but wrappable only by trusted keys (no re-wrap possible): the KCV alone is not enough', () => {
    const t = plantedTarget('plant-trusted', valueB, { wrapWithTrusted: true });
    expect(tokenKcv(t, 'a1')).toBe(record('planted-aes').checkValue.value);
    const before = listObjects(ws, t);
    expect(before[0]?.access).toMatch(/\bsensitive\b.*\bextractable\b/);
    expectRefused(t, ['r1', 'r3'], before);
  });

  it('the right value (unwrapped from the bundle) but not extractable: E_CONFLICT', () => {
    const t = plantedTarget('plant-bound', unwrappedA, { extractable: false });
    expectRefused(t, ['r1', 'r2']);
  });

  it('the right value, extractable, but other usage flags (may also derive): E_CONFLICT', () => {
    const t = plantedTarget('plant-usage', unwrappedA, { usage: { ...USAGE_A, derive: true } });
    expectRefused(t, ['r1', 'r2']);
  });

  it('the right value, extractable, same usage, but not sensitive: E_CONFLICT', () => {
    const t = plantedTarget('plant-open', unwrappedA, { sensitive: false });
    expectRefused(t, ['r1', 'r2']);
  });

  it('control: the right value with the recorded attributes is present, proved with a re-wrap, and not duplicated', () => {
    const t = plantedTarget('plant-good', unwrappedA);
    expect(objectCount(ws, t)).toBe(1);
    const r = restore('plant-good', ['r1', 'r3'], { extra: ['--json'] });
    expect(r.status, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    const status = proofsByLabel(out);
    expect(status['planted-aes']).toMatch(/^present\/(check value \+ )?rewrap$/);
    expect(status.signer).toMatch(/^restored\//);
    expect(out.certificates).toBe(1);
    expect(out.publicObjects).toBe(1);
    const objects = listObjects(ws, t);
    expect(objects.filter((o) => o.label === 'planted-aes')).toHaveLength(1);
    expect(objects.map((o) => `${o.kind}/${o.label}/${o.id}`).sort()).toEqual([
      'Certificate/signer/03',
      'Private Key/signer/03',
      'Public Key/signer/03',
      'Secret Key/planted-aes/a1',
    ]);
  });
});

describe("2. public keys and certificates under a bundle key's label and id", () => {
  /** A fresh target holding this object under the signer's label and id. */
  function clashingTarget(label: string, file: string, type: 'pubkey' | 'cert'): TokenRef {
    const t = freshTarget(label);
    p11(ws, t, [
      '--write-object',
      join(ws.dir, file),
      '--type',
      type,
      '--label',
      'signer',
      '--id',
      '03',
    ]);
    return t;
  }

  it('a different public key: E_CONFLICT naming "different public key"; nothing written', () => {
    const t = clashingTarget('clash-pub', 'other.pub.der', 'pubkey');
    const before = listObjects(ws, t);
    expect(before.map((o) => `${o.kind}/${o.label}/${o.id}`)).toEqual(['Public Key/signer/03']);
    // the clashing object really is another key (read back through OpenSSL)
    expect(publicKeyDer(ws, t, '03').equals(otherPublicKey)).toBe(true);
    expect(publicKeyDer(ws, source, '03').equals(otherPublicKey)).toBe(false);
    expectConflict(
      restore('clash-pub', ['r1', 'r2']),
      t,
      before,
      /^custos: {3}"signer" \(id 03\): the token already has a different public key with this label and id$/m,
    );
  });

  it('a different certificate: E_CONFLICT naming "different certificate"; nothing written', () => {
    const t = clashingTarget('clash-cert', 'other.der', 'cert');
    const before = listObjects(ws, t);
    expect(before.map((o) => `${o.kind}/${o.label}/${o.id}`)).toEqual(['Certificate/signer/03']);
    expectConflict(
      restore('clash-cert', ['r2', 'r3']),
      t,
      before,
      /^custos: {3}"signer" \(id 03\): the token already has a different certificate labelled "signer" with this id$/m,
    );
  });

  it('the backed-up certificate is recreated byte for byte (pkcs11-tool --read-object), and a re-run finds it the same', () => {
    const t = freshTarget('cert-copy');
    expectOk(restore('cert-copy', ['r1', 'r2']));
    const out = join(ws.dir, 'cert-copy.der');
    p11(ws, t, ['--read-object', '--type', 'cert', '--id', '03', '-o', out]);
    expect(readFileSync(out).equals(signerCert)).toBe(true);
    // the identical certificate and public key already there are not conflicts
    const objects = listObjects(ws, t);
    const again = json(restore('cert-copy', ['r2', 'r3'], { extra: ['--json'] }));
    expect(again.certificates).toBe(0);
    expect(again.publicObjects).toBe(0);
    expect(listObjects(ws, t)).toEqual(objects);
  });
});

describe('3. a policy recipient with a wrong bech32 checksum', () => {
  it('is E_POLICY naming the custodian, with the PIN variable unset, and nothing is written', () => {
    const good = custodians[1]!.recipient;
    const charset = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
    const last = good.slice(-1);
    const bad = `${good.slice(0, -1)}${last === 'q' ? 'p' : 'q'}`;
    // the edit passes the policy's pattern; only the checksum is wrong (the age CLI refuses it too)
    expect(bad).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(charset).toContain(bad.slice(-1));
    const age = spawnSync('age', ['-r', bad, '-o', '/dev/null'], {
      input: 'x',
      env: toolEnv(ws),
    });
    expect(age.status).not.toBe(0);
    const policy = readFileSync(join(ws.dir, 'policy.yaml'), 'utf8').replace(good, bad);
    expect(policy).toContain(bad);
    writeFileSync(join(ws.dir, 'bad-policy.yaml'), policy);

    const files = snapshot(ws.dir);
    const r = custos(
      ws,
      ['backup', '--hsm', 'vault', '--policy', 'bad-policy.yaml', '--out', 'badpolicy.bundle'],
      { env: { PIN_VAULT: undefined } },
    );
    const line = expectUserError(r, 3);
    expect(line).toMatch(/the recipient of custodian "r2" is not a valid age key.*\[E_POLICY\]$/);
    expect(r.stderr).not.toMatch(/PIN|terminal/);
    expect(snapshot(ws.dir)).toEqual(files);
  });

  it('control: the good policy with the PIN variable unset does need the PIN (E_PIN_SOURCE), so the order above is real', () => {
    const files = snapshot(ws.dir);
    const r = custos(
      ws,
      ['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'nopin.bundle'],
      { env: { PIN_VAULT: undefined } },
    );
    expect(expectUserError(r, 3)).toMatch(/\$PIN_VAULT, which is not set \[E_PIN_SOURCE\]$/);
    expect(snapshot(ws.dir)).toEqual(files);
  });
});

describe('4. an edited dealer key', () => {
  it('one base64 character of dealer.publicKey changed: E_BUNDLE_TAMPERED with a full quorum, not E_QUORUM', () => {
    const text = readFileSync(join(ws.dir, BUNDLE), 'utf8');
    const key: string = body.dealer.publicKey;
    expect(text.split(key)).toHaveLength(2);
    const at = 10;
    const edited = `${key.slice(0, at)}${key[at] === 'A' ? 'B' : 'A'}${key.slice(at + 1)}`;
    // still canonical base64 of 32 bytes
    expect(edited).not.toBe(key);
    expect(Buffer.from(edited, 'base64')).toHaveLength(32);
    expect(Buffer.from(edited, 'base64').toString('base64')).toBe(edited);
    writeFileSync(join(ws.dir, 'dealer-edited.bundle'), text.replace(key, edited));
    const t = freshTarget('dealer-target');
    const files = snapshot(ws.dir);
    const r = restore('dealer-target', ['r1', 'r2', 'r3'], { bundle: 'dealer-edited.bundle' });
    const line = expectUserError(r, 4);
    expect(line).toMatch(
      /dealer-edited\.bundle matches the signature of none of its shares: the bundle has been changed \[E_BUNDLE_TAMPERED\]$/,
    );
    expect(r.stderr).not.toMatch(/E_QUORUM/);
    expect(objectCount(ws, t)).toBe(0);
    expect(snapshot(ws.dir)).toEqual(files);
  });
});

describe('5. hsm init checks the label and PINs before it creates a token', () => {
  let cwd: string;
  let storeConf: string;
  let pin: string;
  let soPin: string;

  beforeAll(() => {
    cwd = join(ws.dir, 'embedded');
    mkdirSync(cwd);
    storeConf = join(cwd, '.custos', 'softhsm2.conf');
    pin = newPin(ws);
    soPin = newPin(ws);
  });

  const init = (label: string, env: Record<string, string> = {}) =>
    custos(ws, ['hsm', 'init', label], {
      cwd,
      env: { CUSTOS_SO_PIN: soPin, CUSTOS_PIN: pin, ...env },
    });

  /**
   * Labels of the initialised tokens in the embedded store, by softhsm2-util (none if there is no
   * store).
   */
  function storeLabels(): string[] {
    if (!exists(storeConf)) return [];
    const out = mustRun('softhsm2-util', ['--show-slots'], {
      env: toolEnv(ws, storeConf),
      cwd,
    }).toString();
    const labels: string[] = [];
    let initialised = false;
    for (const line of out.split('\n')) {
      const i = /^\s+Initialized:\s+(\S+)/.exec(line);
      if (i) initialised = i[1] === 'yes';
      const l = /^\s+Label:\s+(.*)$/.exec(line);
      if (l && initialised) labels.push((l[1] ?? '').trim());
    }
    return labels;
  }

  const tokenDirs = () =>
    exists(join(cwd, '.custos', 'tokens')) ? readdirSync(join(cwd, '.custos', 'tokens')) : [];

  it('a label with a trailing space: exit 2, no token', () => {
    const r = init('name ');
    expect(expectUserError(r, 2)).toMatch(/without leading or trailing blanks \[E_USAGE\]$/);
    expect(storeLabels()).toEqual([]);
    expect(tokenDirs()).toEqual([]);
  });

  it('a label of 33 bytes in 17 characters: exit 2, no token', () => {
    const label = `a${'é'.repeat(16)}`;
    expect(label.length).toBe(17);
    expect(Buffer.byteLength(label)).toBe(33);
    const r = init(label);
    expect(expectUserError(r, 2)).toMatch(/must be 1 to 32 bytes of UTF-8.*\[E_USAGE\]$/);
    expect(storeLabels()).toEqual([]);
    expect(tokenDirs()).toEqual([]);
  });

  it('a 300-character user PIN: exit 2, no token', () => {
    const r = init('longpin', { CUSTOS_PIN: `p${'x'.repeat(299)}` });
    expect(expectUserError(r, 2)).toMatch(/the user PIN must be 4 to 255 bytes long \[E_USAGE\]$/);
    expect(storeLabels()).toEqual([]);
    expect(tokenDirs()).toEqual([]);
  });

  it('afterwards `hsm init ok` works, and so does a label of exactly 32 bytes; nothing else was created', () => {
    expect(expectOk(init('ok')).stdout).toMatch(/created token "ok"/);
    const label32 = 'é'.repeat(16);
    expect(Buffer.byteLength(label32)).toBe(32);
    expectOk(init(label32));
    expect(storeLabels().sort()).toEqual(['ok', label32].sort());
    expect(tokenDirs()).toHaveLength(2);
  });
});

describe('6. restore judges the shares before it asks for the PIN', () => {
  it('too few shares and no PIN anywhere (profile variable unset): E_QUORUM, not a PIN error', () => {
    const t = freshTarget('pin-order');
    const r = restore('pin-order', ['r2'], { env: { [target('pin-order').pinVar]: undefined } });
    expect(expectUserError(r, 5)).toMatch(/1 of 2 shares accepted: 1 more needed.*\[E_QUORUM\]$/);
    expect(r.stderr).not.toMatch(/PIN|terminal/);
    expect(objectCount(ws, t)).toBe(0);
  });

  it('too few shares, embedded store, no CUSTOS_PIN and no terminal: E_QUORUM, not E_NO_TTY', () => {
    const r = restore('ok', ['r3'], {
      cwd: join(ws.dir, 'embedded'),
      bundle: join(ws.dir, BUNDLE),
      env: { CUSTOS_PIN: undefined },
    });
    expectUserError(r, 5, /\[E_QUORUM\]$/m);
    expect(r.stderr).not.toMatch(/PIN|terminal/);
  });

  it('enough shares, profile PIN variable unset: E_PIN_SOURCE, and nothing about the KEK on stderr', () => {
    const r = restore('pin-order', ['r1', 'r3'], {
      env: { [target('pin-order').pinVar]: undefined },
    });
    expect(expectUserError(r, 3)).toMatch(/\[E_PIN_SOURCE\]$/);
    expect(r.stderr).not.toMatch(/kek|key-encryption|check value|\bmac\b/i);
  });

  it('enough shares, embedded store, no CUSTOS_PIN and no terminal: E_NO_TTY, and nothing about the KEK on stderr', () => {
    const r = restore('ok', ['r1', 'r2'], {
      cwd: join(ws.dir, 'embedded'),
      bundle: join(ws.dir, BUNDLE),
      env: { CUSTOS_PIN: undefined },
    });
    expect(expectUserError(r, 8)).toMatch(/needs a terminal.*\[E_NO_TTY\]$/);
    expect(r.stderr).not.toMatch(/kek|key-encryption|check value|\bmac\b/i);
  });

  it('the KEK is not assembled before the PIN is read: a bundle whose MAC only the KEK can check stops at the PIN', () => {
    // change the MAC line only: the shares still accept the body; only the assembled KEK can tell
    const text = readFileSync(join(ws.dir, BUNDLE), 'utf8');
    const m = /\n--- hmac-sha256 (\S+)\n$/.exec(text);
    expect(m).not.toBeNull();
    const mac = Buffer.from(m![1]!, 'base64');
    mac[0] = (mac[0] ?? 0) ^ 1;
    writeFileSync(
      join(ws.dir, 'mac-edited.bundle'),
      `${text.slice(0, m!.index)}\n--- hmac-sha256 ${mac.toString('base64')}\n`,
    );
    const { token, pinVar } = target('pin-order');
    const noPin = restore('pin-order', ['r1', 'r2'], {
      bundle: 'mac-edited.bundle',
      env: { [pinVar]: undefined },
    });
    expect(expectUserError(noPin, 3)).toMatch(/\[E_PIN_SOURCE\]$/);
    // control: with the PIN, the KEK is assembled and the MAC refuses the bundle
    const withPin = restore('pin-order', ['r1', 'r2'], { bundle: 'mac-edited.bundle' });
    expect(expectUserError(withPin, 4)).toMatch(
      /mac-edited\.bundle fails its MAC.*\[E_BUNDLE_TAMPERED\]$/,
    );
    expect(objectCount(ws, token)).toBe(0);
  });
});

describe('7. a failed write leaves no new directories', () => {
  let failed: Run;

  it('--out under a regular file and --shares-dir newdir/deep: a typed error, and newdir/ is not left behind', () => {
    writeFileSync(join(ws.dir, 'blocker'), 'a regular file, not a directory\n');
    const files = snapshot(ws.dir);
    expect(exists(join(ws.dir, 'newdir'))).toBe(false);
    failed = custos(ws, backupArgs('vault', 'blocker/x.bundle', ['--shares-dir', 'newdir/deep']));
    const line = expectUserError(failed, 3);
    expect(line).toMatch(/could not write .*blocker\/x\.bundle.*\[E_[A-Z]+\]$/);
    expect(failed.stderr).toMatch(/^custos: hint: nothing was written/m);
    expect(exists(join(ws.dir, 'newdir'))).toBe(false);
    expect(snapshot(ws.dir)).toEqual(files);
  });

  it('and the error is E_FILE: E_EXISTS means a file appeared during the backup (docs/errors.md), which is not what happened', () => {
    // blocker/ is a regular file: Node's recursive mkdir reports EEXIST for it, and custos maps any
    // EEXIST to E_EXISTS
    expect(errorLine(failed)).toMatch(/\[E_FILE\]$/);
  });

  it('control: the same shares dir with a writable --out is created and filled', () => {
    backUp(ws, 'vault', 'ok.bundle', ['--shares-dir', 'newdir/deep']);
    expect(readdirSync(join(ws.dir, 'newdir', 'deep')).sort()).toEqual([
      'r1.share',
      'r2.share',
      'r3.share',
    ]);
  });
});

describe('secrets', () => {
  it('no PIN, identity, share value, KEK or key value appears in any output', () => {
    expectNoSecrets(ws, [
      unwrappedA.toString('hex'),
      unwrappedA.toString('base64'),
      valueB.toString('base64'),
    ]);
  });
});
