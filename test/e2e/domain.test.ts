/**
 * Escrow domains end to end, on real SoftHSM2 tokens in the embedded store of a temp workspace:
 * `domain init` once (3 of 5), backups made later with no custodian and no identity file on the
 * host, each restored with the same three shares and every key proved with pkcs11-tool and
 * OpenSSL; the domain secret and each bundle key reassembled outside custos (age CLI,
 * secrets.js-grempe, node:crypto); forged bundles refused before any key reaches a token;
 * `shares verify --domain`, a tampered domain file, enrolment by an endorsing HSM; rotation that
 * drops a custodian; and the audit log of it all.
 *
 * The custodians' identities live outside the workspace and are removed from disk while the
 * backups run. Every check compares against values computed by outside tools when the keys were
 * made, never against what custos printed.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createHash,
  createHmac,
  createCipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign as cryptoSign,
  verify as cryptoVerify,
} from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AUDIT_LOG,
  ROOT,
  TIMEOUT,
  ageCustodian,
  aesKcv,
  cleanup,
  custos,
  describeRun,
  expectNoSecrets,
  expectOk,
  expectUserError,
  json,
  kwpUnwrap,
  listObjects,
  makeKey,
  modeOf,
  mustRun,
  newPin,
  openShare,
  p11,
  publicKeyDer,
  publicKeyPem,
  shareValue,
  signEcdsa,
  signRsa,
  snapshot,
  writePolicy,
  type Custodian,
  type KeySpec,
  type Run,
  type TokenRef,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const require = createRequire(import.meta.url);
const secretsLib = require('secrets.js-grempe') as {
  init(bits: number): void;
  combine(shares: string[]): string;
};

const IDS = ['hale-llp', 'okafor-law', 'lindqvist', 'dr-lead', 'ciso'] as const;
type Id = (typeof IDS)[number];
const PATH_ONLY = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

let ws: Workspace;
/**
 * Outside the workspace: the custodians' identity files (removed while backups run) and the domain
 * secret the oracle rebuilds.
 */
let idDir: string;
let pin: string;
let soPin: string;
let storeConf: string;
let custodians: Map<Id, Custodian>;
/**
 * Extra secrets for the final scan: the domain identities and bundle keys the oracle reassembles.
 */
const extraSecrets: string[] = [];
const tokens = new Map<string, TokenRef>();
const tok = (label: string): TokenRef => tokens.get(label) as TokenRef;

// ---------------------------------------------------------------- outside oracles for keys

/** What outside tools said about a key on the source token when it was made. */
interface SourceKey extends KeySpec {
  /** aes: AES-ECB of a zero block (hex, whole block); generic: HMAC-SHA256 of MESSAGE (hex). */
  oracle?: string;
  /** rsa / ec: the public key as OpenSSL re-encodes it (PEM file, DER bytes). */
  pem?: string;
  spki?: Buffer;
}

const MESSAGE = Buffer.from('custos domain e2e: the same key on both tokens\n');
let zeroFile: string;
let messageFile: string;

function oracleOf(t: TokenRef, k: KeySpec): SourceKey {
  const out = join(ws.dir, `oracle-${randomBytes(4).toString('hex')}.bin`);
  const read = () => {
    const v = readFileSync(out).toString('hex');
    rmSync(out);
    return v;
  };
  switch (k.kind) {
    case 'aes':
      p11(ws, t, ['--encrypt', '-m', 'AES-ECB', '--id', k.id, '-i', zeroFile, '-o', out]);
      return { ...k, oracle: read() };
    case 'generic':
      p11(ws, t, ['--sign', '-m', 'SHA256-HMAC', '--id', k.id, '-i', messageFile, '-o', out]);
      return { ...k, oracle: read() };
    default:
      return {
        ...k,
        pem: publicKeyPem(ws, t, k.id, join(ws.dir, `source-${k.label}-${k.id}.pem`)),
        spki: publicKeyDer(ws, t, k.id),
      };
  }
}

/**
 * The key with this id on the token does what the source key did, as pkcs11-tool and OpenSSL see
 * it.
 */
function proveKey(t: TokenRef, k: SourceKey): void {
  const where = `${t.label}: ${k.kind} ${k.label} (${k.id})`;
  const tmp = (s: string) => join(ws.dir, `${s}-${randomBytes(4).toString('hex')}`);
  if (k.kind === 'aes' || k.kind === 'generic') {
    const out = tmp('out');
    if (k.kind === 'aes')
      p11(ws, t, ['--encrypt', '-m', 'AES-ECB', '--id', k.id, '-i', zeroFile, '-o', out]);
    else p11(ws, t, ['--sign', '-m', 'SHA256-HMAC', '--id', k.id, '-i', messageFile, '-o', out]);
    expect(readFileSync(out).toString('hex'), where).toBe(k.oracle);
    expect(k.oracle, where).toMatch(/^[0-9a-f]{32,64}$/);
    rmSync(out);
    return;
  }
  const data = tmp('data');
  const sig = tmp('sig');
  writeFileSync(data, `signed on ${t.label} with ${k.label} at ${new Date().toISOString()}\n`);
  if (k.kind === 'rsa') signRsa(ws, t, k.id, data, sig);
  else {
    const digest = tmp('digest');
    signEcdsa(ws, t, k.id, data, digest, sig);
    rmSync(digest);
  }
  const verify = (file: string) =>
    spawnOpenssl(['dgst', '-sha256', '-verify', k.pem as string, '-signature', sig, file]);
  expect(verify(data).stdout.toString(), where).toMatch(/Verified OK/);
  // and this check can fail: the signature does not verify over other data
  writeFileSync(data, 'other data\n');
  expect(verify(data).status, where).not.toBe(0);
  rmSync(data);
  rmSync(sig);
}

/** Another character of the same kind: a digit for a digit, a letter for a letter. */
/**
 * Another character of the same kind: a digit stays a digit, a hex letter a hex letter, a letter a
 * letter.
 */
function bump(c: number): number {
  if (c === 0x39) return 0x30;
  // f -> a: a hex digit must stay one, or the edit is a format error, not tampering
  if (c === 0x66) return 0x61;
  return c === 0x7a ? 0x79 : c === 0x5a ? 0x59 : c + 1;
}

function spawnOpenssl(args: string[]) {
  return spawnSync('openssl', args, { env: PATH_ONLY, cwd: ws.dir });
}

/** The objects a restore of these keys must leave on a token, as pkcs11-tool -O lists them. */
function expectedObjects(keys: readonly SourceKey[]): string[] {
  return keys
    .flatMap((k) =>
      k.kind === 'aes' || k.kind === 'generic'
        ? [`Secret Key/${k.label}/${k.id}`]
        : [`Private Key/${k.label}/${k.id}`, `Public Key/${k.label}/${k.id}`],
    )
    .sort();
}

function objectsOn(t: TokenRef): string[] {
  return listObjects(ws, t)
    .map((o) => `${o.kind}/${o.label}/${o.id}`)
    .sort();
}

// ---------------------------------------------------------------- reading custos files
// independently

interface Envelope {
  format: string;
  body: any;
  /** Format line and body: what MACs and signatures cover. */
  authenticated: Buffer;
  trailers: { tag: string; value: string }[];
}

/**
 * Splits a custos file as the formats describe: first line, JSON up to the first `\n--- `, trailer
 * lines.
 */
function readEnvelope(path: string): Envelope {
  const text = readFileSync(path, 'utf8');
  const nl = text.indexOf('\n');
  const end = text.indexOf('\n--- ') + 1;
  expect(end, path).toBeGreaterThan(nl);
  const trailers = text
    .slice(end)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^--- (\S+) (.*)$/.exec(l);
      expect(m, `${path}: ${l}`).not.toBeNull();
      return {
        tag: (m as RegExpExecArray)[1] as string,
        value: (m as RegExpExecArray)[2] as string,
      };
    });
  return {
    format: text.slice(0, nl),
    body: JSON.parse(text.slice(nl + 1, end)),
    authenticated: Buffer.from(text.slice(0, end), 'utf8'),
    trailers,
  };
}

