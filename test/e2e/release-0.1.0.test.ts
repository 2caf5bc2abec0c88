/**
 * Files written by custos 0.1.0 (commit 7c50c30), frozen in test/fixtures/release-0.1.0/ (see its
 * README.md), read by the custos of today. Whatever the formats become, these files must keep
 * working: the bundle restores with 3 of its 5 shares into a fresh SoftHSM2 token, every key proved
 * by outside tools against values measured on the source token when the fixtures were made
 * (pkcs11-tool AES and HMAC outputs; signatures made on the restored token verified by openssl with
 * the source's public keys); every share verifies and 2 of 5 are no quorum; the ceremony file
 * parses and its signature verifies, the ceremony (long expired) reports itself expired and refuses
 * new shares, and its frozen host state still opens and judges the accepted submission; the audit
 * log verifies and fails when one byte changes; the handover package verifies with the recipient's
 * key (and opens with openssl alone to the source's keys) and fails when one byte changes; the
 * handover request's rules are read as they stood.
 *
 * Nothing here is compared with a value computed by custos now: the expected values come from
 * oracle.json (pkcs11-tool and openssl on the source token), from the frozen files' own bytes
 * (hashed here with node:crypto or sha256sum), or from the age and openssl CLIs.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  verify as nodeVerify,
} from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ROOT,
  TIMEOUT,
  aesCbcArgs,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  ed25519PublicKey,
  ed25519VerifyArgs,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  json,
  kwpUnwrap,
  listObjects,
  mustRun,
  objectCount,
  openShare,
  opensslUnwrap,
  opensslVerify,
  p11Output,
  profileFor,
  publicKeyDer,
  signEcdsa,
  signRsa,
  workspace,
  writeConfig,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const FROZEN = join(ROOT, 'test', 'fixtures', 'release-0.1.0');
const IDS = ['hale-llp', 'okafor-law', 'lindqvist', 'dr-lead', 'ciso'] as const;
const DFS_IDS = ['hale-llp', 'okafor-law', 'lindqvist'] as const;
const LABELS = ['aes-256-key', 'hmac-key', 'rsa-2048-key', 'ec-p256-key'];

interface Oracle {
  keys: {
    'aes-256-key': { id: string; aesCbcZeroIvOver32ZeroBytes: string; kcv: string };
    'hmac-key': { id: string; hmacSha256: string };
    'rsa-2048-key': { id: string; publicKeyPem: string; spkiSha256: string };
    'ec-p256-key': { id: string; publicKeyPem: string; spkiSha256: string };
  };
  hmacMessage: string;
}

let ws: Workspace;
/** A copy of the frozen directory: nothing a test does can touch the repository's files. */
let fx: string;
let oracle: Oracle;
let nonce: string;
let fresh: TokenRef;
let empty: TokenRef;
const profiles: Profile[] = [];

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const fxPath = (p: string) => join(fx, p);
const fxRead = (p: string) => readFileSync(fxPath(p));
const toolEnv = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: ws.dir,
  LANG: 'C.UTF-8',
});
const sh = (cmd: string, args: string[], input?: Buffer | string) =>
  mustRun(cmd, args, { env: toolEnv(), cwd: ws.dir, input });
const run = (args: string[], cwd = ws.dir): Run => custos(ws, args, { cwd });
/** `--share` for each frozen custodian's share of a frozen bundle, then `--identity` for each. */
const fxQuorum = (bundle: string, ids: readonly string[]) => [
  ...ids.flatMap((id) => ['--share', `fx/${bundle}.shares/${id}.share`]),
  ...ids.flatMap((id) => ['--identity', `fx/custodians/${id}.key`]),
];

/** dist/ of the custos under test (the build of this checkout), for its parsers. */
async function dist(module: string): Promise<any> {
  return import(pathToFileURL(join(ROOT, 'dist', module)).href);
}

/**
 * A copy of a frozen file with exactly one byte changed: the byte `at` bytes into the first
 * `needle` (to `to`, else to A or B).
 */
function oneByteChanged(file: string, out: string, needle: string, at = 0, to?: string): string {
  const bytes = fxRead(file);
  const pos = bytes.indexOf(needle);
  expect(pos, `${needle} in ${file}`).toBeGreaterThanOrEqual(0);
  const copy = Buffer.from(bytes);
  const old = copy[pos + at] as number;
  copy[pos + at] =
    to !== undefined && to.charCodeAt(0) !== old ? to.charCodeAt(0) : old === 0x41 ? 0x42 : 0x41;
  let differ = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== copy[i]) differ++;
  expect(differ).toBe(1);
  const path = join(ws.dir, out);
  writeFileSync(path, copy, { mode: 0o600 });
  return path;
}

/** The lines of a text file, without the empty string after the final newline. */
const lines = (buf: Buffer) => buf.toString('utf8').split('\n').slice(0, -1);

/**
 * The bytes a bundle's MAC covers: everything before its last `--- hmac-sha256 ` line
 * (bundle-format.md).
 */
function bundleAuthenticated(file: string): Buffer {
  const b = fxRead(file);
  const at = b.lastIndexOf('\n--- hmac-sha256 ');
  expect(at).toBeGreaterThan(0);
  return b.subarray(0, at + 1);
}

