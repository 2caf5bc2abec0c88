/**
 * Helpers for the end-to-end tests: each test file gets its own temp directory, SoftHSM2 store and
 * SOFTHSM2_CONF, builds its tokens and keys with the real `softhsm2-util` and `pkcs11-tool`, its
 * custodians with the real `age-keygen`, and runs the real `bin/custos` as a child process with an
 * explicit environment and working directory. Every custos run is recorded so a file can finally
 * check that no secret reached any output.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import secrets from 'secrets.js-grempe';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'custos');
export const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const TIMEOUT = 120_000;

export interface Run {
  args: string[];
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface Workspace {
  dir: string;
  /** The SoftHSM2 configuration this file's tokens live under. */
  conf: string;
  /** Every custos run in this workspace, for the final secret scan. */
  runs: Run[];
  /** Strings that must never appear in any output: PINs, identities, share values, KEK. */
  secrets: Set<string>;
  /** Environment given to every custos run (PIN variables and the like). */
  env: Record<string, string>;
}

export function workspace(name: string): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `custos-e2e-${name}-`));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  return { dir, conf, runs: [], secrets: new Set(), env: {} };
}

export function cleanup(ws: Workspace): void {
  if (!process.env.CUSTOS_E2E_KEEP) rmSync(ws.dir, { recursive: true, force: true });
}

/** A SoftHSM2 store whose tokens share one user PIN, for tests that run custos and tools bare. */
export interface SharedPinStore {
  dir: string;
  /** The environment of every run: the store's SoftHSM2 configuration, and the PIN in TOKEN_PIN. */
  env: NodeJS.ProcessEnv;
  /** bin/custos in the store's directory. */
  custos(args: string[]): SpawnSyncReturns<string>;
  /** pkcs11-tool logged in to the token with this label; its output is discarded. */
  p11(label: string, args: string[]): void;
  /** What `pkcs11-tool --list-objects` prints for the token with this label. */
  objects(label: string): string;
  /** `kind:label` of each key object in that listing (kind: secret, private or public). */
  keyLabels(label: string): string[];
}

/**
 * A temp directory with its own SoftHSM2 store (and `confLines` in its configuration), a token for
 * each label with the same user PIN, and custos.yaml with a profile per token named by its label.
 */