function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The bundle MAC as docs/bundle-format.md defines it, computed with node:crypto. */
function docMac(kek: Buffer, authenticated: Buffer): string {
  const kMac = Buffer.from(
    hkdfSync('sha256', kek, Buffer.alloc(0), 'custos custos-bundle/1 mac', 32),
  );
  return createHmac('sha256', kMac).update(authenticated).digest('base64');
}

function checkP1363(pem: string, data: Buffer, signatureB64: string): boolean {
  return cryptoVerify(
    'sha256',
    data,
    { key: createPublicKey(readFileSync(pem)), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signatureB64, 'base64'),
  );
}

// ---------------------------------------------------------------- custodians outside the workspace

const outsideCustodian = (id: Id) =>
  ageCustodian(ws, id, `Custodian ${id}`, join(idDir, `${id}.key`));

const hidden = new Map<string, Buffer>();
/** Takes every identity file off the disk (kept in this test process's memory only). */
function hideIdentities(): void {
  for (const c of custodians.values()) {
    if (!existsSync(c.identity)) continue;
    hidden.set(c.identity, readFileSync(c.identity));
    rmSync(c.identity);
  }
}
function bringBackIdentities(): void {
  for (const [path, data] of hidden) writeFileSync(path, data, { mode: 0o600 });
  hidden.clear();
}

/** Every file under dir whose bytes hold an age secret key's prefix. */
function filesWithAgeSecrets(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (readFileSync(p).includes('AGE-SECRET-KEY-')) found.push(p);
    }
  };
  walk(dir);
  return found;
}

const shareOf = (domainFile: string, id: Id) => `${domainFile}.shares/${id}.share`;
/** --share and --identity arguments for these custodians' shares of a domain generation. */
function quorumArgs(
  domainFile: string,
  ids: readonly Id[],
  identityOf: (id: Id) => string = (id) => (custodians.get(id) as Custodian).identity,
): string[] {
  return [
    ...ids.flatMap((id) => ['--share', shareOf(domainFile, id)]),
    ...ids.flatMap((id) => ['--identity', identityOf(id)]),
  ];
}

/** `backup` of a profile's token to an escrow domain. */
const domainBackupArgs = (hsm: string, domainFile: string, out: string, extra: string[] = []) => [
  'backup',
  '--hsm',
  hsm,
  '--domain',
  domainFile,
  '--out',
  out,
  ...extra,
];

// ---------------------------------------------------------------- the domain secret, reassembled
// outside custos

/**
 * Opens the shares with the age CLI, combines them with secrets.js-grempe and writes the age
 * identity (0600) outside the workspace.
 */
function reassembleOutside(
  domainFile: string,
  ids: readonly Id[],
  name: string,
): { identityFile: string; text: string; plaintexts: string[] } {
  const plaintexts = ids.map((id) =>
    openShare(
      ws,
      join(ws.dir, shareOf(domainFile, id)),
      (custodians.get(id) as Custodian).identity,
    ),
  );
  secretsLib.init(8);
  const hex = secretsLib.combine(plaintexts.map(shareValue));
  const text = Buffer.from(hex, 'hex').toString('latin1');
  extraSecrets.push(hex, text);
  const identityFile = join(idDir, name);
  writeFileSync(identityFile, `${text}\n`, { mode: 0o600 });
  return { identityFile, text, plaintexts };
}

/**
 * `age -d -i IDENTITY` of a bundle's sealedKek.age: the 32-byte KEK, or null when age cannot open
 * it.
 */
function openSealedKek(body: any, identityFile: string): Buffer | null {
  const sealed = join(ws.dir, `sealed-${randomBytes(4).toString('hex')}.age`);
  writeFileSync(sealed, body.sealedKek.age);
  const r = spawnSync('age', ['-d', '-i', identityFile, sealed], { env: PATH_ONLY, cwd: ws.dir });
  rmSync(sealed);
  if (r.status !== 0) return null;
  extraSecrets.push(r.stdout.toString('hex'));
  return r.stdout;
}

// ---------------------------------------------------------------- set-up

/**
 * Keys on the primary token now (extractable ones, with their oracles); bound-key is made but never
 * backed up.
 */
const live = new Map<string, SourceKey>();

function addKey(t: TokenRef, k: KeySpec): void {
  makeKey(ws, t, k);
  if (k.extractable !== false) live.set(k.id, oracleOf(t, k));
}

function removeKey(t: TokenRef, id: string): void {
  const k = live.get(id) as SourceKey;
  if (k.kind === 'aes' || k.kind === 'generic')
    p11(ws, t, ['--delete-object', '--type', 'secrkey', '--id', id]);
  else {
    p11(ws, t, ['--delete-object', '--type', 'privkey', '--id', id]);
    p11(ws, t, ['--delete-object', '--type', 'pubkey', '--id', id]);
  }
  live.delete(id);
}

function embeddedToken(label: string, viaCustos: boolean): TokenRef {
  if (viaCustos) expectOk(custos(ws, ['hsm', 'init', label], { env: { CUSTOS_SO_PIN: soPin } }));
  else
    mustRun(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin],
      { env: { ...PATH_ONLY, SOFTHSM2_CONF: storeConf }, cwd: ws.dir },
    );
  const t: TokenRef = { label, pin, soPin, conf: storeConf };
  tokens.set(label, t);
  return t;
}

beforeAll(() => {
  ws = workspace('domain');
  idDir = mkdtempSync(join(tmpdir(), 'custos-e2e-domain-identities-'));
  pin = newPin(ws);
  soPin = newPin(ws);
  ws.env.CUSTOS_PIN = pin;
  storeConf = join(ws.dir, '.custos', 'softhsm2.conf');
  zeroFile = join(ws.dir, 'zero.bin');
  messageFile = join(ws.dir, 'message.bin');
  writeFileSync(zeroFile, Buffer.alloc(16));
  writeFileSync(messageFile, MESSAGE);
  custodians = new Map(IDS.map((id) => [id, outsideCustodian(id)]));
  writePolicy(ws, 'policy.yaml', 3, [...custodians.values()]);
  writePolicy(
    ws,
    'policy-2.yaml',
    3,
    [...custodians.values()].filter((c) => c.id !== 'ciso'),
  );

  // the enrolled source tokens through custos hsm init; the targets straight into the same store
  const primary = embeddedToken('primary', true);
  embeddedToken('second', true);
  for (const l of ['r-b1', 'r-b2', 'r-b3', 'empty', 'r-resealed', 'r-new', 'r-second'])
    embeddedToken(l, false);
  for (const k of [
    { kind: 'aes', label: 'aes-key', id: '01' },
    { kind: 'generic', label: 'hmac-key', id: '02' },
    { kind: 'rsa', label: 'rsa-key', id: '03' },
    { kind: 'ec', label: 'ec-key', id: '04' },
    { kind: 'aes', label: 'bound-key', id: '05', extractable: false },
  ] as KeySpec[])
    addKey(primary, k);
  hideIdentities();
});