/** A ceremony file read by hand: body, and its Ed25519 signature checked with node:crypto. */
function readCeremonyByHand(file: string): { body: any; verifies: boolean } {
  const bytes = fxRead(file);
  expect(bytes.subarray(0, 18).toString('utf8')).toBe('custos-ceremony/1\n');
  // byte offsets, not string indexes: the file holds non-ASCII names (Lindqvist Advokatbyrå)
  const at = bytes.lastIndexOf('\n--- ed25519 ');
  expect(at).toBeGreaterThan(0);
  const body = JSON.parse(bytes.subarray(18, at + 1).toString('utf8'));
  const signature = Buffer.from(
    bytes
      .subarray(at + '\n--- ed25519 '.length)
      .toString('utf8')
      .trim(),
    'base64',
  );
  expect(signature).toHaveLength(64);
  const key = ed25519PublicKey(body.signingKey);
  return { body, verifies: nodeVerify(null, bytes.subarray(0, at + 1), key, signature) };
}

/** The age recipient of an identity file, by the age CLI. */
const recipientOf = (identity: string) => sh('age-keygen', ['-y', identity]).toString().trim();

/**
 * The frozen ceremony host state, set up as `ceremony open` left it on its host, in a fresh host
 * directory.
 */
function hostCopy(name: string, opts: { acceptedFrom?: string } = {}): string {
  const host = join(ws.dir, name);
  const dir = join(host, '.custos', 'ceremonies', nonce);
  mkdirSync(join(dir, 'accepted'), { recursive: true, mode: 0o700 });
  chmodSync(join(host, '.custos'), 0o700);
  chmodSync(join(host, '.custos', 'ceremonies'), 0o700);
  chmodSync(dir, 0o700);
  copyFileSync(fxPath(`ceremony-host/${nonce}/host.key`), join(dir, 'host.key'));
  chmodSync(join(dir, 'host.key'), 0o600);
  copyFileSync(
    opts.acceptedFrom ?? fxPath(`ceremony-host/${nonce}/accepted/hale-llp.submission`),
    join(dir, 'accepted', 'hale-llp.submission'),
  );
  chmodSync(join(dir, 'accepted', 'hale-llp.submission'), 0o600);
  copyFileSync(fxPath('dr-restore.ceremony'), join(host, 'dr-restore.ceremony'));
  copyFileSync(fxPath('dr.bundle'), join(host, 'dr.bundle'));
  return host;
}

/** The host key's age identity alone in a file, for the age CLI. */
function hostAgeIdentity(): string {
  const text = fxRead(`ceremony-host/${nonce}/host.key`).toString('utf8');
  const line = /^AGE-SECRET-KEY-1\S+$/m.exec(text)?.[0];
  expect(line).toBeDefined();
  const path = join(ws.dir, 'host-age.key');
  writeFileSync(path, `${line}\n`, { mode: 0o600 });
  return path;
}

beforeAll(() => {
  ws = workspace('release-010');
  mkdirSync(join(ws.dir, 'tmp'), { mode: 0o700 });
  ws.env.TMPDIR = join(ws.dir, 'tmp');
  ws.env.CUSTOS_ACTOR = 'release-0.1.0-test';
  fx = join(ws.dir, 'fx');
  cpSync(FROZEN, fx, { recursive: true });
  // git keeps no modes: give the secret files the modes custos wrote them with
  for (const f of [
    ...IDS.map((id) => `dr.bundle.shares/${id}.share`),
    ...DFS_IDS.map((id) => `dfs.bundle.shares/${id}.share`),
    ...IDS.map((id) => `custodians/${id}.key`),
    'recipient.key',
    'hale-llp.submission',
    'dr.bundle',
    'dfs.bundle',
  ])
    chmodSync(fxPath(f), 0o600);
  oracle = JSON.parse(fxRead('oracle.json').toString('utf8')) as Oracle;
  const hosts = readdirSync(fxPath('ceremony-host'));
  expect(hosts).toHaveLength(1);
  nonce = hosts[0] as string;
  // secrets that no output may show: the test identities, the host key, the recipient key
  for (const id of IDS) {
    const secret = fxRead(`custodians/${id}.key`)
      .toString('utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-1'));
    ws.secrets.add(secret as string);
  }
  for (const l of fxRead(`ceremony-host/${nonce}/host.key`).toString('utf8').split('\n')) {
    if (l.startsWith('AGE-SECRET-KEY-1')) ws.secrets.add(l);
    if (l.startsWith('ed25519-pkcs8: ')) ws.secrets.add(l.slice(15));
  }
  for (const l of lines(fxRead('recipient.key')).filter((x) => !x.startsWith('-----')))
    ws.secrets.add(l);

  fresh = initToken(ws, 'fx-fresh');
  empty = initToken(ws, 'fx-empty');
  profileFor(ws, profiles, fresh, 'fresh');
  profileFor(ws, profiles, empty, 'empty');
  writeConfig(ws, profiles);
});

afterAll(() => cleanup(ws));

// ---------------------------------------------------------------- the frozen files themselves