export function sharedPinStore(
  prefix: string,
  labels: string[],
  pins: { pin: string; soPin: string },
  confLines: string[] = [],
): SharedPinStore {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(
    join(dir, 'softhsm2.conf'),
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n${confLines.map((l) => `${l}\n`).join('')}`,
  );
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
    TOKEN_PIN: pins.pin,
  };
  for (const label of labels) {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', pins.soPin, '--pin', pins.pin],
      { env, stdio: 'ignore' },
    );
  }
  writeConfig(
    { dir },
    labels.map((l) => ({ name: l, token: l, pinVar: 'TOKEN_PIN' })),
  );
  const login = (label: string) => ['--module', MODULE, '--token-label', label, '--login', '--pin'];
  const objects = (label: string) =>
    execFileSync('pkcs11-tool', [...login(label), pins.pin, '--list-objects'], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  return {
    dir,
    env,
    custos: (args) => spawnSync(BIN, args, { cwd: dir, env, encoding: 'utf8' }),
    p11: (label, args) =>
      void execFileSync('pkcs11-tool', [...login(label), pins.pin, ...args], {
        env,
        stdio: 'ignore',
      }),
    objects,
    keyLabels: (label) => {
      const found: string[] = [];
      let kind = '';
      for (const line of objects(label).split('\n')) {
        const k = /^(\w+) Key Object/.exec(line);
        if (k) kind = (k[1] ?? '').toLowerCase();
        const l = /^\s+label:\s*(.*)$/.exec(line);
        if (l) found.push(`${kind}:${l[1]}`);
      }
      return found;
    },
  };
}

/**
 * Object files in a SoftHSM2 file-store token under `<dir>/tokens`, counted in its directory:
 * cheap enough to poll while a run writes (pkcs11-tool would log in each time).
 */
const tokenDirs = new Map<string, string>();

export function tokenObjectFiles(store: { dir: string }, label: string): number {
  const known = tokenDirs.get(`${store.dir}\u0000${label}`);
  if (known)
    return readdirSync(known).filter((f) => f.endsWith('.object') && f !== 'token.object').length;
  const tokens = join(store.dir, 'tokens');
  const padded = Buffer.from(label.padEnd(32, ' '));
  // SoftHSM rewrites token.object now and then: look for the directory once, while it is quiet.
  for (const t of readdirSync(tokens)) {
    let head: Buffer;
    try {
      head = readFileSync(join(tokens, t, 'token.object'));
    } catch {
      continue;
    }
    if (!head.includes(padded)) continue;
    tokenDirs.set(`${store.dir}\u0000${label}`, join(tokens, t));
    return readdirSync(join(tokens, t)).filter((f) => f.endsWith('.object') && f !== 'token.object')
      .length;
  }
  throw new Error(`no token directory for ${label}`);
}

/** A fresh, distinctive PIN (registered as a secret). */
export function newPin(ws: Workspace): string {
  const pin = `pin-${randomBytes(8).toString('hex')}`;
  ws.secrets.add(pin);
  return pin;
}

/** The environment of an outside tool (openssl, age, pkcs11-tool, pkcs11js) in the workspace. */
export function toolEnv(ws: Workspace, conf = ws.conf): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: ws.dir,
    LANG: 'C.UTF-8',
    SOFTHSM2_CONF: conf,
  };
}

/** The whole environment (env -i) of custos started in a terminal (tmux) in the workspace. */
export function terminalEnv(ws: Workspace): Record<string, string> {
  return { ...toolEnv(ws), NO_COLOR: '1', TERM: 'xterm-256color', ...ws.env };
}

/**
 * Output is laid out for 80 columns when it is not a terminal; the tests read it as one line per
 * fact, so they run wide (COLUMNS) unless a test asks for 80 itself (screens.test.ts,
 * ceremony-tty).
 */
function baseEnv(ws: Workspace, conf = ws.conf): Record<string, string> {
  return { ...toolEnv(ws, conf), NO_COLOR: '1', COLUMNS: '250' };
}

function tool(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  input?: string | Buffer,
): SpawnSyncReturns<Buffer> {
  const r = spawnSync(cmd, args, { env, cwd, input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

/** Runs an outside tool and fails the test with its stderr if it does not exit 0. */
export function mustRun(
  cmd: string,
  args: string[],
  opts: { env: Record<string, string>; cwd: string; input?: string | Buffer },
): Buffer {
  const r = tool(cmd, args, opts.env, opts.cwd, opts.input);
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

// ---------------------------------------------------------------- custos

export interface CustosOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Replace the base environment's SOFTHSM2_CONF (undefined removes it). */
  conf?: string | null;
  input?: string;
}

/** Runs bin/custos as a child process with an explicit environment and cwd, and records the run. */
export function custos(ws: Workspace, args: string[], opts: CustosOptions = {}): Run {
  const env: Record<string, string> = { ...baseEnv(ws), ...ws.env };
  if (opts.conf === null) delete env.SOFTHSM2_CONF;
  else if (opts.conf !== undefined) env.SOFTHSM2_CONF = opts.conf;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const r = spawnSync(BIN, args, {
    env,
    cwd: opts.cwd ?? ws.dir,
    input: opts.input ?? '',
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.error) throw r.error;
  const run: Run = { args, status: r.status, stdout: r.stdout, stderr: r.stderr };
  ws.runs.push(run);
  return run;
}

export function describeRun(r: Run): string {
  return `custos ${r.args.join(' ')} -> ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export function expectOk(r: Run): Run {
  expect(r.status, describeRun(r)).toBe(0);
  expect(r.stderr, describeRun(r)).not.toMatch(/custos: error:/);
  return r;
}

export function json<T = any>(r: Run): T {
  expectOk(r);
  return JSON.parse(r.stdout) as T;
}

/** `status/proof` of each key in a restore's --json report, by label. */
export function proofsByLabel(out: {
  keys: { label: string; status: string; proof: string }[];
}): Record<string, string> {
  return Object.fromEntries(out.keys.map((k) => [k.label, `${k.status}/${k.proof}`]));
}

/** The `custos: error: …` line of a failed run. */
export function errorLine(r: Run): string {
  const line = r.stderr.split('\n').find((l) => l.startsWith('custos: error: '));
  expect(line, describeRun(r)).toBeDefined();
  return line as string;
}

/**
 * A user error: the exit status, one `custos: error:` line naming the problem, no stack trace or
 * internal error, and no data on stdout.
 */
export function expectUserError(r: Run, status: number, ...patterns: RegExp[]): string {
  const where = describeRun(r);
  expect(r.status, where).toBe(status);
  expect(r.stderr, where).toMatch(/^custos: error: \S/m);
  expect(r.stderr, where).not.toMatch(/^\s+at\s/m);
  expect(r.stderr, where).not.toMatch(/\(file:\/\/|\.js:\d+:\d+|node:internal/);
  expect(r.stderr, where).not.toMatch(/internal error|TypeError|ReferenceError|Uncaught/);
  expect(r.stdout, where).toBe('');
  for (const p of patterns) expect(r.stderr, where).toMatch(p);
  return errorLine(r);
}

// ---------------------------------------------------------------- SoftHSM2 and pkcs11-tool

export interface TokenRef {
  label: string;
  pin: string;
  soPin: string;
  /** SoftHSM2 configuration the token lives under. */
  conf: string;
}

export function initToken(ws: Workspace, label: string, conf = ws.conf): TokenRef {
  const pin = newPin(ws);
  const soPin = newPin(ws);
  mustRun(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin],
    { env: baseEnv(ws, conf), cwd: ws.dir },
  );
  return { label, pin, soPin, conf };
}

/**
 * The slot id of the token with exactly this label (pkcs11-tool's --token-label matches prefixes).
 */
export function slotOf(ws: Workspace, token: { label: string; conf: string }): string {
  const out = mustRun('pkcs11-tool', ['--module', MODULE, '-L'], {
    env: baseEnv(ws, token.conf),
    cwd: ws.dir,
  }).toString();
  let slot: string | undefined;
  for (const line of out.split('\n')) {
    const s = /^Slot \d+ \((0x[0-9a-f]+)\)/.exec(line);
    if (s) slot = s[1];
    const l = /^\s+token label\s+:\s(.*)$/.exec(line);
    if (l && l[1]?.trim() === token.label && slot) return slot;
  }
  throw new Error(`no slot for token ${token.label}:\n${out}`);
}

/** Runs pkcs11-tool logged in to the token; throws on failure. */
export function p11(ws: Workspace, token: TokenRef, args: string[]): string {
  return mustRun(
    'pkcs11-tool',
    ['--module', MODULE, '--slot', slotOf(ws, token), '--login', '--pin', token.pin, ...args],
    { env: baseEnv(ws, token.conf), cwd: ws.dir },
  ).toString();
}

export function p11Raw(ws: Workspace, token: TokenRef, args: string[]): SpawnSyncReturns<Buffer> {
  return tool(
    'pkcs11-tool',
    ['--module', MODULE, '--slot', slotOf(ws, token), '--login', '--pin', token.pin, ...args],
    baseEnv(ws, token.conf),
    ws.dir,
  );
}

/**
 * Runs `code` with pkcs11js logged in to the token as its user, in a child process (native code
 * stays out of the test process, and pkcs11-tool cannot set every attribute). In `code`, `P` is
 * pkcs11js, `lib` the module, `s` the session, `spec` the given value with the token's label
 * added, and `flag` maps usage names (encrypt … derive) to their attribute types. A secret the
 * code needs goes in `secretEnv`, never in argv.
 */
export function withPkcs11js(
  ws: Workspace,
  token: TokenRef,
  what: string,
  spec: object,
  code: string,
  secretEnv: Record<string, string> = {},
): void {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
    const P = require('pkcs11js');
    const spec = JSON.parse(process.env.SPEC);
    const lib = new P.PKCS11();
    lib.load(${JSON.stringify(MODULE)});
    lib.C_Initialize();
    try {
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === spec.token);
      if (!slot) throw new Error('no token ' + spec.token);
      const s = lib.C_OpenSession(slot, P.CKF_RW_SESSION | P.CKF_SERIAL_SESSION);
      lib.C_Login(s, P.CKU_USER, process.env.TOKEN_PIN);
      const flag = { encrypt: P.CKA_ENCRYPT, decrypt: P.CKA_DECRYPT, sign: P.CKA_SIGN, verify: P.CKA_VERIFY, wrap: P.CKA_WRAP, unwrap: P.CKA_UNWRAP, derive: P.CKA_DERIVE };
      ${code}
      lib.C_Logout(s);
      lib.C_CloseSession(s);
    } finally {
      lib.C_Finalize();
    }
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-'], {
    input: script,
    cwd: ws.dir,
    env: {
      ...toolEnv(ws, token.conf),
      SPEC: JSON.stringify({ token: token.label, ...spec }),
      ...secretEnv,
      TOKEN_PIN: token.pin,
    },
  });
  if (r.status !== 0) throw new Error(`pkcs11js ${what} failed: ${r.stderr.toString()}`);
}