afterAll(() => {
  cleanup(ws);
  if (!process.env.CUSTOS_E2E_KEEP) rmSync(idDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- the tests

describe('escrow domains on real SoftHSM2 tokens', () => {
  let domain: Envelope;
  let domainId: string;
  let recipient: string;
  /** The primary token's domain signing key as pkcs11-tool reads it. */
  let primaryDomainPem: string;
  const backups: { file: string; keys: SourceKey[]; json: any; body: any }[] = [];
  const kekOf = new Map<string, Buffer>();
  const THREE: Id[] = ['hale-llp', 'lindqvist', 'ciso'];

  it('domain init splits the domain secret 3 of 5 (no identity on the host) and enrols the primary token with a non-extractable P-256 key', () => {
    expect(filesWithAgeSecrets(idDir)).toEqual([]);
    const out = json(
      custos(ws, [
        'domain',
        'init',
        '--policy',
        'policy.yaml',
        '--out',
        'vault.domain',
        '--hsm',
        'primary',
        '--json',
      ]),
    );
    domain = readEnvelope(join(ws.dir, 'vault.domain'));
    expect(domain.format).toBe('custos-domain/1');
    domainId = domain.body.domainId;
    recipient = domain.body.seal.recipient;
    expect(domainId).toMatch(/^[0-9a-f]{32}$/);
    expect(recipient).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(domain.body.escrow).toMatchObject({ threshold: 3, total: 5 });
    expect(
      domain.body.escrow.custodians.map(
        (c: { id: string; recipient: string }) => `${c.id}=${c.recipient}`,
      ),
    ).toEqual(IDS.map((id) => `${id}=${custodians.get(id)?.recipient}`));
    expect(domain.trailers.map((t) => t.tag)).toEqual(['ed25519', 'enrolment']);
    expect(out.domainId).toBe(domainId);

    // one 0600 share per custodian, each opening only with that custodian's identity (checked in
    // case 2)
    const sharesDir = join(ws.dir, 'vault.domain.shares');
    expect(readdirSync(sharesDir).sort()).toEqual([...IDS].map((id) => `${id}.share`).sort());
    for (const id of IDS) expect(modeOf(join(sharesDir, `${id}.share`)), id).toBe(0o600);

    // the signing key on the token, as pkcs11-tool lists it: a sensitive, never-extractable EC
    // private key
    const own = listObjects(ws, tok('primary')).filter(
      (o) => o.label === `custos-domain-${domainId}`,
    );
    expect(own.map((o) => o.kind).sort()).toEqual(['Private Key', 'Public Key']);
    const priv = own.find((o) => o.kind === 'Private Key');
    expect(priv?.access.split(', ')).toEqual(
      expect.arrayContaining(['sensitive', 'never extractable']),
    );
    expect(priv?.access.split(', ')).not.toContain('extractable');
    expect(priv?.usage).toBe('sign');
    // the enrolment names exactly that key
    const enrolment = JSON.parse(domain.trailers[1]?.value as string);
    expect(enrolment.source.label).toBe('primary');
    expect(enrolment.keyId).toBe(priv?.id);
    expect(enrolment.endorser).toBe('authority');
    expect(enrolment.domain).toBe(sha256(domain.authenticated));
    expect(Buffer.from(enrolment.publicKey, 'base64')).toEqual(
      publicKeyDer(ws, tok('primary'), priv?.id as string),
    );
    primaryDomainPem = publicKeyPem(
      ws,
      tok('primary'),
      priv?.id as string,
      join(ws.dir, 'primary-domain-key.pem'),
    );
  });

  it('case 1: three backups over time, keys added and removed between them, with no identity file on the host, no TTY, PIN from CUSTOS_PIN', () => {
    // the custodians' identities are nowhere on disk while backups run
    for (const c of custodians.values()) expect(existsSync(c.identity), c.id).toBe(false);
    expect(filesWithAgeSecrets(ws.dir)).toEqual([]);
    expect(filesWithAgeSecrets(idDir)).toEqual([]);
    const primary = tok('primary');

    const backup = (file: string) => {
      const args = domainBackupArgs('primary', 'vault.domain', file, ['--json']);
      expect(args.some((a) => /identity|share/.test(a))).toBe(false);
      // stdin is a pipe (no TTY); only CUSTOS_PIN; no SO PIN, no passphrase
      const r = custos(ws, args, {
        env: { CUSTOS_SO_PIN: undefined, CUSTOS_PASSPHRASE: undefined },
        input: '',
      });
      const out = json(r);
      const keys = [...live.values()];
      backups.push({ file, keys, json: out, body: readEnvelope(join(ws.dir, file)).body });
      return out;
    };

    backup('b1.bundle');
    addKey(primary, { kind: 'aes', label: 'added-aes', id: '06' });
    addKey(primary, { kind: 'ec', label: 'added-ec', id: '07' });
    removeKey(primary, '02');
    backup('b2.bundle');
    removeKey(primary, '03');
    addKey(primary, { kind: 'generic', label: 'late-hmac', id: '08' });
    backup('b3.bundle');

    expect(
      backups.map((b) =>
        b.keys
          .map((k) => k.id)
          .sort()
          .join(','),
      ),
    ).toEqual(['01,02,03,04', '01,03,04,06,07', '01,04,06,07,08']);
    const created = backups.map((b) => Date.parse(b.body.created));
    expect(created[0]).toBeLessThan(created[1] as number);
    expect(created[1]).toBeLessThan(created[2] as number);
    expect(new Set(backups.map((b) => b.body.bundleId)).size).toBe(3);
    expect(new Set(backups.map((b) => b.body.kek.kcv)).size).toBe(3);

    for (const b of backups) {
      const file = join(ws.dir, b.file);
      const env = readEnvelope(file);
      expect(env.format, b.file).toBe('custos-bundle/2');
      expect(modeOf(file), b.file).toBe(0o600);
      // the bundle itself holds exactly that backup's keys; the non-extractable one and the domain
      // key are not in it
      expect(
        env.body.keys.map((k: { label: string; id: string }) => `${k.label}/${k.id}`).sort(),
        b.file,
      ).toEqual(b.keys.map((k) => `${k.label}/${k.id}`).sort());
      expect(
        env.body.skipped.map((s: { label: string }) => s.label),
        b.file,
      ).toEqual(['bound-key']);
      expect(b.json.keys.map((k: { id: string }) => k.id).sort(), b.file).toEqual(
        b.keys.map((k) => k.id).sort(),
      );
      expect(env.body.sealedKek.recipient).toBe(recipient);
      expect(env.body.domain.core).toEqual(domain.body);
      // trailers: the source HSM's signature, then the MAC
      expect(
        env.trailers.map((t) => t.tag),
        b.file,
      ).toEqual(['source-ecdsa-p256', 'hmac-sha256']);
      // the signature was made by the enrolled key on the token: verified with the public key
      // pkcs11-tool reads
      expect(
        checkP1363(primaryDomainPem, env.authenticated, env.trailers[0]?.value as string),
        b.file,
      ).toBe(true);
      const changed = Buffer.from(env.authenticated);
      changed[changed.length - 3] = (changed[changed.length - 3] as number) ^ 1;
      expect(checkP1363(primaryDomainPem, changed, env.trailers[0]?.value as string), b.file).toBe(
        false,
      );
    }
  });

  it('case 1: every bundle restores with the SAME 3 of 5 shares into a fresh token, each key proved with pkcs11-tool and OpenSSL, removed keys absent', () => {
    bringBackIdentities();
    for (const [i, b] of backups.entries()) {
      const target = tok(`r-b${i + 1}`);
      expect(objectsOn(target), target.label).toEqual([]);
      const out = json(
        custos(ws, [
          'restore',
          '--bundle',
          b.file,
          '--hsm',
          target.label,
          '--json',
          ...quorumArgs('vault.domain', THREE),
        ]),
      );
      expect(out.custodians.sort()).toEqual([...THREE].sort());
      expect(
        out.keys.every((k: { status: string }) => k.status === 'restored'),
        describeRun(ws.runs.at(-1) as Run),
      ).toBe(true);
      // the target holds exactly that backup's keys (and their public halves), nothing else
      expect(objectsOn(target), b.file).toEqual(expectedObjects(b.keys));
      for (const k of b.keys) proveKey(target, k);
    }
    // keys removed before a backup are absent from its restore; keys added after it are absent too
    expect(objectsOn(tok('r-b2'))).not.toContain('Secret Key/hmac-key/02');
    expect(objectsOn(tok('r-b3'))).not.toContain('Private Key/rsa-key/03');
    expect(objectsOn(tok('r-b1'))).not.toContain('Secret Key/added-aes/06');
    expect(objectsOn(tok('r-b3'))).toContain('Secret Key/late-hmac/08');
  });

  it('case 2: the domain secret reassembled outside custos (age CLI + secrets.js-grempe) opens every bundle key with stock age, and the keys unwrap with node:crypto', () => {
    const { identityFile, text, plaintexts } = reassembleOutside(
      'vault.domain',
      ['okafor-law', 'dr-lead', 'ciso'],
      'domain-gen1.key',
    );
    expect(modeOf(identityFile)).toBe(0o600);
    expect(text).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]+$/);
    // the shares name this domain and its core's digest, computed here over the domain file's bytes
    for (const p of plaintexts) {
      expect(p.split('\n')[0]).toBe('custos-domain-share/1');
      expect(p).toContain(`\ndomain: ${domainId}\n`);
      expect(p).toContain(`\ndomain-digest: ${sha256(domain.authenticated)}\n`);
    }
    // the identity is the one the domain file seals to (age-keygen -y)
    expect(
      mustRun('age-keygen', ['-y', identityFile], { env: PATH_ONLY, cwd: idDir }).toString().trim(),
    ).toBe(recipient);
    // two shares are not enough: combine() returns something, but not this identity
    secretsLib.init(8);
    expect(
      Buffer.from(secretsLib.combine(plaintexts.slice(0, 2).map(shareValue)), 'hex').toString(
        'latin1',
      ),
    ).not.toBe(text);

    for (const b of backups) {
      const env = readEnvelope(join(ws.dir, b.file));
      const kek = openSealedKek(env.body, identityFile);
      expect(kek, b.file).not.toBeNull();
      expect((kek as Buffer).length).toBe(32);
      kekOf.set(b.file, kek as Buffer);
      // its check value (AES-256-ECB of a zero block, also with openssl enc) is the bundle's
      expect(aesKcv(kek as Buffer), b.file).toBe(env.body.kek.kcv);
      const enc = mustRun(
        'openssl',
        ['enc', '-aes-256-ecb', '-nopad', '-K', (kek as Buffer).toString('hex')],
        { env: PATH_ONLY, cwd: ws.dir, input: Buffer.alloc(16) },
      );
      expect(enc.subarray(0, 3).toString('hex'), b.file).toBe(env.body.kek.kcv);
      // the MAC is the one docs/bundle-format.md defines
      expect(env.trailers[1]?.value, b.file).toBe(docMac(kek as Buffer, env.authenticated));
      // every wrapped key unwraps (RFC 5649, id-aes256-wrap-pad) to the source token's key
      for (const rec of env.body.keys as { id: string; label: string; wrapped: string }[]) {
        const src = b.keys.find((k) => k.id === rec.id) as SourceKey;
        const raw = kwpUnwrap(kek as Buffer, Buffer.from(rec.wrapped, 'base64'));
        const where = `${b.file}: ${rec.label}`;
        if (src.kind === 'aes') {
          const c = createCipheriv('aes-256-ecb', raw, null);
          c.setAutoPadding(false);
          expect(c.update(Buffer.alloc(16)).toString('hex'), where).toBe(src.oracle);
          expect(aesKcv(raw), where).toBe((src.oracle as string).slice(0, 6));
        } else if (src.kind === 'generic') {
          expect(createHmac('sha256', raw).update(MESSAGE).digest('hex'), where).toBe(src.oracle);
        } else {
          const spki = createPublicKey(
            createPrivateKey({ key: raw, format: 'der', type: 'pkcs8' }),
          ).export({ format: 'der', type: 'spki' });
          expect(Buffer.from(spki).equals(src.spki as Buffer), where).toBe(true);
        }
        raw.fill(0);
      }
    }
  });

  // ------------------------------------------------------------ case 4: forgery with only the
  // public domain file

  describe('case 4: a bundle forged with only the public domain file is refused before any key reaches the token', () => {
    let build: {
      domainBundleAuthenticatedBytes(contents: any, seal: any): Buffer;
      serialiseBundle(
        authenticated: Buffer,
        mac: Buffer,
        signature?: { by: 'source' | 'authority'; value: Buffer },
      ): Buffer;
      hmacWithKek(kek: Buffer, purpose: string, data: Buffer): Buffer;
      BUNDLE_MAC_PURPOSE: string;
    };
    /** The forger's own P-256 key and its "enrolment". */
    const forgerKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const forgerSpki = forgerKey.publicKey
      .export({ format: 'der', type: 'spki' })
      .toString('base64');
    const forgerKek = randomBytes(32);
    /** The AES key the forger wants the victim to take for its own. */
    const plantedKey = randomBytes(32);
    const GOOD: Id[] = ['hale-llp', 'okafor-law', 'lindqvist'];

    beforeAll(async () => {
      const bundleMod = await import(pathToFileURL(join(ROOT, 'dist/core/bundle.js')).href);
      const aesMod = await import(pathToFileURL(join(ROOT, 'dist/crypto/aes.js')).href);
      build = { ...bundleMod, hmacWithKek: aesMod.hmacWithKek };
      extraSecrets.push(forgerKek.toString('hex'), plantedKey.toString('hex'));
    });

    const wrapKwp = (kek: Buffer, key: Buffer) => {
      const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
      return Buffer.concat([c.update(key), c.final()]);
    };

    /**
     * Contents of the forger's choosing, from the public domain file alone: its core, its
     * recipient, the enrolled token's identity.
     */
    function forgedParts(): { contents: any; core: any; sealedAge: string } {
      const core = domain.body;
      const enrolled = JSON.parse(domain.trailers[1]?.value as string);
      const sealedFile = join(ws.dir, 'forger-kek.age');
      mustRun('age', ['-a', '-r', core.seal.recipient, '-o', sealedFile], {
        env: PATH_ONLY,
        cwd: ws.dir,
        input: forgerKek,
      });
      const sealedAge = readFileSync(sealedFile, 'utf8');
      rmSync(sealedFile);
      const contents = {
        bundleId: randomBytes(16).toString('hex'),
        created: new Date().toISOString(),
        tool: 'custos 0.1.0',
        source: enrolled.source,
        kek: { algorithm: 'AES-256', kcv: aesKcv(forgerKek) },
        wrap: { mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' },
        keys: [
          {
            class: 'secret',
            keyType: 'AES',
            label: 'aes-key',
            id: '01',
            bits: 256,
            usage: {
              encrypt: true,
              decrypt: true,
              sign: false,
              verify: false,
              wrap: false,
              unwrap: false,
              derive: false,
            },
            private: true,
            sensitive: true,
            extractable: true,
            checkValue: { method: 'aes-ecb-zero', value: aesKcv(plantedKey) },
            wrapped: wrapKwp(forgerKek, plantedKey).toString('base64'),
            certificates: [],
          },
        ],
        skipped: [],
        policy: core.policy,
      };
      return { contents, core, sealedAge };
    }

    function forge(
      name: string,
      chain: any[],
      sign?: (authenticated: Buffer) => { by: 'source' | 'authority'; value: Buffer },
      core?: any,
    ): string {
      const parts = forgedParts();
      const theCore = core ?? parts.core;
      const seal = {
        core: theCore,
        chain,
        sealedKek: { recipient: theCore.seal.recipient, age: parts.sealedAge },
      };
      const authenticated = build.domainBundleAuthenticatedBytes(parts.contents, seal);
      const mac = build.hmacWithKek(forgerKek, build.BUNDLE_MAC_PURPOSE, authenticated);
      expect(mac.toString('base64')).toBe(docMac(forgerKek, authenticated));
      const file = join(ws.dir, name);
      writeFileSync(file, build.serialiseBundle(authenticated, mac, sign?.(authenticated)));
      // the forgery is genuinely sealed to the domain: the domain identity (rebuilt outside custos)
      // opens the forger's KEK
      expect(
        openSealedKek(readEnvelope(file).body, join(idDir, 'domain-gen1.key'))?.equals(forgerKek),
      ).toBe(true);
      return name;
    }

    const forgerSigns = (authenticated: Buffer) => ({
      by: 'source' as const,
      value: cryptoSign('sha256', authenticated, {
        key: forgerKey.privateKey,
        dsaEncoding: 'ieee-p1363',
      }),
    });

    function madeUpEnrolment(endorser: string): any {
      const enrolled = JSON.parse(domain.trailers[1]?.value as string);
      return {
        domain: sha256(domain.authenticated),
        source: { ...enrolled.source, label: 'forger-hsm' },
        keyId: 'f0f0f0f0',
        publicKey: forgerSpki,
        enrolled: new Date().toISOString(),
        endorser,
        signature: randomBytes(64).toString('base64'),
      };
    }

    /** A restore of `file` into the empty token by a good quorum, which must write nothing. */
    function restoreWritesNothing(file: string, extra: string[] = []): Run {
      const before = snapshot(ws.dir);
      const r = custos(ws, [
        'restore',
        '--bundle',
        file,
        '--hsm',
        'empty',
        ...extra,
        ...quorumArgs('vault.domain', GOOD),
      ]);
      expect(snapshot(ws.dir)).toEqual(before);
      expect(objectsOn(tok('empty'))).toEqual([]);
      return r;
    }

    function expectRefused(file: string, ...patterns: RegExp[]): string {
      expect(objectsOn(tok('empty'))).toEqual([]);
      const r = restoreWritesNothing(file, ['--json']);
      const line = expectUserError(r, 4, /\[E_BUNDLE_SIGNER\]/, ...patterns);
      expect(r.stderr).toMatch(/nothing was written/);
      return line;
    }

    it("control: the same builder, given a real bundle's parts, its KEK and its signature, rebuilds that bundle byte for byte", () => {
      const real = readEnvelope(join(ws.dir, 'b1.bundle'));
      const {
        domain: d,
        sealedKek,
        keys,
        skipped,
        policy,
        bundleId,
        created,
        tool,
        source,
        kek,
        wrap,
      } = real.body;
      const authenticated = build.domainBundleAuthenticatedBytes(
        { bundleId, created, tool, source, kek, wrap, keys, skipped, policy },
        { core: d.core, chain: d.chain, sealedKek },
      );
      expect(authenticated.equals(real.authenticated)).toBe(true);
      const mac = build.hmacWithKek(
        kekOf.get('b1.bundle') as Buffer,
        build.BUNDLE_MAC_PURPOSE,
        authenticated,
      );
      const rebuilt = build.serialiseBundle(authenticated, mac, {
        by: 'source',
        value: Buffer.from(real.trailers[0]?.value as string, 'base64'),
      });
      expect(rebuilt.equals(readFileSync(join(ws.dir, 'b1.bundle')))).toBe(true);
    });

    it('(a) no signature line at all', () => {
      expectRefused(forge('forged-unsigned.bundle', []), /without a valid signature/);
    });

    it('(a) a signature line that is not a signature, and a "re-sealed by the authority" line signed by the forger\'s own Ed25519 key', () => {
      expectRefused(
        forge('forged-junk-signature.bundle', [], () => ({ by: 'source', value: randomBytes(64) })),
      );
      const ed = generateKeyPairSync('ed25519');
      expectRefused(
        forge('forged-authority.bundle', [], (a) => ({
          by: 'authority',
          value: cryptoSign(null, a, ed.privateKey),
        })),
        /authority/,
      );
    });

    it("(b) signed with the forger's own P-256 key, with a made-up enrolment in the chain", () => {
      // "vouched for by the authority", with a signature the forger cannot make
      expectRefused(forge('forged-own-key.bundle', [madeUpEnrolment('authority')], forgerSigns));
      // "vouched for by the real enrolled HSM", with that HSM's real enrolment above it
      const real = JSON.parse(domain.trailers[1]?.value as string);
      const endorsed = madeUpEnrolment(
        createHash('sha256').update(Buffer.from(real.publicKey, 'base64')).digest('hex'),
      );
      expectRefused(forge('forged-endorsed.bundle', [endorsed, real], forgerSigns));
    });

    it("(c) the real chain copied from a real bundle, signed by the forger's key", () => {
      const realChain = readEnvelope(join(ws.dir, 'b1.bundle')).body.domain.chain;
      expect(realChain).toHaveLength(1);
      expectRefused(
        forge('forged-real-chain.bundle', realChain, forgerSigns),
        /signature does not verify/,
      );
    });

    it("a copy of the core with the forger's own authority key is refused too (its shares bind the real core), and nothing is written", () => {
      const ed = generateKeyPairSync('ed25519');
      const raw = ed.publicKey
        .export({ format: 'der', type: 'spki' })
        .subarray(12)
        .toString('base64');
      const core = { ...domain.body, authority: { algorithm: 'Ed25519', publicKey: raw } };
      const file = forge(
        'forged-core.bundle',
        [],
        (a) => ({ by: 'authority', value: cryptoSign(null, a, ed.privateKey) }),
        core,
      );
      const r = restoreWritesNothing(file);
      expect(r.status, describeRun(r)).not.toBe(0);
      expect(r.stderr).toMatch(/\[E_(QUORUM|BUNDLE_TAMPERED|BUNDLE_SIGNER|KEK_MISMATCH)\]/);
    });
  });

  // ------------------------------------------------------------ case 5

  describe('case 5: shares verify --domain, a tampered domain file, and enrolment by an endorsing HSM', () => {
    it("shares verify --domain accepts each custodian's share with their own identity", () => {
      for (const id of IDS) {
        const r = expectOk(
          custos(ws, [
            'shares',
            'verify',
            '--domain',
            'vault.domain',
            '--share',
            shareOf('vault.domain', id),
            '--identity',
            (custodians.get(id) as Custodian).identity,
          ]),
        );
        expect(r.stdout, id).toContain(`custodian   ${id}`);
        expect(r.stdout, id).toContain(domainId);
      }
    });

    it("shares verify --domain rejects a share opened with the wrong custodian's identity", () => {
      const okafor = custodians.get('okafor-law') as Custodian;
      const r = custos(ws, [
        'shares',
        'verify',
        '--domain',
        'vault.domain',
        '--share',
        shareOf('vault.domain', 'hale-llp'),
        '--identity',
        okafor.identity,
      ]);
      expectUserError(r, 4, /\[E_SHARE_REJECTED\]/);
      // hale-llp's share re-encrypted (age CLI) to okafor-law: it opens, but it is not okafor-law's
      // share
      const plaintext = openShare(
        ws,
        join(ws.dir, shareOf('vault.domain', 'hale-llp')),
        (custodians.get('hale-llp') as Custodian).identity,
      );
      const moved = join(ws.dir, 'hale-as-okafor.share');
      mustRun('age', ['-a', '-r', okafor.recipient, '-o', moved], {
        env: PATH_ONLY,
        cwd: ws.dir,
        input: plaintext,
      });
      const r2 = custos(ws, [
        'shares',
        'verify',
        '--domain',
        'vault.domain',
        '--share',
        moved,
        '--identity',
        okafor.identity,
      ]);
      expectUserError(r2, 4, /\[E_SHARE_REJECTED\]/, /hale-llp/);
      rmSync(moved);
    });

    it('a domain file with one changed byte in its core (or its enrolment line) is refused by show, backup and shares verify', () => {
      const original = readFileSync(join(ws.dir, 'vault.domain'));
      const text = original.toString('utf8');
      const coreEnd = text.indexOf('\n--- ');
      const edits: [string, number][] = [
        ['policy digest', text.indexOf('"sha256": "') + 12],
        ['recipient', text.indexOf(recipient) + 10],
        ['threshold', text.indexOf('"threshold": 3') + 13],
        ["a custodian's name", text.indexOf('Custodian okafor-law') + 2],
        ['the format line', 14],
        ['the enrolment line', text.indexOf('"enrolled":"') + 15],
      ];
      for (const [what, at] of edits) {
        expect(at, what).toBeGreaterThan(0);
        if (what !== 'the enrolment line') expect(at, what).toBeLessThan(coreEnd);
        const bytes = Buffer.from(original);
        // one byte, to another character of the same kind, so the file still parses where it can
        bytes[at] = bump(bytes[at] as number);
        expect(bytes.equals(original), what).toBe(false);
        writeFileSync(join(ws.dir, 'tampered.domain'), bytes);
        const r = custos(ws, ['domain', 'show', 'tampered.domain']);
        const status = r.status;
        expect([3, 4], `${what}\n${describeRun(r)}`).toContain(status);
        expectUserError(r, status as number, /\[E_DOMAIN(_TAMPERED)?\]/);
      }
      // backup and shares verify refuse the last one (core edit) too, writing nothing
      const coreEdit = Buffer.from(original);
      coreEdit[edits[0]?.[1] as number] = bump(coreEdit[edits[0]?.[1] as number] as number);
      writeFileSync(join(ws.dir, 'tampered.domain'), coreEdit);
      const before = snapshot(ws.dir);
      expectUserError(
        custos(ws, domainBackupArgs('primary', 'tampered.domain', 'never.bundle')),
        4,
        /\[E_DOMAIN_TAMPERED\]/,
      );
      expectUserError(
        custos(ws, [
          'shares',
          'verify',
          '--domain',
          'tampered.domain',
          '--share',
          shareOf('vault.domain', 'ciso'),
          '--identity',
          (custodians.get('ciso') as Custodian).identity,
        ]),
        4,
        /\[E_DOMAIN_TAMPERED\]/,
      );
      expect(snapshot(ws.dir)).toEqual(before);
      expect(existsSync(join(ws.dir, 'never.bundle'))).toBe(false);
      rmSync(join(ws.dir, 'tampered.domain'));
      // a domain with no enrolment line: only the authority's signature over the core can catch the
      // edit
      expectOk(custos(ws, ['domain', 'init', '--policy', 'policy.yaml', '--out', 'bare.domain']));
      const bare = readFileSync(join(ws.dir, 'bare.domain'));
      expect(readEnvelope(join(ws.dir, 'bare.domain')).trailers.map((t) => t.tag)).toEqual([
        'ed25519',
      ]);
      const bareEdit = Buffer.from(bare);
      const at = bare.indexOf('"sha256": "') + 12;
      bareEdit[at] = bump(bareEdit[at] as number);
      writeFileSync(join(ws.dir, 'bare-tampered.domain'), bareEdit);
      expectUserError(
        custos(ws, ['domain', 'show', 'bare-tampered.domain']),
        4,
        /\[E_DOMAIN_TAMPERED\]/,
      );
      expectOk(custos(ws, ['domain', 'show', 'bare.domain']));
      // the genuine file is unchanged and still good
      expect(readFileSync(join(ws.dir, 'vault.domain')).equals(original)).toBe(true);
      expectOk(custos(ws, ['domain', 'show', 'vault.domain']));
    });

    it('a token not enrolled cannot back up to the domain, and writes nothing', () => {
      const before = snapshot(ws.dir);
      const r = custos(ws, domainBackupArgs('second', 'vault.domain', 'second-early.bundle'));
      expectUserError(r, 3, /\[E_DOMAIN\]/, /not enrolled/);
      expect(snapshot(ws.dir)).toEqual(before);
    });

    it('domain enroll --endorser: a second token, vouched for by the primary, makes bundles that restore with a quorum', () => {
      const second = tok('second');
      const r = expectOk(
        custos(ws, [
          'domain',
          'enroll',
          '--domain',
          'vault.domain',
          '--hsm',
          'second',
          '--endorser',
          'primary',
          '--json',
        ]),
      );
      expect(JSON.parse(r.stdout).domainId).toBe(domainId);
      domain = readEnvelope(join(ws.dir, 'vault.domain'));
      expect(domain.trailers.map((t) => t.tag)).toEqual(['ed25519', 'enrolment', 'enrolment']);
      const own = listObjects(ws, second).find(
        (o) => o.kind === 'Private Key' && o.label === `custos-domain-${domainId}`,
      );
      expect(own?.access.split(', ')).toContain('never extractable');
      const enrolment = JSON.parse(domain.trailers[2]?.value as string);
      const primaryEnrolment = JSON.parse(domain.trailers[1]?.value as string);
      expect(enrolment.source.label).toBe('second');
      expect(Buffer.from(enrolment.publicKey, 'base64')).toEqual(
        publicKeyDer(ws, second, own?.id as string),
      );
      expect(enrolment.endorser).toBe(
        createHash('sha256')
          .update(Buffer.from(primaryEnrolment.publicKey, 'base64'))
          .digest('hex'),
      );
      // the endorsement is the primary token's signature over the enrolment (checked with the key
      // pkcs11-tool reads)
      const { signature, ...unsigned } = enrolment;
      const signed = Buffer.from(
        `custos-domain-enrolment/1\n${JSON.stringify(unsigned, null, 1)}\n`,
      );
      expect(checkP1363(primaryDomainPem, signed, signature)).toBe(true);

      const keys: KeySpec[] = [
        { kind: 'aes', label: 'second-aes', id: '21' },
        { kind: 'ec', label: 'second-ec', id: '22' },
      ];
      for (const k of keys) makeKey(ws, second, k);
      const made = keys.map((k) => oracleOf(second, k));
      const out = json(
        custos(ws, domainBackupArgs('second', 'vault.domain', 'second.bundle', ['--json']), {
          input: '',
        }),
      );
      expect(out.keys.map((k: { id: string }) => k.id).sort()).toEqual(['21', '22']);
      const env = readEnvelope(join(ws.dir, 'second.bundle'));
      const secondPem = publicKeyPem(
        ws,
        second,
        own?.id as string,
        join(ws.dir, 'second-domain-key.pem'),
      );
      expect(env.trailers[0]?.tag).toBe('source-ecdsa-p256');
      expect(checkP1363(secondPem, env.authenticated, env.trailers[0]?.value as string)).toBe(true);
      expect(
        env.body.domain.chain.map((e: { source: { label: string } }) => e.source.label),
      ).toEqual(['second', 'primary']);

      const target = tok('r-second');
      const restored = json(
        custos(ws, [
          'restore',
          '--bundle',
          'second.bundle',
          '--hsm',
          'r-second',
          '--json',
          ...quorumArgs('vault.domain', ['okafor-law', 'lindqvist', 'dr-lead']),
        ]),
      );
      expect(restored.keys.map((k: { status: string }) => k.status)).toEqual([
        'restored',
        'restored',
      ]);
      expect(objectsOn(target)).toEqual(expectedObjects(made));
      for (const k of made) proveKey(target, k);
    });
  });

  // ------------------------------------------------------------ case 3: rotation drops ciso

  describe('case 3: rotation that drops custodian ciso', () => {
    let newDomain: Envelope;
    const NEW3: Id[] = ['hale-llp', 'lindqvist', 'dr-lead'];
    const originals = new Map<string, string>();

    it('rotates with a quorum of the old custodians; re-sealed bundles keep their wrapped keys byte for byte; the old file is marked replaced', () => {
      for (const f of ['b1.bundle', 'b2.bundle'])
        originals.set(f, sha256(readFileSync(join(ws.dir, f))));
      const out = json(
        custos(ws, [
          'domain',
          'rotate',
          '--domain',
          'vault.domain',
          '--policy',
          'policy-2.yaml',
          '--out',
          'vault-2.domain',
          '--rebundle',
          'b1.bundle',
          '--rebundle',
          'b2.bundle',
          '--rebundle-dir',
          'resealed',
          '--json',
          ...quorumArgs('vault.domain', ['okafor-law', 'lindqvist', 'dr-lead']),
        ]),
      );
      expect(out.generation).toBe(2);
      newDomain = readEnvelope(join(ws.dir, 'vault-2.domain'));
      expect(newDomain.body).toMatchObject({
        domainId,
        generation: 2,
        supersedes: { generation: 1, digest: sha256(domain.authenticated) },
      });
      expect(newDomain.body.escrow.custodians.map((c: { id: string }) => c.id)).toEqual([
        'hale-llp',
        'okafor-law',
        'lindqvist',
        'dr-lead',
      ]);
      expect(newDomain.body.seal.recipient).not.toBe(recipient);
      expect(readdirSync(join(ws.dir, 'vault-2.domain.shares')).sort()).toEqual([
        'dr-lead.share',
        'hale-llp.share',
        'lindqvist.share',
        'okafor-law.share',
      ]);
      for (const f of readdirSync(join(ws.dir, 'vault-2.domain.shares')))
        expect(modeOf(join(ws.dir, 'vault-2.domain.shares', f)), f).toBe(0o600);
      for (const f of ['b1.bundle', 'b2.bundle'])
        expect(modeOf(join(ws.dir, 'resealed', f)), f).toBe(0o600);
      // the enrolled tokens carry over
      expect(
        newDomain.trailers
          .filter((t) => t.tag === 'enrolment')
          .map((t) => JSON.parse(t.value).source.label),
      ).toEqual(['primary', 'second']);

      // the originals are untouched; the copies keep the wrapped keys byte for byte
      for (const f of ['b1.bundle', 'b2.bundle']) {
        expect(sha256(readFileSync(join(ws.dir, f))), f).toBe(originals.get(f));
        const before = readEnvelope(join(ws.dir, f));
        const after = readEnvelope(join(ws.dir, 'resealed', f));
        expect(after.format).toBe('custos-bundle/2');
        expect(
          after.body.keys.map((k: { wrapped: string }) => k.wrapped),
          f,
        ).toEqual(before.body.keys.map((k: { wrapped: string }) => k.wrapped));
        expect(JSON.stringify(after.body.keys), f).toBe(JSON.stringify(before.body.keys));
        expect(after.body.bundleId).toBe(before.body.bundleId);
        expect(after.body.kek.kcv).toBe(before.body.kek.kcv);
        expect(after.body.domain.core).toEqual(newDomain.body);
        expect(after.body.sealedKek.recipient).toBe(newDomain.body.seal.recipient);
        // signed by the new generation's authority (Ed25519, key from the new domain file)
        expect(after.trailers.map((t) => t.tag)).toEqual(['authority-ed25519', 'hmac-sha256']);
        const authority = createPublicKey({
          key: Buffer.concat([
            Buffer.from('302a300506032b6570032100', 'hex'),
            Buffer.from(newDomain.body.authority.publicKey, 'base64'),
          ]),
          format: 'der',
          type: 'spki',
        });
        expect(
          cryptoVerify(
            null,
            after.authenticated,
            authority,
            Buffer.from(after.trailers[0]?.value as string, 'base64'),
          ),
          f,
        ).toBe(true);
        // the MAC still holds under the same KEK (docs/bundle-format.md)
        expect(after.trailers[1]?.value).toBe(docMac(kekOf.get(f) as Buffer, after.authenticated));
      }

      // the old domain file now ends with a superseded line naming the new file
      const old = readEnvelope(join(ws.dir, 'vault.domain'));
      const last = old.trailers.at(-1);
      expect(last?.tag).toBe('superseded');
      expect(JSON.parse(last?.value as string).by).toMatchObject({
        generation: 2,
        file: 'vault-2.domain',
        digest: sha256(newDomain.authenticated),
      });
      expect(old.authenticated.equals(domain.authenticated)).toBe(true);
    });

    it('backup --domain OLD is refused with E_DOMAIN_SUPERSEDED naming the new file, and writes nothing', () => {
      const before = snapshot(ws.dir);
      const r = custos(ws, domainBackupArgs('primary', 'vault.domain', 'stale.bundle'));
      expectUserError(r, 3, /\[E_DOMAIN_SUPERSEDED\]/, /vault-2\.domain/);
      expect(snapshot(ws.dir)).toEqual(before);
      expect(existsSync(join(ws.dir, 'stale.bundle'))).toBe(false);
    });

    it('run from another directory (cron), the refusal names the new domain file by a path that works from there', () => {
      mkdirSync(join(ws.dir, 'cron'), { recursive: true });
      const cwd = join(ws.dir, 'cron');
      const r = custos(
        ws,
        ['backup', '--hsm', 'primary', '--domain', '../vault.domain', '--out', 'stale.bundle'],
        { cwd },
      );
      expectUserError(r, 3, /\[E_DOMAIN_SUPERSEDED\]/);
      const named = /--domain (\S+?);/.exec(r.stderr)?.[1];
      expect(named, describeRun(r)).toBeDefined();
      // the hint is a command to run again, from this directory: its path must lead to the new
      // domain file
      expect(resolve(cwd, named as string), describeRun(r)).toBe(join(ws.dir, 'vault-2.domain'));
    });

    it('a new backup under the new domain is generation 2 and signed by the enrolled token', () => {
      const out = json(
        custos(ws, domainBackupArgs('primary', 'vault-2.domain', 'b4.bundle', ['--json']), {
          input: '',
        }),
      );
      expect(out.generation).toBe(2);
      const env = readEnvelope(join(ws.dir, 'b4.bundle'));
      expect(env.body.domain.core).toEqual(newDomain.body);
      expect(
        checkP1363(primaryDomainPem, env.authenticated, env.trailers[0]?.value as string),
      ).toBe(true);
      expect(env.body.keys.map((k: { id: string }) => k.id).sort()).toEqual(
        [...live.keys()].sort(),
      );
    });

    it("outside custos: ciso's old share with two others rebuilds only the OLD identity, which opens neither the re-sealed nor the new bundle", () => {
      const old = reassembleOutside(
        'vault.domain',
        ['ciso', 'hale-llp', 'okafor-law'],
        'old-with-ciso.key',
      );
      expect(
        mustRun('age-keygen', ['-y', old.identityFile], { env: PATH_ONLY, cwd: idDir })
          .toString()
          .trim(),
      ).toBe(recipient);
      for (const f of ['resealed/b1.bundle', 'resealed/b2.bundle', 'b4.bundle']) {
        expect(openSealedKek(readEnvelope(join(ws.dir, f)).body, old.identityFile), f).toBeNull();
      }
      // while the new identity (new shares, combined outside) opens them, with the same KEK for the
      // re-sealed ones
      const fresh = reassembleOutside('vault-2.domain', NEW3, 'domain-gen2.key');
      expect(
        mustRun('age-keygen', ['-y', fresh.identityFile], { env: PATH_ONLY, cwd: idDir })
          .toString()
          .trim(),
      ).toBe(newDomain.body.seal.recipient);
      for (const f of ['b1.bundle', 'b2.bundle']) {
        expect(
          openSealedKek(readEnvelope(join(ws.dir, 'resealed', f)).body, fresh.identityFile)?.equals(
            kekOf.get(f) as Buffer,
          ),
          f,
        ).toBe(true);
      }
    });

    it("custos refuses ciso's old share with two others (old or new shares) for the re-sealed and the new bundle: E_QUORUM, target token empty", () => {
      const empty = tok('empty');
      const ciso = custodians.get('ciso') as Custodian;
      const sets: [string, string[]][] = [
        ['ciso + two old shares', quorumArgs('vault.domain', ['ciso', 'hale-llp', 'okafor-law'])],
        [
          'ciso + two new shares',
          [
            '--share',
            shareOf('vault.domain', 'ciso'),
            '--share',
            shareOf('vault-2.domain', 'hale-llp'),
            '--share',
            shareOf('vault-2.domain', 'okafor-law'),
            '--identity',
            ciso.identity,
            '--identity',
            (custodians.get('hale-llp') as Custodian).identity,
            '--identity',
            (custodians.get('okafor-law') as Custodian).identity,
          ],
        ],
      ];
      for (const bundle of ['resealed/b1.bundle', 'b4.bundle']) {
        for (const [what, args] of sets) {
          const before = snapshot(ws.dir);
          const r = custos(ws, ['restore', '--bundle', bundle, '--hsm', 'empty', ...args]);
          expectUserError(r, 5, /\[E_QUORUM\]/, /ciso\.share/);
          expect(r.stderr, `${bundle}: ${what}`).toMatch(
            what.includes('new') ? /2 of 3 shares accepted/ : /0 of 3 shares accepted/,
          );
          expect(snapshot(ws.dir), `${bundle}: ${what}`).toEqual(before);
          expect(objectsOn(empty), `${bundle}: ${what}`).toEqual([]);
        }
      }
    });

    it('the new shares restore the re-sealed bundle and the new one, every key proved', () => {
      const b1 = backups[0] as (typeof backups)[number];
      const cases: [string, string, SourceKey[]][] = [
        ['resealed/b1.bundle', 'r-resealed', b1.keys],
        ['b4.bundle', 'r-new', [...live.values()]],
      ];
      for (const [bundle, label, keys] of cases) {
        const target = tok(label);
        expect(objectsOn(target)).toEqual([]);
        const out = json(
          custos(ws, [
            'restore',
            '--bundle',
            bundle,
            '--hsm',
            label,
            '--json',
            ...quorumArgs('vault-2.domain', NEW3),
          ]),
        );
        expect(out.custodians.sort()).toEqual([...NEW3].sort());
        expect(objectsOn(target), bundle).toEqual(expectedObjects(keys));
        for (const k of keys) proveKey(target, k);
      }
    });

    it('a rotation with --retire-hsm leaves that token out: its later bundles are refused, the other token backs up as before', () => {
      const r = custos(ws, [
        'domain',
        'rotate',
        '--domain',
        'vault-2.domain',
        '--policy',
        'policy-2.yaml',
        '--out',
        'vault-3.domain',
        '--retire-hsm',
        'second',
        '--json',
        ...quorumArgs('vault-2.domain', NEW3),
      ]);
      expect(json(r).generation).toBe(3);
      const third = readEnvelope(join(ws.dir, 'vault-3.domain'));
      expect(
        third.trailers
          .filter((t) => t.tag === 'enrolment')
          .map((t) => JSON.parse(t.value).source.label),
      ).toEqual(['primary']);
      const refused = custos(
        ws,
        ['backup', '--hsm', 'second', '--domain', 'vault-3.domain', '--out', 'retired.bundle'],
        { input: '' },
      );
      expectUserError(refused, 3, /\[E_DOMAIN\]/, /not enrolled/);
      expect(existsSync(join(ws.dir, 'retired.bundle'))).toBe(false);
      expectOk(
        custos(
          ws,
          ['backup', '--hsm', 'primary', '--domain', 'vault-3.domain', '--out', 'b5.bundle'],
          { input: '' },
        ),
      );
      // a name that is not enrolled is refused before anything is written
      const before = snapshot(ws.dir);
      expectUserError(
        custos(ws, [
          'domain',
          'rotate',
          '--domain',
          'vault-3.domain',
          '--policy',
          'policy-2.yaml',
          '--out',
          'vault-4.domain',
          '--retire-hsm',
          'no-such-token',
          ...quorumArgs('vault-3.domain', NEW3),
        ]),
        2,
        /\[E_USAGE\]/,
        /no-such-token/,
      );
      expect(snapshot(ws.dir)).toEqual(before);
    });
  });

  // ------------------------------------------------------------ case 6

  it('case 6: the audit log records domain-init, each domain backup (domain id, generation, bundle digest), the rotation; audit verify passes and can fail', () => {
    const entries = readFileSync(join(ws.dir, AUDIT_LOG), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));
    // (the other domain-init is bare.domain's, made in case 5)
    const init = entries.filter(
      (e) =>
        e.op === 'domain-init' &&
        e.outcome === 'ok' &&
        e.artifacts[`share:ciso`] ===
          sha256(readFileSync(join(ws.dir, shareOf('vault.domain', 'ciso')))),
    );
    expect(init).toHaveLength(1);
    expect(Object.values(init[0].detail)).toContain(domainId);
    expect(init[0].detail).toMatchObject({ generation: 1, threshold: 3, total: 5 });
    expect(init[0].artifacts[`share:ciso`]).toMatch(/^[0-9a-f]{64}$/);

    const okBackups = entries.filter((e) => e.op === 'backup' && e.outcome === 'ok');
    const expectBackup = (file: string, generation: number) => {
      const body = readEnvelope(join(ws.dir, file)).body;
      const e = okBackups.find((x) => x.bundle === body.bundleId);
      expect(e, file).toBeDefined();
      expect(e.detail, file).toMatchObject({ domainId, generation });
      expect(e.artifacts.bundle, file).toBe(sha256(readFileSync(join(ws.dir, file))));
    };
    for (const f of ['b1.bundle', 'b2.bundle', 'b3.bundle', 'second.bundle']) expectBackup(f, 1);
    expectBackup('b4.bundle', 2);

    expectBackup('b5.bundle', 3);

    const rotate = entries.filter((e) => e.op === 'domain-rotate' && e.outcome === 'ok');
    expect(rotate).toHaveLength(2);
    expect(rotate[0].detail).toMatchObject({ domainId, generation: 2, from: 1 });
    expect(rotate[1].detail).toMatchObject({ domainId, generation: 3, from: 2 });
    // each rotation records the new file as written and the old one as it left it (marked replaced)
    expect(rotate[1].artifacts.domain).toBe(sha256(readFileSync(join(ws.dir, 'vault-3.domain'))));
    expect(rotate[1].artifacts['replaced-domain']).toBe(
      sha256(readFileSync(join(ws.dir, 'vault-2.domain'))),
    );
    expect(rotate[0].artifacts['replaced-domain']).toBe(
      sha256(readFileSync(join(ws.dir, 'vault.domain'))),
    );
    // the refusals were recorded as such
    expect(entries.some((e) => e.op === 'backup' && e.code === 'E_DOMAIN_SUPERSEDED')).toBe(true);
    expect(entries.some((e) => e.op === 'restore' && e.code === 'E_BUNDLE_SIGNER')).toBe(true);

    expectOk(custos(ws, ['audit', 'verify', AUDIT_LOG]));
    // and the verifier can fail: the same log with one backup entry's generation changed
    const lines = readFileSync(join(ws.dir, AUDIT_LOG), 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('"op":"backup"') && l.includes('"generation":2'));
    expect(at).toBeGreaterThanOrEqual(0);
    lines[at] = (lines[at] as string).replace('"generation":2', '"generation":1');
    mkdirSync(join(ws.dir, 'edited'), { recursive: true });
    writeFileSync(join(ws.dir, 'edited', 'audit.jsonl'), lines.join('\n'));
    const r = custos(ws, ['audit', 'verify', 'edited/audit.jsonl']);
    expect(r.status, describeRun(r)).toBe(4);
    expect(r.stderr).toMatch(/\[E_AUDIT_TAMPERED\]/);
  });

  it('no PIN, identity, share value, domain secret or bundle key appears in any output', () => {
    expectNoSecrets(ws, extraSecrets);
  });
});