describe('the frozen files', () => {
  it('are byte for byte the files custos 0.1.0 wrote (sha256sum -c SHA256SUMS), and nothing was added', () => {
    const out = mustRun('sha256sum', ['--check', '--strict', 'SHA256SUMS'], {
      env: toolEnv(),
      cwd: FROZEN,
    }).toString();
    const listed = lines(readFileSync(join(FROZEN, 'SHA256SUMS'))).map((l) => l.slice(66));
    expect(out.split('\n').filter((l) => l.endsWith(': OK'))).toHaveLength(listed.length);
    const onDisk: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else onDisk.push(relative(FROZEN, p));
      }
    };
    walk(FROZEN);
    expect(onDisk.filter((f) => f !== 'README.md' && f !== 'SHA256SUMS').sort()).toEqual(
      [...listed].sort(),
    );
    expect(listed.length).toBeGreaterThan(20);
  });

  it('are what they say: the bundle opens by its documented format (age CLI, secrets.js, OpenSSL key unwrap) to the source keys of the oracle', () => {
    const body = bundleBody(fxPath('dr.bundle'));
    expect(body.tool).toBe('custos 0.1.0');
    const plaintexts = ['okafor-law', 'lindqvist', 'ciso'].map((id) =>
      openShare(ws, fxPath(`dr.bundle.shares/${id}.share`), fxPath(`custodians/${id}.key`)),
    );
    const kek = combineKek(ws, plaintexts);
    expect(aesKcv(kek)).toBe(body.kek.kcv);
    const unwrap = (label: string) =>
      kwpUnwrap(
        kek,
        Buffer.from(body.keys.find((k: { label: string }) => k.label === label).wrapped, 'base64'),
      );
    const aes = unwrap('aes-256-key');
    const hmac = unwrap('hmac-key');
    for (const b of [aes, hmac]) ws.secrets.add(b.toString('hex'));
    expect(aesKcv(aes)).toBe(oracle.keys['aes-256-key'].kcv);
    expect(createHmac('sha256', hmac).update(oracle.hmacMessage).digest('hex')).toBe(
      oracle.keys['hmac-key'].hmacSha256,
    );
    for (const label of ['rsa-2048-key', 'ec-p256-key'] as const) {
      const spki = createPublicKey(
        createPrivateKey({ key: unwrap(label), format: 'der', type: 'pkcs8' }),
      ).export({ format: 'der', type: 'spki' });
      expect(sha256(spki), label).toBe(oracle.keys[label].spkiSha256);
    }
  });
});

// ---------------------------------------------------------------- the bundle and its shares