export interface ListedObject {
  kind: string;
  label: string;
  id: string;
  access: string;
  usage: string;
}

/** Every object on the token, as `pkcs11-tool -O` lists it (an outside view of the token). */
export function listObjects(ws: Workspace, token: TokenRef): ListedObject[] {
  const out = p11(ws, token, ['-O']);
  const objects: ListedObject[] = [];
  let cur: ListedObject | undefined;
  for (const line of out.split('\n')) {
    const head = /^(Private Key|Public Key|Secret Key|Certificate|Data|Profile) [Oo]bject/.exec(
      line,
    );
    if (head) {
      cur = { kind: `${head[1]}`, label: '', id: '', access: '', usage: '' };
      objects.push(cur);
      continue;
    }
    const field = /^\s+(label|ID|Access|Usage):\s+(.*)$/.exec(line);
    if (cur && field) {
      const key = ({ label: 'label', ID: 'id', Access: 'access', Usage: 'usage' } as const)[
        field[1] as 'label' | 'ID' | 'Access' | 'Usage'
      ];
      cur[key] = (field[2] ?? '').trim();
    }
  }
  return objects;
}

export function objectCount(ws: Workspace, token: TokenRef): number {
  return listObjects(ws, token).length;
}

export interface KeySpec {
  kind: 'aes' | 'generic' | 'rsa' | 'ec';
  label: string;
  id: string;
  extractable?: boolean;
}