describe('the frozen bundle and shares', () => {
  it('shares verify accepts each of the five frozen shares, naming its custodian and the index age shows inside it', () => {
    for (const id of IDS) {
      const index = /^index: (\d+)$/m.exec(
        openShare(ws, fxPath(`dr.bundle.shares/${id}.share`), fxPath(`custodians/${id}.key`)),
      )?.[1];
      expect(index, id).toBeDefined();
      const r = expectOk(
        run(['shares', 'verify', '--bundle', 'fx/dr.bundle', ...fxQuorum('dr.bundle', [id])]),
      );
      expect(r.stdout, describeRun(r)).toContain(id);
      expect(r.stdout, describeRun(r)).toMatch(new RegExp(`share ${index} of 5`));
    }
    for (const id of DFS_IDS) {
      expectOk(
        run(['shares', 'verify', '--bundle', 'fx/dfs.bundle', ...fxQuorum('dfs.bundle', [id])]),
      );
    }
  });

  it('shares verify refuses a frozen share against the other frozen bundle (it can fail)', () => {
    const r = run([
      'shares',
      'verify',
      '--bundle',
      'fx/dfs.bundle',
      ...fxQuorum('dr.bundle', ['hale-llp']),
    ]);
    expect(r.status, describeRun(r)).not.toBe(0);
    expect(r.stderr).toMatch(/custos: error: .*\[E_[A-Z_]+\]/);
  });

  it('2 of the 5 frozen shares are no quorum: E_QUORUM (exit 5), and the target token stays empty', () => {
    expect(objectCount(ws, empty)).toBe(0);
    const r = run([
      'restore',
      '--bundle',
      'fx/dr.bundle',
      '--hsm',
      'empty',
      ...fxQuorum('dr.bundle', ['hale-llp', 'dr-lead']),
    ]);
    expectUserError(r, 5, /\[E_QUORUM\]/);
    expect(objectCount(ws, empty)).toBe(0);
  });

  it('the bundle restores with 3 of the 5 frozen shares into a fresh SoftHSM2 token; custos proves every key', () => {
    expect(objectCount(ws, fresh)).toBe(0);
    const r = json(
      run([
        'restore',
        '--bundle',
        'fx/dr.bundle',
        '--hsm',
        'fresh',
        ...fxQuorum('dr.bundle', ['lindqvist', 'dr-lead', 'ciso']),
        '--json',
      ]),
    );
    expect(r.bundleId).toBe(bundleBody(fxPath('dr.bundle')).bundleId);
    expect([...r.custodians].sort()).toEqual(['ciso', 'dr-lead', 'lindqvist']);
    expect(r.keys.map((k: { label: string }) => k.label).sort()).toEqual([...LABELS].sort());
    for (const k of r.keys) {
      expect(k.status, k.label).toBe('restored');
      expect(k.proof, k.label).not.toBe('none');
    }
  });

  it('pkcs11-tool sees the four keys and both public keys on the restored token, the public keys equal to the frozen PEMs', () => {
    const objects = listObjects(ws, fresh);
    const kinds = objects.map((o) => `${o.kind}/${o.label}/${o.id}`).sort();
    expect(kinds).toEqual([
      'Private Key/ec-p256-key/04',
      'Private Key/rsa-2048-key/03',
      'Public Key/ec-p256-key/04',
      'Public Key/rsa-2048-key/03',
      'Secret Key/aes-256-key/01',
      'Secret Key/hmac-key/02',
    ]);
    for (const label of ['rsa-2048-key', 'ec-p256-key'] as const) {
      const k = oracle.keys[label];
      const frozen = sh('openssl', [
        'pkey',
        '-pubin',
        '-in',
        fxPath(k.publicKeyPem),
        '-outform',
        'DER',
      ]);
      expect(sha256(frozen), label).toBe(k.spkiSha256);
      expect(sha256(publicKeyDer(ws, fresh, k.id)), label).toBe(k.spkiSha256);
    }
  });

  it('the restored AES key encrypts, and the HMAC key MACs, exactly as the source token did (pkcs11-tool vs the frozen oracle)', () => {
    const zero = join(ws.dir, 'zero32.bin');
    writeFileSync(zero, Buffer.alloc(32));
    const aesOut = p11Output(
      ws,
      fresh,
      aesCbcArgs(oracle.keys['aes-256-key'].id, zero),
      join(ws.dir, 'aes.out'),
    );
    expect(aesOut.toString('hex')).toBe(oracle.keys['aes-256-key'].aesCbcZeroIvOver32ZeroBytes);
    expect(aesOut.subarray(0, 3).toString('hex')).toBe(oracle.keys['aes-256-key'].kcv);
    const msg = join(ws.dir, 'hmac-message.txt');
    writeFileSync(msg, oracle.hmacMessage);
    const macOut = p11Output(
      ws,
      fresh,
      ['--sign', '-m', 'SHA256-HMAC', '--id', oracle.keys['hmac-key'].id, '-i', msg],
      join(ws.dir, 'hmac.out'),
    );
    expect(macOut.toString('hex')).toBe(oracle.keys['hmac-key'].hmacSha256);
    // and the bundle, written by 0.1.0, recorded the same AES check value the source token gives
    const aes = bundleBody(fxPath('dr.bundle')).keys.find(
      (k: { label: string }) => k.label === 'aes-256-key',
    );
    expect(aes.checkValue).toEqual({
      method: 'aes-ecb-zero',
      value: oracle.keys['aes-256-key'].kcv,
    });
  });

  it('signatures made with the restored RSA and EC keys verify with openssl against the frozen source public keys', () => {
    const data = join(ws.dir, 'to-sign.txt');
    writeFileSync(data, `signed on the restored token at ${new Date().toISOString()}\n`);
    const other = join(ws.dir, 'other.txt');
    writeFileSync(other, 'other data\n');
    const rsaPem = fxPath(oracle.keys['rsa-2048-key'].publicKeyPem);
    const rsaSig = join(ws.dir, 'rsa.sig');
    signRsa(ws, fresh, oracle.keys['rsa-2048-key'].id, data, rsaSig);
    const okRsa = opensslVerify(rsaPem, rsaSig, data);
    expect(okRsa.status, okRsa.stderr).toBe(0);
    expect(okRsa.stdout).toMatch(/Verified OK/);
    const ecPem = fxPath(oracle.keys['ec-p256-key'].publicKeyPem);
    const ecSig = join(ws.dir, 'ec.sig');
    const digest = join(ws.dir, 'to-sign.sha256');
    signEcdsa(ws, fresh, oracle.keys['ec-p256-key'].id, data, digest, ecSig);
    const okEc = opensslVerify(ecPem, ecSig, data);
    expect(okEc.status, okEc.stderr).toBe(0);
    // the oracle can fail: the same signatures do not verify other data, nor under the other key
    expect(opensslVerify(rsaPem, rsaSig, other).status).not.toBe(0);
    expect(opensslVerify(ecPem, ecSig, other).status).not.toBe(0);
    expect(opensslVerify(ecPem, rsaSig, data).status).not.toBe(0);
  });
});

// ---------------------------------------------------------------- the ceremony and the submission