export function makeKey(ws: Workspace, token: TokenRef, k: KeySpec): void {
  const common = [
    '--label',
    k.label,
    '--id',
    k.id,
    '--sensitive',
    ...(k.extractable === false ? [] : ['--extractable']),
  ];
  switch (k.kind) {
    case 'aes':
      p11(ws, token, ['--keygen', '--key-type', 'AES:32', ...common]);
      break;
    case 'generic':
      p11(ws, token, ['--keygen', '--key-type', 'GENERIC:32', ...common]);
      break;
    case 'rsa':
      p11(ws, token, ['--keypairgen', '--key-type', 'rsa:2048', '--usage-sign', ...common]);
      break;
    case 'ec':
      p11(ws, token, ['--keypairgen', '--key-type', 'EC:prime256v1', '--usage-sign', ...common]);
      break;
  }
}

/**
 * The standard key set: AES, generic secret, RSA and EC pairs (all extractable) and one
 * non-extractable AES key.
 */
export const STANDARD_KEYS: KeySpec[] = [
  { kind: 'aes', label: 'aes-key', id: '01' },
  { kind: 'generic', label: 'hmac-key', id: '02' },
  { kind: 'rsa', label: 'rsa-key', id: '03' },
  { kind: 'ec', label: 'ec-key', id: '04' },
  { kind: 'aes', label: 'bound-key', id: '05', extractable: false },
];

export function makeStandardKeys(ws: Workspace, token: TokenRef): void {
  for (const k of STANDARD_KEYS) makeKey(ws, token, k);
}

/** The token's public key with this CKA_ID as DER SubjectPublicKeyInfo, re-encoded by OpenSSL. */
export function publicKeyDer(ws: Workspace, token: TokenRef, id: string): Buffer {
  const raw = join(ws.dir, `pub-${randomBytes(4).toString('hex')}.der`);
  p11(ws, token, ['--read-object', '--type', 'pubkey', '--id', id, '-o', raw]);
  const der = mustRun(
    'openssl',
    ['pkey', '-pubin', '-inform', 'DER', '-in', raw, '-outform', 'DER'],
    { env: baseEnv(ws), cwd: ws.dir },
  );
  rmSync(raw);
  return der;
}

/** Same, as a PEM file for `openssl dgst -verify`. */
export function publicKeyPem(ws: Workspace, token: TokenRef, id: string, out: string): string {
  const raw = join(ws.dir, `pub-${randomBytes(4).toString('hex')}.der`);
  p11(ws, token, ['--read-object', '--type', 'pubkey', '--id', id, '-o', raw]);
  mustRun('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', raw, '-out', out], {
    env: baseEnv(ws),
    cwd: ws.dir,
  });
  rmSync(raw);
  return out;
}

/** Runs pkcs11-tool on the token with its output going to `out`, and returns what it wrote. */
export function p11Output(ws: Workspace, token: TokenRef, args: string[], out: string): Buffer {
  p11(ws, token, [...args, '-o', out]);
  return readFileSync(out);
}

/** pkcs11-tool arguments: an operation (--encrypt, --sign) with a mechanism, by this secret key. */
export function secretKeyArgs(operation: string, mechanism: string, id: string): string[] {
  return [operation, '--mechanism', mechanism, '--type', 'secrkey', '--id', id];
}

/** pkcs11-tool arguments: AES-CBC of `input` by the key of this id (a zero IV unless given). */
export function aesCbcArgs(id: string, input: string, iv = '00'.repeat(16)): string[] {
  return ['--encrypt', '-m', 'AES-CBC', '--iv', iv, '--id', id, '-i', input];
}

/** AES(key, 0^128) computed by the token with its key of this id (pkcs11-tool), first 3 bytes. */
export function tokenAesKcv(ws: Workspace, token: TokenRef, id: string): string {
  const zero = join(ws.dir, 'zero.bin');
  writeFileSync(zero, Buffer.alloc(16));
  return p11Output(ws, token, aesCbcArgs(id, zero), join(ws.dir, `zero-${id}.enc`))
    .toString('hex')
    .slice(0, 6);
}

/** Each key an `inventory --json` run lists, as `class/label/id=keyType:method:value`, sorted. */
export function checkValueLines(inventory: Run): string[] {
  const { rows } = json<{
    rows: {
      label: string;
      id: string;
      class: string;
      keyType: string;
      checkValue: { method: string; value: string };
    }[];
  }>(inventory);
  return rows
    .map(
      (r) =>
        `${r.class}/${r.label}/${r.id}=${r.keyType}:${r.checkValue.method}:${r.checkValue.value}`,
    )
    .sort();
}

/**
 * The token signs `data` with its RSA key of this id (SHA256-RSA-PKCS) into `sig`, which
 * opensslVerify checks with the public key.
 */
export function signRsa(
  ws: Workspace,
  token: TokenRef,
  id: string,
  data: string,
  sig: string,
): void {
  p11(ws, token, ['--sign', '-m', 'SHA256-RSA-PKCS', '--id', id, '-i', data, '-o', sig]);
}