describe('the frozen ceremony', () => {
  it("parses with this custos's parser, and its signature verifies (node:crypto); it names the frozen bundle and custodians", async () => {
    const { parseCeremony } = await dist('core/ceremony.js');
    const { verifyEd25519 } = await dist('crypto/ed25519.js');
    const parsed = parseCeremony(
      'dr-restore.ceremony',
      fxRead('dr-restore.ceremony'),
      verifyEd25519,
    );
    const byHand = readCeremonyByHand('dr-restore.ceremony');
    expect(byHand.verifies).toBe(true);
    expect(JSON.parse(JSON.stringify(parsed.body))).toEqual(byHand.body);
    const body = parsed.body;
    expect(body.nonce).toBe(nonce);
    expect(body.purpose).toBe('restore');
    expect(Date.parse(body.expires) - Date.parse(body.created)).toBe(15 * 60_000);
    const bundle = bundleBody(fxPath('dr.bundle'));
    expect(body.subject).toMatchObject({
      kind: 'bundle',
      file: 'dr.bundle',
      bundleId: bundle.bundleId,
      bundleDigest: sha256(bundleAuthenticated('dr.bundle')),
    });
    expect(body.subject.keys.map((k: { label: string }) => k.label).sort()).toEqual(
      [...LABELS].sort(),
    );
    expect(body.dealer).toBe(bundle.dealer.publicKey);
    expect([body.threshold, body.total]).toEqual([3, 5]);
    expect(body.custodians.map((c: { id: string }) => c.id)).toEqual([...IDS]);
    for (const c of body.custodians)
      expect(c.recipient, c.id).toBe(recipientOf(fxPath(`custodians/${c.id}.key`)));
    // the host key is this ceremony's: its age identity's recipient is the file's
    expect(body.recipient).toBe(recipientOf(hostAgeIdentity()));
  });

  it('one changed byte in a copy fails the parser (E_CEREMONY_FORMAT) and the signature', async () => {
    const { parseCeremony } = await dist('core/ceremony.js');
    const { verifyEd25519 } = await dist('crypto/ed25519.js');
    const edited = oneByteChanged(
      'dr-restore.ceremony',
      'edited.ceremony',
      '"openedBy": "ceremony-lead"',
      14,
      'C',
    );
    let code: string | undefined;
    try {
      parseCeremony('edited.ceremony', readFileSync(edited), verifyEd25519);
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    expect(code).toBe('E_CEREMONY_FORMAT');
    const r = run(['ceremony', 'status', edited]);
    expectUserError(r, 3, /\[E_CEREMONY_FORMAT\]/);
  });

  it('ceremony status on the frozen host state: expired, hale-llp accepted, the rest waiting', () => {
    const host = hostCopy('host-status');
    const expires = readCeremonyByHand('dr-restore.ceremony').body.expires;
    expect(Date.now()).toBeGreaterThan(Date.parse(expires));
    const s = json(run(['ceremony', 'status', 'dr-restore.ceremony', '--json'], host));
    expect(s).toMatchObject({
      ceremony: nonce,
      purpose: 'restore',
      expires,
      expired: true,
      closed: null,
      threshold: 3,
      quorum: 3,
      accepted: 1,
    });
    expect(s.custodians.map((c: { id: string; state: string }) => `${c.id}:${c.state}`)).toEqual([
      'hale-llp:accepted',
      'okafor-law:waiting',
      'lindqvist:waiting',
      'dr-lead:waiting',
      'ciso:waiting',
    ]);
  });

  it('share submit on the expired frozen ceremony is refused (E_CEREMONY), naming its expiry, and writes no submission', () => {
    const expires = readCeremonyByHand('dr-restore.ceremony').body.expires;
    const r = run([
      'share',
      'submit',
      '--ceremony',
      'fx/dr-restore.ceremony',
      ...fxQuorum('dr.bundle', ['okafor-law']),
      '--out',
      'okafor.submission',
      '--yes',
    ]);
    expectUserError(
      r,
      3,
      /\[E_CEREMONY\]/,
      new RegExp(`expired at ${expires.replace(/[.]/g, '\\.')}`),
    );
    expect(readdirSync(ws.dir)).not.toContain('okafor.submission');
  });
});

describe('the frozen submission', () => {
  it("parses, opens with the frozen host key (age CLI), and carries hale-llp's frozen share, bound to the frozen ceremony file", async () => {
    const { parseSubmission, parsePayload, sameHeader } = await dist('core/submission.js');
    const { parseShare } = await dist('core/share.js');
    const file = fxRead('hale-llp.submission');
    expect(file.equals(fxRead(`ceremony-host/${nonce}/accepted/hale-llp.submission`))).toBe(true);
    const { header, sealed } = parseSubmission('hale-llp.submission', file.toString('utf8'));
    const ceremony = readCeremonyByHand('dr-restore.ceremony').body;
    expect(header).toMatchObject({
      ceremony: nonce,
      ceremonyDigest: sha256(fxRead('dr-restore.ceremony')),
      custodian: 'hale-llp',
    });
    expect(Date.parse(header.submitted)).toBeGreaterThanOrEqual(Date.parse(ceremony.created));
    expect(Date.parse(header.submitted)).toBeLessThan(Date.parse(ceremony.expires));
    // the standard age CLI opens the sealed part with the host key's identity
    const sealedFile = join(ws.dir, 'sealed.age');
    writeFileSync(sealedFile, sealed);
    const payloadText = sh('age', ['-d', '-i', hostAgeIdentity(), sealedFile]).toString('utf8');
    const payload = parsePayload('hale-llp.submission', payloadText);
    expect(sameHeader(payload, header)).toBe(true);
    expect(payload.openedWith).toBe(recipientOf(fxPath('custodians/hale-llp.key')));
    const sharePlain = openShare(
      ws,
      fxPath('dr.bundle.shares/hale-llp.share'),
      fxPath('custodians/hale-llp.key'),
    );
    expect(payload.share).toBe(sharePlain);
    // the share inside is signed by the bundle's dealer key (checked with node:crypto) and names
    // this bundle
    const share = parseShare('payload', payload.share);
    expect(share.doc).toMatchObject({
      bundleId: ceremony.subject.bundleId,
      bundleDigest: ceremony.subject.bundleDigest,
      custodian: 'hale-llp',
      index: 1,
      threshold: 3,
      total: 5,
    });
    const dealer = ed25519PublicKey(ceremony.dealer);
    expect(nodeVerify(null, share.signed, dealer, share.signature)).toBe(true);
    // a wrong host key does not open it
    const wrong = join(ws.dir, 'wrong-host.key');
    sh('age-keygen', ['-o', wrong]);
    expect(spawnSync('age', ['-d', '-i', wrong, sealedFile]).status).not.toBe(0);
  });

  it('ceremony add on the frozen host state judges it: the accepted submission is re-opened with the host key and still counts; the same file given again is turned away as expired', () => {
    const host = hostCopy('host-add');
    copyFileSync(fxPath('hale-llp.submission'), join(host, 'again.submission'));
    const r = run(['ceremony', 'add', 'dr-restore.ceremony', 'again.submission', '--json'], host);
    expect(r.status, describeRun(r)).toBe(4);
    expect(r.stderr).toMatch(/\[E_SUBMISSION_REJECTED\]/);
    const out = JSON.parse(r.stdout);
    expect(out.accepted).toEqual([]);
    expect(out.rejected).toHaveLength(1);
    expect(out.rejected[0]).toMatchObject({ source: 'again.submission', reason: 'expired' });
    expect(out.quorum).toEqual({ accepted: 1, needed: 3, missing: 2 });
  });

  it("the same, with one byte of the kept submission's sealed part changed: the host state is reported changed (E_CEREMONY)", () => {
    const edited = oneByteChanged(
      'hale-llp.submission',
      'edited.submission',
      '-----BEGIN AGE ENCRYPTED FILE-----\n',
      40,
    );
    const host = hostCopy('host-edited', { acceptedFrom: edited });
    copyFileSync(fxPath('hale-llp.submission'), join(host, 'again.submission'));
    const r = run(['ceremony', 'add', 'dr-restore.ceremony', 'again.submission'], host);
    expectUserError(r, 3, /\[E_CEREMONY\]/, /hale-llp/);
  });
});

// ---------------------------------------------------------------- the audit log

describe('the frozen audit log', () => {
  it('audit verify passes: every entry, every signature, and the head is the SHA-256 of the last line', () => {
    const log = lines(fxRead('audit.jsonl'));
    const r = json(run(['audit', 'verify', 'fx/audit.jsonl', '--json']));
    expect(r).toMatchObject({
      entries: log.length,
      signed: log.filter((l) => l.includes('"sig":{')).length,
      head: sha256(log.at(-1) as string),
      problems: [],
    });
    expect(r.entries).toBe(23);
    expect(r.signed).toBe(10);
  });

  it('records the frozen files by their SHA-256', () => {
    const entries = lines(fxRead('audit.jsonl')).map((l) => JSON.parse(l));
    const first = (op: string) => entries.find((e) => e.op === op);
    expect(first('backup').artifacts.bundle).toBe(sha256(fxRead('dr.bundle')));
    for (const id of IDS)
      expect(first('backup').artifacts[`share:${id}`], id).toBe(
        sha256(fxRead(`dr.bundle.shares/${id}.share`)),
      );
    const open = first('ceremony-open');
    expect(open.ceremony).toBe(nonce);
    expect(open.artifacts).toEqual({
      bundle: sha256(bundleAuthenticated('dr.bundle')),
      ceremony: sha256(fxRead('dr-restore.ceremony')),
    });
    expect(open.detail.signingKey).toBe(readCeremonyByHand('dr-restore.ceremony').body.signingKey);
    expect(first('share-submit').artifacts.submission).toBe(sha256(fxRead('hale-llp.submission')));
    expect(first('submission-accepted').artifacts.submission).toBe(
      sha256(fxRead('hale-llp.submission')),
    );
    const request = fxRead('dfs.request');
    expect(first('handover-request').artifacts.request).toBe(
      sha256(request.subarray(0, request.indexOf('\n--- approval ') + 1)),
    );
    expect(first('handover-execute').artifacts.package).toBe(sha256(fxRead('dfs.package')));
    expect(entries.map((e) => e.op)).toEqual([
      'backup',
      'ceremony-open',
      'share-submit',
      'share-submit',
      'share-submit',
      'submission-accepted',
      'submission-accepted',
      'submission-accepted',
      'submission-rejected',
      'ceremony-close',
      'restore',
      'backup',
      'handover-request',
      'handover-approve',
      'handover-approve',
      'handover-approve',
      'ceremony-open',
      'share-submit',
      'share-submit',
      'submission-accepted',
      'submission-accepted',
      'handover-execute',
      'handover-verify',
    ]);
  });

  const edits: [string, () => string, RegExp][] = [
    // entry 4 is okafor-law's share-submit: "okafor-law" becomes "xkafor-law"
    [
      "an unsigned entry (a custodian's share-submit)",
      () => oneByteChanged('audit.jsonl', 'audit-actor.jsonl', '"actor":"okafor-law"', 9, 'x'),
      /line 4 \(entry 4\): edited/,
    ],
    // entry 6 is the first submission-accepted, signed with the ceremony key
    [
      'a signed entry (submission-accepted)',
      () =>
        oneByteChanged('audit.jsonl', 'audit-signed.jsonl', '"op":"submission-accepted"', 6, 'S'),
      /line 6 \(entry 6\): (edited|bad-signature)/,
    ],
    // the first hex digit of entry 12's prev (the hash of entry 11)
    [
      'a chain link (the prev of entry 12)',
      () => {
        const line = lines(fxRead('audit.jsonl'))[11] as string;
        expect(JSON.parse(line).seq).toBe(12);
        const at = line.indexOf('"prev":"') + 8;
        return oneByteChanged(
          'audit.jsonl',
          'audit-prev.jsonl',
          line,
          at,
          line[at] === '0' ? '1' : '0',
        );
      },
      /entry 1[12]/,
    ],
  ];
  for (const [what, edit, problem] of edits) {
    it(`audit verify fails (E_AUDIT_TAMPERED, exit 4) when one byte of ${what} is changed in a copy`, () => {
      const r = run(['audit', 'verify', edit()]);
      expectUserError(r, 4, /\[E_AUDIT_TAMPERED\]/, problem);
    });
  }
});

// ---------------------------------------------------------------- the handover

interface PackageBody {
  created: string;
  request: string;
  requestDigest: string;
  ceremony: string;
  transcript: string[];
  recipientSha256: string;
  oaep: { hash: string; mgf: string; label: string };
  keys: {
    label: string;
    id: string;
    class: string;
    keyType: string;
    checkValue: { method: string; value: string };
    wrapped: string;
  }[];
}

function packageBody(): PackageBody {
  const text = fxRead('dfs.package').toString('utf8');
  expect(text.split('\n')[0]).toBe('custos-handover/1');
  return JSON.parse(
    text.slice(text.indexOf('\n') + 1, text.lastIndexOf('\n--- ed25519 ') + 1),
  ) as PackageBody;
}

describe('the frozen handover', () => {
  it("handover verify --key with the frozen recipient key passes: every key unwraps and matches, with the oracle's values", () => {
    const r = json(
      run(['handover', 'verify', 'fx/dfs.package', '--key', 'fx/recipient.key', '--json']),
    );
    expect(r).toMatchObject({
      matter: 'DFS-2026-0001',
      authority: 'NY Department of Financial Services',
      basis: 'subpoena',
      documentSha256: sha256(fxRead('subpoena.pdf')),
      ceremony: readCeremonyByHand('dfs-handover.ceremony').body.nonce,
    });
    expect(
      r.approvals.map((a: { approver: string; role: string }) => `${a.approver}/${a.role}`).sort(),
    ).toEqual(['general-counsel/general-counsel', 'hale-llp/custodian', 'okafor-law/custodian']);
    expect(r.keys.map((k: { label: string }) => k.label).sort()).toEqual([...LABELS].sort());
    for (const k of r.keys) expect(k.unwrapped, k.label).toMatchObject({ matches: true });
    const byLabel = (l: string) => r.keys.find((k: { label: string }) => k.label === l);
    expect(byLabel('aes-256-key').checkValue).toEqual({
      method: 'aes-ecb-zero',
      value: oracle.keys['aes-256-key'].kcv,
    });
    for (const l of ['rsa-2048-key', 'ec-p256-key'] as const) {
      expect(byLabel(l).checkValue.method).toBe('spki-sha256');
      expect(oracle.keys[l].spkiSha256.startsWith(byLabel(l).checkValue.value), l).toBe(true);
    }
  });

  it("the package opens with openssl alone to the source's keys (AES KCV, HMAC, public keys of the oracle)", () => {
    const body = packageBody();
    expect(body.oaep.hash).toMatch(/^SHA-(1|256)$/);
    const md = body.oaep.hash === 'SHA-256' ? 'sha256' : 'sha1';
    const modulus = (
      /Modulus=([0-9A-F]+)/.exec(
        sh('openssl', ['rsa', '-in', fxPath('recipient.key'), '-noout', '-modulus']).toString(),
      ) as RegExpExecArray
    )[1] as string;
    const n = modulus.length / 2;
    expect(n).toBe(384);
    mkdirSync(join(ws.dir, 'unwrap'), { recursive: true });
    const got: Record<string, Buffer> = {};
    const recipient = { key: fxPath('recipient.key'), modulusBytes: n };
    for (const k of body.keys) {
      const blob = Buffer.from(k.wrapped, 'base64');
      const { bytes } = opensslUnwrap(ws, blob, recipient, md, join(ws.dir, 'unwrap', k.label));
      ws.secrets.add(bytes.toString('hex'));
      got[k.label] = bytes;
    }
    expect(Object.keys(got).sort()).toEqual([...LABELS].sort());
    expect(aesKcv(got['aes-256-key'] as Buffer)).toBe(oracle.keys['aes-256-key'].kcv);
    expect(
      createHmac('sha256', got['hmac-key'] as Buffer)
        .update(oracle.hmacMessage)
        .digest('hex'),
    ).toBe(oracle.keys['hmac-key'].hmacSha256);
    for (const l of ['rsa-2048-key', 'ec-p256-key'] as const) {
      const pkcs8 = join(ws.dir, 'unwrap', `${l}.p8`);
      writeFileSync(pkcs8, got[l] as Buffer, { mode: 0o600 });
      const spki = sh('openssl', [
        'pkey',
        '-inform',
        'DER',
        '-in',
        pkcs8,
        '-pubout',
        '-outform',
        'DER',
      ]);
      expect(sha256(spki), l).toBe(oracle.keys[l].spkiSha256);
    }
  });

  it("the package carries the frozen request and ceremony verbatim, and the transcript is the SHA-256 of the frozen log's ceremony lines", () => {
    const body = packageBody();
    expect(body.request).toBe(fxRead('dfs.request').toString('utf8'));
    expect(body.ceremony).toBe(fxRead('dfs-handover.ceremony').toString('utf8'));
    const request = fxRead('dfs.request');
    const digest = sha256(request.subarray(0, request.indexOf('\n--- approval ') + 1));
    expect(body.requestDigest).toBe(digest);
    const ceremony = readCeremonyByHand('dfs-handover.ceremony');
    expect(ceremony.verifies).toBe(true);
    expect(ceremony.body).toMatchObject({
      purpose: 'handover',
      request: digest,
      handover: { matter: 'DFS-2026-0001', quorum: 2 },
    });
    expect(body.recipientSha256).toBe(
      sha256(
        sh('openssl', ['pkey', '-pubin', '-in', fxPath('recipient.pub.pem'), '-outform', 'DER']),
      ),
    );
    const log = lines(fxRead('audit.jsonl'));
    const ceremonyLines = log.filter((l) => JSON.parse(l).ceremony === ceremony.body.nonce);
    const execute = ceremonyLines.findIndex((l) => JSON.parse(l).op === 'handover-execute');
    expect(execute).toBeGreaterThan(0);
    expect(body.transcript).toEqual(ceremonyLines.slice(0, execute).map((l) => sha256(l)));
  });

  const packageEdits: [string, string, number, string | undefined][] = [
    ['the creation time in the signed body (the hour 11 becomes 01)', '"created": "', 23, '0'],
    ['a wrapped key', '"wrapped": "', 40, undefined],
    ['the signature line', '--- ed25519 ', 20, undefined],
  ];
  for (const [what, needle, at, to] of packageEdits) {
    it(`handover verify fails on a copy with one byte of ${what} changed`, () => {
      const edited = oneByteChanged('dfs.package', `edited-${at}.package`, needle, at, to);
      const r = run(['handover', 'verify', edited, '--key', 'fx/recipient.key']);
      expect(r.status, describeRun(r)).not.toBe(0);
      expect(r.stderr, describeRun(r)).toMatch(/^custos: error: .*\[E_[A-Z_]+\]$/m);
      expect(r.stdout).not.toMatch(/verifies/);
    });
  }

  it('the frozen request parses: handover status reads its rules as they stood (all met but the quorum, which needs its ceremony)', () => {
    const request = fxRead('dfs.request');
    const head = request.subarray(0, request.indexOf('\n--- approval ') + 1);
    const s = json(run(['handover', 'status', 'fx/dfs.request', '--json']));
    expect(s.request).toBe(sha256(head));
    expect(s.matter).toBe('DFS-2026-0001');
    expect(s.ready).toBe(false);
    const state = Object.fromEntries(
      s.rules.map((r: { rule: string; met: boolean }) => [r.rule, r.met]),
    );
    expect(state).toEqual({
      'legal basis': true,
      scope: true,
      recipient: true,
      'approvals: general-counsel': true,
      'approvals: custodian': true,
      'notice period': true,
      'custodian quorum': false,
    });
    // the three approval lines, each verified here with openssl against the approver key in the
    // request's own policy text
    const body = JSON.parse(head.toString('utf8').slice('custos-handover-request/1\n'.length));
    const approvals = lines(request.subarray(head.length)).map((l) =>
      JSON.parse(l.slice('--- approval '.length)),
    );
    expect(approvals.map((a) => a.approver).sort()).toEqual([
      'general-counsel',
      'hale-llp',
      'okafor-law',
    ]);
    for (const a of approvals) {
      const keyLine = new RegExp(
        `- id: ${a.approver}\\n(?:    .*\\n)*?    (?:approver-key|key): (\\S+)`,
      ).exec(body.policy.text)?.[1];
      expect(keyLine, a.approver).toBeDefined();
      const pub = join(ws.dir, `approver-${a.approver}.pem`);
      writeFileSync(pub, `-----BEGIN PUBLIC KEY-----\n${keyLine}\n-----END PUBLIC KEY-----\n`);
      const statement = join(ws.dir, `approval-${a.approver}.txt`);
      writeFileSync(
        statement,
        `custos-handover-approval/1\nrequest: ${sha256(head)}\nrole: ${a.role}\napprover: ${a.approver}\ntime: ${a.time}\n`,
      );
      const sig = join(ws.dir, `approval-${a.approver}.sig`);
      writeFileSync(sig, Buffer.from(a.signature, 'base64'));
      expect(sh('openssl', ed25519VerifyArgs(pub, statement, sig)).toString()).toMatch(
        /Signature Verified Successfully/,
      );
    }
  });

  it('a copy of the request with one byte of its body changed no longer has its approvals (nor a digest the ceremony names)', () => {
    const edited = oneByteChanged(
      'dfs.request',
      'edited.request',
      '"matter": "DFS-2026-0001"',
      23,
      '2',
    );
    const r = run(['handover', 'status', edited, '--json']);
    if (r.status !== 0) {
      // a later custos may refuse the file outright; it must not pass it
      expect(r.stderr, describeRun(r)).toMatch(/^custos: error: .*\[E_HANDOVER_[A-Z]+\]$/m);
      return;
    }
    const s = JSON.parse(r.stdout);
    expect(s.matter).toBe('DFS-2026-0002');
    expect(s.request).not.toBe(readCeremonyByHand('dfs-handover.ceremony').body.request);
    expect(s.ready).toBe(false);
    const unmet: string[] = s.rules
      .filter((x: { met: boolean }) => !x.met)
      .map((x: { rule: string }) => x.rule);
    expect(unmet).toContain('approvals: general-counsel');
    expect(unmet).toContain('approvals: custodian');
    // nothing else changed: the rules that do not rest on the approvals are still met
    for (const rule of ['legal basis', 'scope', 'recipient', 'notice period'])
      expect(unmet, rule).not.toContain(rule);
  });
});

describe('outputs', () => {
  it('no run printed a secret: test identities, the host key, the recipient key, unwrapped key material', () => {
    expectNoSecrets(ws);
  });
});