/**
 * The token signs `data` with its EC key of this id into `sig`, which opensslVerify checks: SoftHSM
 * has no ECDSA-SHA256, so the SHA-256 of `data` is written to `digest` and signed with raw ECDSA,
 * in openssl's DER form.
 */
export function signEcdsa(
  ws: Workspace,
  token: TokenRef,
  id: string,
  data: string,
  digest: string,
  sig: string,
): void {
  writeFileSync(digest, createHash('sha256').update(readFileSync(data)).digest());
  p11(ws, token, [
    '--sign',
    '-m',
    'ECDSA',
    '--signature-format',
    'openssl',
    '--id',
    id,
    '-i',
    digest,
    '-o',
    sig,
  ]);
}

/** openssl's check of a signature (RSA or ECDSA, over SHA-256) of `file` with the key in `pem`. */
export function opensslVerify(pem: string, sig: string, file: string): SpawnSyncReturns<string> {
  return spawnSync('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', sig, file], {
    encoding: 'utf8',
  });
}

/** An Ed25519 public key from its 32 raw bytes in base64, as custos files carry it. */
export function ed25519PublicKey(raw: string): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw, 'base64').toString('base64url') },
    format: 'jwk',
  });
}

/** openssl arguments that check a raw Ed25519 signature of `signed` by the public key in `key`. */
export function ed25519VerifyArgs(
  key: string,
  signed: string,
  sig: string,
  keyform: 'PEM' | 'DER' = 'PEM',
): string[] {
  return [
    'pkeyutl',
    '-verify',
    '-pubin',
    ...(keyform === 'DER' ? ['-keyform', 'DER'] : []),
    '-inkey',
    key,
    '-rawin',
    '-in',
    signed,
    '-sigfile',
    sig,
  ];
}

/**
 * The recipient's side of a handover package key, with the openssl CLI alone: the blob split at the
 * recipient's modulus length (parts written to `<parts>.oaep` and `<parts>.kwp`), the 32-byte
 * ephemeral AES key RSA-OAEP-decrypted with the digest `md`, and the key AES-KWP-unwrapped by it.
 */
export function opensslUnwrap(
  ws: Workspace,
  blob: Buffer,
  recipient: { key: string; modulusBytes: number },
  md: string,
  parts: string,
): { ephemeral: Buffer; bytes: Buffer } {
  const rsaPart = `${parts}.oaep`;
  const kwpPart = `${parts}.kwp`;
  writeFileSync(rsaPart, blob.subarray(0, recipient.modulusBytes));
  writeFileSync(kwpPart, blob.subarray(recipient.modulusBytes));
  const opts = { env: toolEnv(ws), cwd: ws.dir };
  const ephemeral = mustRun(
    'openssl',
    [
      'pkeyutl',
      '-decrypt',
      '-inkey',
      recipient.key,
      '-pkeyopt',
      'rsa_padding_mode:oaep',
      '-pkeyopt',
      `rsa_oaep_md:${md}`,
      '-pkeyopt',
      `rsa_mgf1_md:${md}`,
      '-in',
      rsaPart,
    ],
    opts,
  );
  expect(ephemeral.length, parts).toBe(32);
  const bytes = mustRun(
    'openssl',
    [
      'enc',
      '-d',
      '-id-aes256-wrap-pad',
      '-K',
      ephemeral.toString('hex'),
      '-iv',
      'A65959A6',
      '-in',
      kwpPart,
    ],
    opts,
  );
  return { ephemeral, bytes };
}

// ---------------------------------------------------------------- custodians, policies, profiles

export interface Custodian {
  id: string;
  name: string;
  identity: string;
  recipient: string;
  secret: string;
}

export function makeCustodians(ws: Workspace, ids: string[], dir = 'custodians'): Custodian[] {
  mkdirSync(join(ws.dir, dir), { recursive: true });
  return ids.map((id) =>
    ageCustodian(ws, id, `Custodian ${id.toUpperCase()}`, join(ws.dir, dir, `${id}.key`)),
  );
}

/** A custodian whose fresh age identity (made by age-keygen) is in `identity`; its key a secret. */
export function ageCustodian(ws: Workspace, id: string, name: string, identity: string): Custodian {
  mustRun('age-keygen', ['-o', identity], { env: baseEnv(ws), cwd: ws.dir });
  const recipient = mustRun('age-keygen', ['-y', identity], { env: baseEnv(ws), cwd: ws.dir })
    .toString()
    .trim();
  const secret =
    readFileSync(identity, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-1')) ?? '';
  expect(secret).toMatch(/^AGE-SECRET-KEY-1/);
  ws.secrets.add(secret);
  return { id, name, identity, recipient, secret };
}

export function writePolicy(
  ws: Workspace,
  file: string,
  threshold: number,
  custodians: Custodian[],
): string {
  const lines = [
    `# test policy: ${threshold} of ${custodians.length}`,
    `threshold: ${threshold}`,
    'custodians:',
  ];
  for (const c of custodians)
    lines.push(
      `  - id: ${c.id}`,
      `    name: ${JSON.stringify(c.name)}`,
      `    recipient: ${c.recipient}`,
    );
  const path = join(ws.dir, file);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

export interface Profile {
  name: string;
  token: string;
  pinVar: string;
  module?: string;
  /** The module's initialisation parameters (NSS softoken: see nss.ts). */
  libraryParameters?: string;
}

export function writeConfig(
  ws: { dir: string },
  profiles: Profile[],
  file = 'custos.yaml',
): string {
  const lines = ['hsms:'];
  for (const p of profiles) {
    lines.push(
      `  ${p.name}:`,
      `    module: ${p.module ?? MODULE}`,
      `    token: ${p.token}`,
      `    pin: env:${p.pinVar}`,
    );
    // A JSON string is a YAML double-quoted scalar: the parameters' own quotes pass through as they
    // are.
    if (p.libraryParameters !== undefined)
      lines.push(`    library-parameters: ${JSON.stringify(p.libraryParameters)}`);
  }
  const path = join(ws.dir, file);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Adds a profile for the token (PIN in an env var of this workspace) and returns its name. */
export function profileFor(
  ws: Workspace,
  profiles: Profile[],
  token: TokenRef,
  name = token.label,
): Profile {
  const pinVar = `PIN_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  ws.env[pinVar] = token.pin;
  const p = { name, token: token.label, pinVar };
  profiles.push(p);
  return p;
}

// ---------------------------------------------------------------- shares, bundles, the KEK

/**
 * Restore arguments naming a quorum: `--share` for each custodian's share of the bundle (in
 * `<bundle>.shares/`), then `--identity` for each.
 */
export function quorumArgs(bundle: string, quorum: Custodian[]): string[] {
  return [
    ...quorum.flatMap((c) => ['--share', `${bundle}.shares/${c.id}.share`]),
    ...quorum.flatMap((c) => ['--identity', c.identity]),
  ];
}

/** Decrypts a share file with the standard age CLI. */
export function ageDecrypt(
  ws: Workspace,
  file: string,
  identity: string,
): SpawnSyncReturns<Buffer> {
  return tool('age', ['-d', '-i', identity, file], baseEnv(ws), ws.dir);
}

export function openShare(ws: Workspace, file: string, identity: string): string {
  const r = ageDecrypt(ws, file, identity);
  if (r.status !== 0) throw new Error(`age -d ${file} failed: ${r.stderr.toString()}`);
  const text = r.stdout.toString('utf8');
  ws.secrets.add(shareValue(text));
  return text;
}

export function shareValue(plaintext: string): string {
  const m = /^share: (\S+)$/m.exec(plaintext);
  if (!m) throw new Error('no share: line');
  return m[1] as string;
}

/** Encrypts to an age recipient with the standard age CLI (binary format). */
export function ageEncrypt(ws: Workspace, recipient: string, plaintext: string, out: string): void {
  mustRun('age', ['-r', recipient, '-o', out], { env: baseEnv(ws), cwd: ws.dir, input: plaintext });
}

/**
 * Reassembles the KEK from share plaintexts with secrets.js-grempe directly (and registers it as a
 * secret).
 */
export function combineKek(ws: Workspace, plaintexts: string[]): Buffer {
  const hex = secrets.combine(plaintexts.map(shareValue));
  const kek = Buffer.from(hex, 'hex');
  ws.secrets.add(hex);
  ws.secrets.add(kek.toString('base64'));
  return kek;
}

export function aesKcv(key: Buffer): string {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return c.update(Buffer.alloc(16)).subarray(0, 3).toString('hex');
}

/** RFC 5649 unwrap with OpenSSL's id-aes256-wrap-pad (through node:crypto). */
export function kwpUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  const d = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
  return Buffer.concat([d.update(wrapped), d.final()]);
}

/**
 * The JSON body of a bundle file (between the header line and the MAC line), read independently.
 */
export function bundleBody(path: string): any {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  expect(lines[0]).toBe('custos-bundle/1');
  const macAt = text.lastIndexOf('\n--- hmac-sha256 ');
  expect(macAt).toBeGreaterThan(0);
  return JSON.parse(text.slice(text.indexOf('\n') + 1, macAt + 1));
}

// ---------------------------------------------------------------- the file system

/**
 * What is on disk under `dir`: every file with its SHA-256, except inside SoftHSM token
 * directories, where only object files are listed (SoftHSM rewrites its own bookkeeping files
 * on every login). A new token object, a new temp file or a changed bundle all show.
 */
/**
 * The audit log custos appends to in a workspace: a refused run adds an entry there by design (see
 * auditEntries).
 */
export const AUDIT_LOG = join('.custos', 'audit.jsonl');

/**
 * Every file under `dir` with a digest of its contents (token objects by name only), except the
 * audit log: "nothing was written" means no output and no token change; the log records the
 * refusal.
 */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (rel === AUDIT_LOG) continue;
      if (e.isDirectory()) {
        // .custos/ itself may appear just to hold the audit log; what is inside it still counts.
        if (rel !== '.custos') out[`${rel}/`] = 'dir';
        walk(p);
      } else if (/(^|\/)tokens\//.test(rel)) {
        if (rel.endsWith('.object') && !rel.endsWith('/token.object')) out[rel] = 'object';
      } else {
        out[rel] = createHash('sha256').update(readFileSync(p)).digest('hex');
      }
    }
  };
  walk(dir);
  return out;
}

/** The audit log's entries in a workspace (empty if none was written). */
export function auditEntries(ws: Workspace): Record<string, any>[] {
  const path = join(ws.dir, AUDIT_LOG);
  return existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l))
    : [];
}

export function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

export function exists(path: string): boolean {
  return existsSync(path);
}

// ---------------------------------------------------------------- secrets

/**
 * Every (run, secret) pair where a secret shows in a run's stdout or stderr, case-insensitively.
 */
export function findLeaks(runs: readonly Run[], secretSet: Iterable<string>): string[] {
  const leaks: string[] = [];
  const list = [...secretSet].filter((s) => s.length >= 8);
  for (const r of runs) {
    const text = `${r.stdout}\n${r.stderr}`.toLowerCase();
    for (const s of list) {
      if (text.includes(s.toLowerCase()))
        leaks.push(`custos ${r.args.join(' ')} printed the secret ${s.slice(0, 6)}…`);
    }
  }
  return leaks;
}

/** The closing check of a test file: no recorded run printed any registered secret. */
export function expectNoSecrets(ws: Workspace, extra: string[] = []): void {
  const all = new Set([...ws.secrets, ...extra]);
  expect(ws.runs.length).toBeGreaterThan(0);
  expect(all.size).toBeGreaterThan(0);
  // the scanner itself must be able to fail
  const planted = [...all][0] as string;
  expect(
    findLeaks(
      [{ args: ['probe'], status: 0, stdout: `x ${planted.toUpperCase()} y`, stderr: '' }],
      all,
    ),
  ).toHaveLength(1);
  expect(findLeaks(ws.runs, all)).toEqual([]);
}
