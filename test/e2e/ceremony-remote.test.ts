/**
 * The non-interactive quorum ceremony against real SoftHSM2 tokens, with custodians on their own
 * machines: a 3-of-5 backup; `ceremony open` on the host; `share submit` run by each custodian in
 * a separate temp HOME and cwd holding only the ceremony file, their share and their identity (one
 * identity passphrase-protected like `age -p`, checked with the real age CLI); `ceremony add` on
 * the host judging each arrival; `ceremony close --hsm` restoring into an empty token, proved by
 * outside oracles (pkcs11-tool AES and HMAC outputs, OpenSSL verifying signatures made on the
 * restored token with the source's public keys). Every rejection — replay from another ceremony,
 * foreign bundle, edited share, edited sealed part, edited header, duplicate custodian, edited
 * ceremony file, expiry — asserts its message, its exit status and that the accepted shares did
 * not change. Also: PIN-escrow ceremonies (a drill proving the PIN, a restore copying keys out of
 * the escrowed token), the audit log (verified, signed by the ceremony key, free of secrets), and
 * the host key destroyed at close.
 *
 * Hand-made submissions (for a foreign or edited share, which `share submit` itself refuses to
 * seal) are written from the documented layout and sealed with the age CLI; a genuine one made the
 * same way is accepted, so the rejections are about the share, not the hand-made format.
 *
 * custos has no clock hook, so expiry is seen by opening a 1-minute ceremony in beforeAll and
 * waiting, at the end of the file, for that minute to have passed.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, verify as nodeVerify } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, relative } from 'node:path';
import { Decrypter, Encrypter } from 'age-encryption';
import {
  BIN,
  TIMEOUT,
  aesCbcArgs,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  ed25519PublicKey,
  expectNoSecrets,
  expectOk,
  expectUserError,
  json,
  listObjects,
  makeCustodians,
  makeKey,
  makeStandardKeys,
  modeOf,
  mustRun,
  openShare,
  p11Raw,
  publicKeyPem,
  shareValue,
  snapshot,
  writePolicy,
  checkValueLines,
  opensslVerify,
  p11Output,
  signEcdsa,
  signRsa,
  type Custodian,
  type Run,
  type TokenRef,
  type Workspace,
  workspace,
} from './helpers.js';
import { SoPinProfiles } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const IDS = ['hale', 'okafor', 'lind', 'drlead', 'ciso'] as const;
type Id = (typeof IDS)[number];

let ws: Workspace;
let hostDir: string;
let byId: Record<Id, Custodian>;
let profiles: SoPinProfiles;
const PASSPHRASE = `pass-${randomBytes(6).toString('hex')}`;
/** Host keys of every ceremony opened, read before the close destroys them (secrets). */
const hostSecrets: string[] = [];
/** Every share plaintext opened with the age CLI, by file. */
const plaintexts = new Map<string, string>();

const toolEnv = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: ws.dir,
  LANG: 'C.UTF-8',
});
// ---------------------------------------------------------------- the host

const token = (name: string) => profiles.token(name);

/** custos on the ceremony host (cwd: host/, where custos.yaml, the bundles and .custos/ are). */
function host(args: string[]): Run {
  return custos(ws, args, { cwd: hostDir });
}

const ceremonyDir = (nonce: string) => join(hostDir, '.custos', 'ceremonies', nonce);
const acceptedDir = (nonce: string) => join(ceremonyDir(nonce), 'accepted');
const accepted = (nonce: string) =>
  existsSync(acceptedDir(nonce)) ? snapshot(acceptedDir(nonce)) : {};
const rejectedFiles = (nonce: string) =>
  existsSync(join(ceremonyDir(nonce), 'rejected'))
    ? readdirSync(join(ceremonyDir(nonce), 'rejected')).sort()
    : [];

interface Opened {
  file: string;
  nonce: string;
  body: any;
  digest: string;
}

/**
 * Reads a ceremony file without custos: header, JSON body, and the Ed25519 signature checked with
 * node:crypto.
 */
function readCeremony(path: string): Opened & { verifies: boolean } {
  const file = readFileSync(path);
  const text = file.toString('utf8');
  expect(text.split('\n')[0]).toBe('custos-ceremony/1');
  const at = text.lastIndexOf('\n--- ed25519 ');
  expect(at).toBeGreaterThan(0);
  const body = JSON.parse(text.slice(text.indexOf('\n') + 1, at + 1));
  const signature = Buffer.from(text.slice(at + '\n--- ed25519 '.length).trim(), 'base64');
  const key = ed25519PublicKey(body.signingKey);
  return {
    file: relative(hostDir, path),
    nonce: body.nonce,
    body,
    digest: createHash('sha256').update(file).digest('hex'),
    verifies: nodeVerify(null, file.subarray(0, at + 1), key, signature),
  };
}

/** Opens a ceremony on the host and registers its host key's secrets. */
function openCeremony(
  out: string,
  subject: string[],
  purpose: string,
  extra: string[] = [],
): Opened {
  const r = json(
    host(['ceremony', 'open', ...subject, '--purpose', purpose, '--out', out, '--json', ...extra]),
  );
  expect(r.file).toBe(out);
  const c = readCeremony(join(hostDir, out));
  expect(c.verifies).toBe(true);
  expect(r.ceremony.nonce).toBe(c.nonce);
  expect(r.digest).toBe(c.digest);
  expect(r.hostDir).toBe(join('.custos', 'ceremonies', c.nonce));
  const keyFile = join(ceremonyDir(c.nonce), 'host.key');
  const text = readFileSync(keyFile, 'utf8');
  const age = /^AGE-SECRET-KEY-1\S+$/m.exec(text)?.[0] as string;
  const ed = /^ed25519-pkcs8: (\S+)$/m.exec(text)?.[1] as string;
  expect(age).toBeDefined();
  expect(ed).toBeDefined();
  hostSecrets.push(age, ed);
  ws.secrets.add(age);
  ws.secrets.add(ed);
  return c;
}

/** The host's age identity of a ceremony, alone in a file the age CLI reads (test-side only). */
function hostAgeIdentity(nonce: string): string {
  const text = readFileSync(join(ceremonyDir(nonce), 'host.key'), 'utf8');
  const path = join(ws.dir, `host-age-${nonce}.key`);
  writeFileSync(path, `${/^AGE-SECRET-KEY-1\S+$/m.exec(text)?.[0]}\n`, { mode: 0o600 });
  return path;
}

/** A share's plaintext, opened with the standard age CLI (and its value registered as a secret). */
function plain(shareFile: string, c: Custodian): string {
  const got = plaintexts.get(shareFile);
  if (got) return got;
  const text = openShare(ws, shareFile, c.identity);
  plaintexts.set(shareFile, text);
  return text;
}

const shareOf = (bundle: string, id: Id) => join(hostDir, `${bundle}.shares`, `${id}.share`);

// ---------------------------------------------------------------- the custodians' machines

/**
 * A fresh machine for a custodian: its own directory (HOME and cwd) holding only the given files.
 */
function machine(name: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(ws.dir, 'machines', `${name}-`));
  for (const [as, from] of Object.entries(files)) copyFileSync(from, join(dir, as));
  return dir;
}

/**
 * custos on a custodian's machine: no SoftHSM, no custos.yaml, nothing of the host's environment.
 */
function remote(dir: string, args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(BIN, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      LANG: 'C.UTF-8',
      NO_COLOR: '1',
      COLUMNS: '250',
      ...env,
    },
    cwd: dir,
    input: '',
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (r.error) throw r.error;
  const run: Run = { args, status: r.status, stdout: r.stdout, stderr: r.stderr };
  ws.runs.push(run);
  return run;
}

interface Submitted {
  dir: string;
  run: Run;
  out: string;
}

/** A custodian runs share submit on their own machine with their copy of the ceremony file. */
function submitFrom(
  c: Custodian,
  ceremonyFile: string,
  opts: { share?: string; identity?: string; env?: Record<string, string>; yes?: boolean } = {},
): Submitted {
  const share = opts.share ?? shareOf('vault.bundle', c.id as Id);
  const identity = opts.identity ?? c.identity;
  const dir = machine(c.id, {
    'ceremony.ceremony': ceremonyFile,
    [`${c.id}.share`]: share,
    [basename(identity)]: identity,
  });
  const run = remote(
    dir,
    [
      'share',
      'submit',
      '--ceremony',
      'ceremony.ceremony',
      '--share',
      `${c.id}.share`,
      '--identity',
      basename(identity),
      '--out',
      `${c.id}.submission`,
      ...(opts.yes === false ? [] : ['--yes']),
    ],
    opts.env,
  );
  return { dir, run, out: join(dir, `${c.id}.submission`) };
}

/** The custodian sends the file back: it lands in the host's inbox. */
function receive(from: string, name: string): string {
  mkdirSync(join(hostDir, 'inbox'), { recursive: true });
  copyFileSync(from, join(hostDir, 'inbox', name));
  return `inbox/${name}`;
}

/** What the machine holds, apart from its own audit log. */
function machineFiles(dir: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(snapshot(dir)).filter(([k]) => !k.startsWith('.custos')),
  );
}

function auditLines(path: string): any[] {
  return existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
}

/**
 * A submission written by hand from the documented layout, sealed to the ceremony's recipient with
 * the age CLI.
 */
function craft(
  c: Opened,
  custodian: Custodian,
  shareText: string,
  edit: (header: string[]) => string[] = (h) => h,
): string {
  const header = [
    `ceremony: ${c.nonce}`,
    `ceremony-digest: ${c.digest}`,
    `custodian: ${custodian.id}`,
    `submitted: ${new Date().toISOString()}`,
  ];
  const payload = `custos-submission-payload/1\n${header.join('\n')}\nopened-with: ${custodian.recipient}\n${shareText}`;
  const sealed = mustRun('age', ['-a', '-r', c.body.recipient], {
    env: toolEnv(),
    cwd: ws.dir,
    input: payload,
  }).toString();
  return `custos-submission/1\n${edit(header).join('\n')}\n${sealed}`;
}

function writeInbox(name: string, text: string): string {
  mkdirSync(join(hostDir, 'inbox'), { recursive: true });
  writeFileSync(join(hostDir, 'inbox', name), text, { mode: 0o600 });
  return `inbox/${name}`;
}

/**
 * ceremony add refused one submission: exit 4, E_SUBMISSION_REJECTED, one detail line naming the
 * file (and custodian) with the reason's message, the reason code in --json, no stack trace; the
 * accepted shares unchanged and the rejection kept.
 */
function addRejected(
  c: Opened,
  submission: string,
  reason: string,
  message: RegExp,
  custodian?: string,
): Run {
  const before = accepted(c.nonce);
  const rejectedBefore = rejectedFiles(c.nonce).length;
  const r = host(['ceremony', 'add', c.file, submission, '--json']);
  const where = describeRun(r);
  expect(r.status, where).toBe(4);
  expect(r.stderr, where).toMatch(
    /^custos: error: 1 submission rejected \[E_SUBMISSION_REJECTED\]$/m,
  );
  expect(r.stderr, where).not.toMatch(/^\s+at\s|node:internal|internal error|TypeError/m);
  const line = r.stderr.split('\n').find((l) => l.startsWith(`custos:   rejected ${submission}`));
  expect(line, where).toBeDefined();
  expect(line, where).toMatch(message);
  if (custodian) expect(line, where).toContain(`${submission} (${custodian}): `);
  expect(r.stderr, where).toMatch(
    /^custos: hint: the accepted submissions are kept; for each rejected file, do what its line says$/m,
  );
  // each rejected file is followed by what to do about it
  const lines = r.stderr.split('\n');
  expect(lines[lines.indexOf(line as string) + 1], where).toMatch(/^custos: {5}what to do: \S/);
  const out = JSON.parse(r.stdout);
  expect(out.accepted).toEqual([]);
  expect(out.rejected).toEqual([
    expect.objectContaining({ source: submission, reason, custodian: custodian ?? null }),
  ]);
  expect(accepted(c.nonce)).toEqual(before);
  expect(rejectedFiles(c.nonce)).toHaveLength(rejectedBefore + 1);
  return r;
}

// ---------------------------------------------------------------- outside oracles

const checkValues = (hsm: string) => checkValueLines(host(['inventory', '--hsm', hsm, '--json']));

/**
 * The same AES / HMAC output from both tokens, and signatures made on `target` verified by OpenSSL
 * with `source`'s public keys.
 */
function proveSameKeys(
  source: TokenRef,
  target: TokenRef,
  ids: { aes: string; hmac?: string; rsa: string; ec: string },
): void {
  const dir = mkdtempSync(join(ws.dir, 'oracle-'));
  const data = join(dir, 'data.bin');
  writeFileSync(data, `custos ceremony oracle ${randomBytes(8).toString('hex')}\n`);
  const block = join(dir, 'zero.bin');
  writeFileSync(block, Buffer.alloc(32));
  const out = (t: TokenRef, args: string[], name: string) =>
    p11Output(ws, t, args, join(dir, `${t.label}-${name}`));
  const aes = (t: TokenRef) => out(t, aesCbcArgs(ids.aes, block), 'aes');
  const a = aes(source);
  expect(a).toHaveLength(32);
  expect(aes(target).equals(a)).toBe(true);
  if (ids.hmac) {
    const mac = (t: TokenRef) =>
      out(t, ['--sign', '-m', 'SHA256-HMAC', '--id', ids.hmac as string, '-i', data], 'hmac');
    const m = mac(source);
    expect(m).toHaveLength(32);
    expect(mac(target).equals(m)).toBe(true);
  }
  // RSA: SHA256-RSA-PKCS on the restored token
  const rsaSig = join(dir, 'rsa.sig');
  signRsa(ws, target, ids.rsa, data, rsaSig);
  const rsaPem = publicKeyPem(ws, source, ids.rsa, join(dir, 'rsa.pem'));
  const ok = opensslVerify(rsaPem, rsaSig, data);
  expect(ok.status, ok.stderr).toBe(0);
  expect(ok.stdout).toMatch(/Verified OK/);
  // EC: raw ECDSA over SHA-256(data) on the restored token (SoftHSM has no ECDSA-SHA256), DER for
  // OpenSSL
  const ecSig = join(dir, 'ec.sig');
  signEcdsa(ws, target, ids.ec, data, join(dir, 'data.sha256'), ecSig);
  const ecPem = publicKeyPem(ws, source, ids.ec, join(dir, 'ec.pem'));
  expect(opensslVerify(ecPem, ecSig, data).status).toBe(0);
  // the oracle can fail: the same signatures do not verify other data
  const other = join(dir, 'other.bin');
  writeFileSync(other, 'other data\n');
  expect(opensslVerify(rsaPem, rsaSig, other).status).not.toBe(0);
  expect(opensslVerify(ecPem, ecSig, other).status).not.toBe(0);
}

// ---------------------------------------------------------------- setup

/** The 1-minute ceremony and a submission made to it while it was open. */
let short: { c: Opened; expires: number; early: string };

beforeAll(() => {
  ws = workspace('ceremony-remote');
  hostDir = join(ws.dir, 'host');
  mkdirSync(hostDir);
  mkdirSync(join(ws.dir, 'machines'));
  const list = makeCustodians(ws, [...IDS]);
  byId = Object.fromEntries(list.map((c) => [c.id, c])) as Record<Id, Custodian>;
  writePolicy(ws, 'host/policy.yaml', 3, list);
  ws.secrets.add(PASSPHRASE);
  profiles = new SoPinProfiles(ws, join(hostDir, 'custos.yaml'));
  const vault = profiles.add('vault');
  profiles.add('dr');
  makeStandardKeys(ws, vault);
  expectOk(host(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'vault.bundle']));

  // opened now, seen expired at the end of the file
  const c = openCeremony('short.ceremony', ['--bundle', 'vault.bundle'], 'restore', [
    '--expires',
    '1m',
  ]);
  const expires = Date.parse(c.body.expires);
  expect(expires - Date.parse(c.body.created)).toBe(60_000);
  const early = submitFrom(byId.drlead, join(hostDir, 'short.ceremony'));
  expectOk(early.run);
  expect(Date.now()).toBeLessThan(expires);
  short = { c, expires, early: receive(early.out, 'drlead-short.submission') };

  // a second backup of the same token: another bundle id, other shares
  expectOk(
    host(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'foreign.bundle']),
  );
  for (const id of IDS) {
    plain(shareOf('vault.bundle', id), byId[id]);
    plain(shareOf('foreign.bundle', id), byId[id]);
  }
});

afterAll(() => cleanup(ws));

// ---------------------------------------------------------------- the restore ceremony

describe('a 3-of-5 restore ceremony with the custodians on their own machines', () => {
  let c: Opened;
  let other: Opened;
  let lindAge: string;
  const good: Partial<Record<Id, string>> = {};

  it('ceremony open writes a signed ceremony file with nothing secret in it, and a 0600 host key under .custos/ceremonies/NONCE/', () => {
    c = openCeremony('restore.ceremony', ['--bundle', 'vault.bundle'], 'restore');
    const vault = bundleBody(join(hostDir, 'vault.bundle'));
    expect(c.body).toMatchObject({
      purpose: 'restore',
      threshold: 3,
      total: 5,
      subject: {
        kind: 'bundle',
        file: 'vault.bundle',
        bundleId: vault.bundleId,
        source: { label: 'vault' },
      },
      dealer: vault.dealer.publicKey,
    });
    expect(c.body.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(
      c.body.custodians.map((x: { id: string; recipient: string }) => `${x.id}:${x.recipient}`),
    ).toEqual(IDS.map((id) => `${id}:${byId[id].recipient}`));
    expect(c.body.subject.keys.map((k: { label: string }) => k.label).sort()).toEqual([
      'aes-key',
      'ec-key',
      'hmac-key',
      'rsa-key',
    ]);
    expect(Date.parse(c.body.expires) - Date.parse(c.body.created)).toBe(72 * 3_600_000);
    expect(modeOf(join(hostDir, 'restore.ceremony'))).toBe(0o644);
    const dir = ceremonyDir(c.nonce);
    expect(readdirSync(dir)).toEqual(['host.key']);
    expect(modeOf(join(dir, 'host.key'))).toBe(0o600);
    expect(statSync(dir).mode & 0o077).toBe(0);
    const text = readFileSync(join(hostDir, 'restore.ceremony'), 'utf8');
    for (const s of [...hostSecrets, ...ws.secrets])
      expect(text.includes(s), 'a secret in the ceremony file').toBe(false);
    // its recipient is the public half of the host's age key
    const recipient = mustRun('age-keygen', ['-y', hostAgeIdentity(c.nonce)], {
      env: toolEnv(),
      cwd: ws.dir,
    })
      .toString()
      .trim();
    expect(c.body.recipient).toBe(recipient);
  });

  it("lind's identity is passphrase-protected as `age -p` makes it: the real age CLI opens it only with the passphrase", async () => {
    const e = new Encrypter();
    e.setPassphrase(PASSPHRASE);
    lindAge = join(ws.dir, 'custodians', 'lind.age');
    writeFileSync(lindAge, await e.encrypt(readFileSync(byId.lind.identity)), { mode: 0o600 });
    expect(readFileSync(lindAge).subarray(0, 21).toString('latin1')).toBe('age-encryption.org/v1');
    expect(readFileSync(lindAge).toString('latin1')).toMatch(/^-> scrypt /m);
    // age asks the passphrase on its terminal: script(1) gives it one
    const ageD = (pass: string, out: string) =>
      spawnSync('script', ['-q', '-e', '-c', `age -d -o ${out} ${lindAge}`, '/dev/null'], {
        input: `${pass}\n`,
        encoding: 'utf8',
        timeout: 60_000,
        env: toolEnv(),
        cwd: ws.dir,
      });
    const out = join(ws.dir, 'lind-opened.key');
    const ok = ageD(PASSPHRASE, out);
    expect(ok.status, ok.stdout).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(byId.lind.identity, 'utf8'));
    const wrong = ageD(`${PASSPHRASE}x`, join(ws.dir, 'lind-wrong.key'));
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toMatch(/incorrect passphrase/);
    expect(existsSync(join(ws.dir, 'lind-wrong.key'))).toBe(false);
    // and the library agrees
    const d = new Decrypter();
    d.addPassphrase(PASSPHRASE);
    expect(await d.decrypt(readFileSync(lindAge), 'text')).toBe(
      readFileSync(byId.lind.identity, 'utf8'),
    );
  });

  it('share submit without --yes and without a terminal is E_NO_TTY, after showing what was asked, and writes no submission', () => {
    const s = submitFrom(byId.hale, join(hostDir, 'restore.ceremony'), { yes: false });
    const line = expectUserError(s.run, 8, /E_NO_TTY/);
    expect(line).toMatch(
      /first 8 characters of the lead's SHA-256: needs a terminal to ask, and there is none/,
    );
    expect(s.run.stderr).toMatch(/^custos: hint: add --yes to submit without being asked$/m);
    // what is asked is shown first, on stderr, as the person reads it: no prefix, the digest alone
    // on its line in groups of four
    expect(s.run.stderr).toMatch(/^you are asked to give your share for:$/m);
    expect(s.run.stderr).toContain(`\n${c.digest.match(/.{4}/g)?.join(' ')}\n`);
    expect(s.run.stderr).toMatch(
      /^To give it, type the first 8 characters of the SHA-256 the lead read to you\.$/m,
    );
    expect(s.run.stderr).toContain(`ceremony:  ${c.nonce}`);
    expect(existsSync(s.out)).toBe(false);
    expect(Object.keys(machineFiles(s.dir)).sort()).toEqual([
      'ceremony.ceremony',
      'hale.key',
      'hale.share',
    ]);
    // the custodian's own audit log records the refusal
    const log = auditLines(join(s.dir, '.custos', 'audit.jsonl'));
    expect(log.map((e) => `${e.op}:${e.outcome}:${e.code}`)).toEqual([
      'share-submit:failed:E_NO_TTY',
    ]);
    expect(log[0].ceremony).toBe(c.nonce);
  });

  it('a wrong passphrase is E_IDENTITY; no passphrase and no terminal is E_NO_TTY naming CUSTOS_PASSPHRASE; nothing is written', () => {
    const wrong = submitFrom(byId.lind, join(hostDir, 'restore.ceremony'), {
      identity: lindAge,
      env: { CUSTOS_PASSPHRASE: `${PASSPHRASE}-not` },
    });
    const line = expectUserError(wrong.run, 3, /E_IDENTITY/);
    expect(line).toMatch(/the passphrase does not open identity file lind\.age/);
    expect(Object.keys(machineFiles(wrong.dir)).sort()).toEqual([
      'ceremony.ceremony',
      'lind.age',
      'lind.share',
    ]);

    const none = submitFrom(byId.lind, join(hostDir, 'restore.ceremony'), { identity: lindAge });
    expectUserError(none.run, 8, /E_NO_TTY/);
    expect(none.run.stderr).toMatch(/^custos: hint: set CUSTOS_PASSPHRASE to .*passphrase/m);
    expect(Object.keys(machineFiles(none.dir)).sort()).toEqual([
      'ceremony.ceremony',
      'lind.age',
      'lind.share',
    ]);
  });

  it("a share from another backup is refused on the custodian's machine (E_SHARE_REJECTED), and nothing is written", () => {
    const foreignId = bundleBody(join(hostDir, 'foreign.bundle')).bundleId;
    const s = submitFrom(byId.okafor, join(hostDir, 'restore.ceremony'), {
      share: shareOf('foreign.bundle', 'okafor'),
    });
    const line = expectUserError(s.run, 4, /E_SHARE_REJECTED/);
    expect(line).toMatch(
      new RegExp(
        `okafor\\.share: belongs to another backup \\(bundle ${foreignId}, not ${c.body.subject.bundleId}\\)`,
      ),
    );
    // the same instruction as ceremony run and shares verify give for the same mistake
    expect(s.run.stderr).toMatch(
      new RegExp(
        `^custos: hint: this share is for another backup: find the share file made for bundle ${c.body.subject.bundleId} \\(custodians often hold several\\)$`,
        'm',
      ),
    );
    expect(existsSync(s.out)).toBe(false);
  });

  it("another custodian's identity does not open the share: refused, nothing written", () => {
    const s = submitFrom(byId.okafor, join(hostDir, 'restore.ceremony'), {
      identity: byId.hale.identity,
    });
    const line = expectUserError(s.run, 4, /E_SHARE_REJECTED/);
    expect(line).toMatch(/none of the identities given opens it/);
    expect(existsSync(s.out)).toBe(false);
  });

  it('an edited ceremony file (submissions redirected to another key) is refused by share submit and by ceremony add: its signature fails', () => {
    const original = readFileSync(join(hostDir, 'restore.ceremony'), 'utf8');
    const attacker = mustRun('age-keygen', [], { env: toolEnv(), cwd: ws.dir }).toString();
    const attackerRecipient = /public key: (age1\S+)/.exec(attacker)?.[1] as string;
    const edited = original.replace(
      `"recipient": "${c.body.recipient}"`,
      `"recipient": "${attackerRecipient}"`,
    );
    expect(edited).not.toBe(original);
    const path = join(ws.dir, 'edited.ceremony');
    writeFileSync(path, edited);
    const s = submitFrom(byId.hale, path);
    const line = expectUserError(s.run, 3, /E_CEREMONY_FORMAT/);
    expect(line).toMatch(
      /ceremony\.ceremony fails its signature: the file was edited after the ceremony was opened/,
    );
    expect(s.run.stderr).toMatch(/^custos: hint: .*ask the ceremony lead for the file they sent/m);
    expect(existsSync(s.out)).toBe(false);
    expect(Object.keys(machineFiles(s.dir)).sort()).toEqual([
      'ceremony.ceremony',
      'hale.key',
      'hale.share',
    ]);

    // one changed letter in the purpose is enough
    const drill = original.replace('"purpose": "restore"', '"purpose": "drill"');
    writeFileSync(join(hostDir, 'edited-purpose.ceremony'), drill);
    const before = snapshot(hostDir);
    const add = host(['ceremony', 'add', 'edited-purpose.ceremony', 'restore.ceremony']);
    expectUserError(add, 3, /E_CEREMONY_FORMAT/, /edited-purpose\.ceremony fails its signature/);
    expect(snapshot(hostDir)).toEqual(before);
  });

  it('three custodians submit from their own machines (lind with the passphrase-protected identity): 0600 files bound to this ceremony, with no share or KEK in them', () => {
    const kek = combineKek(
      ws,
      (['hale', 'lind', 'ciso'] as const).map((id) => plain(shareOf('vault.bundle', id), byId[id])),
    );
    expect(aesKcv(kek)).toBe(bundleBody(join(hostDir, 'vault.bundle')).kek.kcv);
    const needles = [
      kek.toString('hex'),
      kek.toString('base64'),
      ...IDS.map((id) => shareValue(plain(shareOf('vault.bundle', id), byId[id]))),
      'custos-share/1',
      'share: ',
    ];
    const hostIdentity = hostAgeIdentity(c.nonce);

    for (const id of ['hale', 'lind', 'ciso'] as const) {
      const s =
        id === 'lind'
          ? submitFrom(byId.lind, join(hostDir, 'restore.ceremony'), {
              identity: lindAge,
              env: { CUSTOS_PASSPHRASE: PASSPHRASE },
            })
          : submitFrom(byId[id], join(hostDir, 'restore.ceremony'));
      expectOk(s.run);
      expect(s.run.stdout).toMatch(
        new RegExp(`^submission ${id}\\.submission written for ${id}$`, 'm'),
      );
      expect(s.run.stdout).toMatch(
        new RegExp(`^ {6}Only ceremony ${c.nonce} can open it\\.$`, 'm'),
      );
      expect(s.run.stderr).toContain(`purpose:   restore`);
      expect(modeOf(s.out)).toBe(0o600);
      const text = readFileSync(s.out, 'utf8');
      const lines = text.split('\n');
      expect(lines.slice(0, 4)).toEqual([
        'custos-submission/1',
        `ceremony: ${c.nonce}`,
        `ceremony-digest: ${c.digest}`,
        `custodian: ${id}`,
      ]);
      expect(lines[4]).toMatch(/^submitted: \d{4}-\d\d-\d\dT/);
      expect(lines[5]).toBe('-----BEGIN AGE ENCRYPTED FILE-----');
      for (const n of needles)
        expect(
          text.toLowerCase().includes(n.toLowerCase()),
          `${id}'s submission shows ${n.slice(0, 8)}…`,
        ).toBe(false);
      // outside oracle: the age CLI opens the sealed part with the ceremony host's key, and finds
      // the custodian's signed share verbatim
      const sealed = join(ws.dir, `${id}.sealed`);
      writeFileSync(sealed, lines.slice(5).join('\n'));
      const opened = mustRun('age', ['-d', '-i', hostIdentity, sealed], {
        env: toolEnv(),
        cwd: ws.dir,
      }).toString();
      expect(opened.split('\n').slice(0, 6)).toEqual([
        'custos-submission-payload/1',
        ...lines.slice(1, 5),
        `opened-with: ${byId[id].recipient}`,
      ]);
      expect(opened.endsWith(plain(shareOf('vault.bundle', id), byId[id]))).toBe(true);
      // another custodian's key does not open it
      expect(spawnSync('age', ['-d', '-i', byId[id].identity, sealed]).status).not.toBe(0);
      good[id] = receive(s.out, `${id}.submission`);
    }
  });

  it('the host adds the first submission: 1 of 3 accepted, kept as it came (0600)', () => {
    const r = expectOk(host(['ceremony', 'add', 'restore.ceremony', good.hale as string]));
    expect(r.stdout).toBe(
      [
        `accepted ${good.hale}: hale's share`,
        'quorum: 1 of 3 shares accepted (2 more needed)',
        'next: as each submission arrives: custos ceremony add restore.ceremony FILE...',
        '      not given yet: okafor, lind, drlead, ciso',
        '',
      ].join('\n'),
    );
    const kept = join(acceptedDir(c.nonce), 'hale.submission');
    expect(readFileSync(kept).equals(readFileSync(join(hostDir, good.hale as string)))).toBe(true);
    expect(modeOf(kept)).toBe(0o600);
    expect(readdirSync(acceptedDir(c.nonce))).toEqual(['hale.submission']);
  });

  it('hand-made submissions are accepted when genuine (the format the rejections below use is right)', () => {
    other = openCeremony('drill.ceremony', ['--bundle', 'vault.bundle'], 'drill');
    expect(other.body.subject.bundleId).toBe(c.body.subject.bundleId);
    const okafor = submitFrom(byId.okafor, join(hostDir, 'drill.ceremony'));
    expectOk(okafor.run);
    const replay = receive(okafor.out, 'okafor-drill.submission');
    const handMade = writeInbox(
      'drlead-drill-hand.submission',
      craft(other, byId.drlead, plain(shareOf('vault.bundle', 'drlead'), byId.drlead)),
    );
    const r = json(host(['ceremony', 'add', 'drill.ceremony', replay, handMade, '--json']));
    expect(r.accepted).toEqual([
      { custodian: 'okafor', source: replay },
      { custodian: 'drlead', source: handMade },
    ]);
    expect(r.quorum).toEqual({ accepted: 2, needed: 3, missing: 1 });
  });

  it('a submission replayed from another ceremony of the same bundle is rejected as made for another ceremony', () => {
    addRejected(
      c,
      'inbox/okafor-drill.submission',
      'wrong-ceremony',
      new RegExp(`was made for ceremony ${other.nonce}, not this one \\(${c.nonce}\\)$`),
    );
  });

  it('a share from another backup, in a well-formed submission sealed to this ceremony, is rejected as from another backup', () => {
    const foreignId = bundleBody(join(hostDir, 'foreign.bundle')).bundleId;
    const file = writeInbox(
      'okafor-foreign.submission',
      craft(c, byId.okafor, plain(shareOf('foreign.bundle', 'okafor'), byId.okafor)),
    );
    addRejected(
      c,
      file,
      'foreign-bundle',
      new RegExp(
        `belongs to another backup \\(bundle ${foreignId}, not ${c.body.subject.bundleId}\\)`,
      ),
    );
  });

  it('an edited share (one digit of its value changed), sealed properly, is rejected: its signature does not verify', () => {
    const text = plain(shareOf('vault.bundle', 'okafor'), byId.okafor);
    const value = shareValue(text);
    const last = value.at(-1) as string;
    const edited = text.replace(
      `share: ${value}`,
      `share: ${value.slice(0, -1)}${last === '0' ? '1' : '0'}`,
    );
    expect(edited).not.toBe(text);
    const file = writeInbox('okafor-edited-share.submission', craft(c, byId.okafor, edited));
    addRejected(
      c,
      file,
      'bad-signature',
      /its signature does not verify: the share was edited, or was not made by this backup/,
    );
  });

  it("a submission whose sealed part was edited is rejected: it does not open with this ceremony's key", () => {
    const s = submitFrom(byId.drlead, join(hostDir, 'restore.ceremony'));
    expectOk(s.run);
    const text = readFileSync(s.out, 'utf8');
    const lines = text.split('\n');
    // one character in the middle of the armored ciphertext
    const i = 9;
    const line = lines[i] as string;
    lines[i] = `${line.slice(0, 20)}${line[20] === 'A' ? 'B' : 'A'}${line.slice(21)}`;
    const file = writeInbox('drlead-sealed-edited.submission', lines.join('\n'));
    addRejected(
      c,
      file,
      'unopened',
      /it does not open with this ceremony's key: it was edited, or made for another ceremony/,
    );
    good.drlead = receive(s.out, 'drlead.submission');
  });

  it('a submission whose clear header was edited is rejected: time or custodian changed, digest changed, nonce changed', () => {
    const text = readFileSync(join(hostDir, good.drlead as string), 'utf8');
    const edit = (from: RegExp, to: string, name: string) => {
      const edited = text.replace(from, to);
      expect(edited).not.toBe(text);
      return writeInbox(name, edited);
    };
    // Anyone can seal to the ceremony: until a share signed by the dealer says who it is, nobody is
    // blamed.
    addRejected(
      c,
      edit(/^submitted: .*$/m, 'submitted: 2020-01-01T00:00:00.000Z', 'drlead-time.submission'),
      'edited',
      /its clear header does not match the sealed one: the submission was edited/,
    );
    addRejected(
      c,
      edit(/^custodian: drlead$/m, 'custodian: okafor', 'drlead-as-okafor.submission'),
      'edited',
      /its clear header does not match the sealed one/,
    );
    addRejected(
      c,
      edit(
        /^ceremony-digest: .*$/m,
        `ceremony-digest: ${'0'.repeat(64)}`,
        'drlead-digest.submission',
      ),
      'ceremony-changed',
      /names a different ceremony file digest: the file the custodian was sent was changed, or the submission's header was edited/,
    );
    addRejected(
      c,
      edit(/^ceremony: .*$/m, `ceremony: ${other.nonce}`, 'drlead-nonce.submission'),
      'wrong-ceremony',
      /was made for ceremony .*, not this one/,
    );
  });

  it('a second submission from an accepted custodian is harmless: said, recorded, not an error', () => {
    const s = submitFrom(byId.hale, join(hostDir, 'restore.ceremony'));
    expectOk(s.run);
    const file = receive(s.out, 'hale-again.submission');
    const before = accepted(c.nonce);
    const r = expectOk(host(['ceremony', 'add', 'restore.ceremony', file]));
    expect(r.stdout).toMatch(
      new RegExp(`^already in ${file}: hale's share already counts; nothing to do$`, 'm'),
    );
    expect(r.stderr).toBe('');
    expect(accepted(c.nonce)).toEqual(before);
    // and the very file that was accepted, sent twice: in --json it is a duplicate, not a rejection
    const j = json(host(['ceremony', 'add', 'restore.ceremony', good.hale as string, '--json']));
    expect(j.rejected).toEqual([]);
    expect(j.duplicates).toEqual([
      {
        source: good.hale,
        custodian: 'hale',
        message: expect.stringMatching(/^is a duplicate: hale's share was already given/),
      },
    ]);
    // the audit log keeps every file offered
    const log = auditLines(join(hostDir, '.custos', 'audit.jsonl')).filter(
      (e) => e.op === 'submission-rejected' && e.detail.reason === 'duplicate',
    );
    expect(log.map((e) => e.detail.custodian)).toEqual(['hale', 'hale']);
  });

  it('a share file sent in place of a submission is named as such, with what to tell the custodian; a note is malformed', () => {
    const share = writeInbox(
      'okafor.share',
      readFileSync(shareOf('vault.bundle', 'okafor'), 'utf8'),
    );
    const r = addRejected(
      c,
      share,
      'malformed',
      /is an encrypted file, most likely a share file, not a submission/,
    );
    expect(JSON.parse(r.stdout).rejected[0].custodian).toBeNull();
    expect(r.stderr).toMatch(
      /^custos: {5}what to do: never send a share file: the custodian runs custos share submit and sends the \.submission file it writes$/m,
    );
    // nobody is named in the hint: nobody was
    expect(r.stderr).not.toMatch(/ask each named custodian/);
    const note = writeInbox('note.txt', 'please find my share attached\n');
    addRejected(c, note, 'malformed', /not a custos submission/);
  });

  it('the two other submissions reach the quorum; status --json shows who was accepted, and blames nobody for what nobody signed', () => {
    const r = expectOk(
      host(['ceremony', 'add', 'restore.ceremony', good.lind as string, good.ciso as string]),
    );
    expect(r.stdout).toMatch(/^quorum: 3 of 3 shares accepted — quorum reached$/m);
    expect(r.stdout).toMatch(/^next: custos ceremony close restore\.ceremony --hsm TARGET$/m);
    expect(readdirSync(acceptedDir(c.nonce)).sort()).toEqual([
      'ciso.submission',
      'hale.submission',
      'lind.submission',
    ]);
    const s = json(host(['ceremony', 'status', 'restore.ceremony', '--json']));
    expect(s).toMatchObject({
      ceremony: c.nonce,
      purpose: 'restore',
      expired: false,
      closed: null,
      threshold: 3,
      accepted: 3,
    });
    const state = Object.fromEntries(
      s.custodians.map((x: { id: string; state: string }) => [x.id, x.state]),
    );
    // Every rejection of okafor's and drlead's name came from a submission no dealer-signed share
    // of theirs
    // vouches for (anyone can seal to the ceremony's public recipient): nobody is blamed for them.
    expect(state).toEqual({
      hale: 'accepted',
      okafor: 'waiting',
      lind: 'accepted',
      drlead: 'waiting',
      ciso: 'accepted',
    });
    expect(s.unattributed.map((u: { source: string }) => u.source)).toEqual([
      'inbox/okafor-drill.submission',
      'inbox/okafor-foreign.submission',
      'inbox/okafor-edited-share.submission',
      'inbox/drlead-sealed-edited.submission',
      'inbox/drlead-time.submission',
      'inbox/drlead-as-okafor.submission',
      'inbox/drlead-digest.submission',
      'inbox/drlead-nonce.submission',
      'inbox/okafor.share',
      'inbox/note.txt',
    ]);
    const text = expectOk(host(['ceremony', 'status', 'restore.ceremony']));
    expect(text.stdout).toMatch(/^next: custos ceremony close restore\.ceremony --hsm TARGET$/m);
  });

  it("close --hsm restores into the empty target: check values equal the source's, and the outside oracles agree", () => {
    expect(listObjects(ws, token('dr'))).toEqual([]);
    // another bundle given as the subject is refused before any HSM is touched, and the ceremony
    // stays open
    const before = snapshot(hostDir);
    const wrong = host([
      'ceremony',
      'close',
      'restore.ceremony',
      '--hsm',
      'dr',
      '--subject',
      'foreign.bundle',
    ]);
    expectUserError(
      wrong,
      3,
      /E_CEREMONY\]/,
      new RegExp(
        `foreign\\.bundle is not the bundle ceremony ${c.nonce} was opened for \\(id or digest differs\\)`,
      ),
    );
    expect(snapshot(hostDir)).toEqual(before);
    expect(listObjects(ws, token('dr'))).toEqual([]);
    const out = json(host(['ceremony', 'close', 'restore.ceremony', '--hsm', 'dr', '--json']));
    expect(out.ceremony).toBe(c.nonce);
    expect([...out.custodians].sort()).toEqual(['ciso', 'hale', 'lind']);
    expect(out.outcome.kind).toBe('restore');
    expect(
      out.outcome.results[0].keys
        .map((k: { record: { label: string }; status: string }) => `${k.record.label}:${k.status}`)
        .sort(),
    ).toEqual(['aes-key:restored', 'ec-key:restored', 'hmac-key:restored', 'rsa-key:restored']);
    const source = checkValues('vault').filter((v) => !v.includes('/bound-key/'));
    expect(source).toHaveLength(6);
    expect(checkValues('dr')).toEqual(source);
    proveSameKeys(token('vault'), token('dr'), { aes: '01', hmac: '02', rsa: '03', ec: '04' });
  });

  it('after the close the host key and the sealed shares are gone and closed.json says so; another close or add is E_CEREMONY and writes nothing', () => {
    const dir = ceremonyDir(c.nonce);
    expect(existsSync(join(dir, 'host.key'))).toBe(false);
    expect(existsSync(acceptedDir(c.nonce))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['closed.json', 'rejected']);
    expect(modeOf(join(dir, 'closed.json'))).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'closed.json'), 'utf8'))).toMatchObject({
      outcome: 'restore completed',
    });
    const before = snapshot(hostDir);
    const objects = listObjects(ws, token('dr')).length;
    const again = host(['ceremony', 'close', 'restore.ceremony', '--hsm', 'dr']);
    expectUserError(
      again,
      3,
      /E_CEREMONY\]/,
      new RegExp(`ceremony ${c.nonce} was closed at .* \\(restore completed\\)`),
    );
    const add = host(['ceremony', 'add', 'restore.ceremony', good.drlead as string]);
    expectUserError(add, 3, /E_CEREMONY\]/, /was closed at/);
    expect(snapshot(hostDir)).toEqual(before);
    expect(listObjects(ws, token('dr'))).toHaveLength(objects);
    const s = expectOk(host(['ceremony', 'status', 'restore.ceremony']));
    expect(s.stdout).toMatch(/^closed at .*: restore completed$/m);
  });

  it('the drill ceremony of the same bundle, with a third custodian, closes into a scratch token that is destroyed', () => {
    const s = submitFrom(byId.ciso, join(hostDir, 'drill.ceremony'));
    expectOk(s.run);
    expectOk(host(['ceremony', 'add', 'drill.ceremony', receive(s.out, 'ciso-drill.submission')]));
    const usage = host(['ceremony', 'close', 'drill.ceremony', '--hsm', 'dr']);
    expectUserError(usage, 2, /E_USAGE/, /closing this drill ceremony takes no --hsm/);
    const objects = listObjects(ws, token('dr')).length;
    const r = expectOk(host(['ceremony', 'close', 'drill.ceremony']));
    expect(r.stdout).toMatch(
      /drill passed: all 4 keys of bundle [0-9a-f]{32} restored into a scratch token and matched; the scratch token was destroyed/,
    );
    expect(listObjects(ws, token('dr'))).toHaveLength(objects);
    expect(existsSync(join(ceremonyDir(other.nonce), 'host.key'))).toBe(false);
  });
});

// ---------------------------------------------------------------- PIN escrow

describe('PIN-escrow ceremonies: a drill proves the escrowed PIN, a restore copies the keys out of the escrowed token', () => {
  let escrowedPin: string;

  /**
   * Reassembles the escrowed PIN outside custos (age CLI, secrets.js-grempe, base32), as
   * pin-escrow.test.ts does.
   */
  function reassemble(dir: string, who: Id[]): string {
    const record = bundleBody(join(dir, 'pin-escrow.bundle'));
    const seed = combineKek(
      ws,
      who.map((id) => plain(join(dir, `${id}.share`), byId[id])),
    );
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bits = [...seed].map((x) => x.toString(2).padStart(8, '0')).join('');
    let pin = '';
    for (let i = 0; i < bits.length; i += 5)
      pin += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
    pin = pin.slice(0, record.escrowOf.pinLength);
    ws.secrets.add(pin);
    return pin;
  }

  const logsIn = (t: TokenRef, pin: string) =>
    p11Raw(ws, { ...t, pin }, ['--list-objects']).status === 0;

  it("set-up: the primary's keys copied into a backup token whose PIN is then escrowed 3-of-5 (the old PIN stops working)", () => {
    const primary = profiles.add('pin-primary');
    profiles.add('escrowed');
    profiles.add('pin-target');
    profiles.add('bystander');
    makeKey(ws, primary, { kind: 'aes', label: 'dr-aes', id: '21' });
    makeKey(ws, primary, { kind: 'rsa', label: 'dr-rsa', id: '22' });
    makeKey(ws, primary, { kind: 'ec', label: 'dr-ec', id: '23' });
    const copied = json(host(['backup', '--hsm', 'pin-primary', '--to-hsm', 'escrowed', '--json']));
    expect(
      copied.keys.map((k: { label: string; status: string }) => `${k.label}:${k.status}`).sort(),
    ).toEqual(['dr-aes:restored', 'dr-ec:restored', 'dr-rsa:restored']);
    expectOk(
      host([
        'escrow-pin',
        '--hsm',
        'escrowed',
        '--policy',
        'policy.yaml',
        '--out',
        'escrow-escrowed',
      ]),
    );
    expect(logsIn(token('escrowed'), token('escrowed').pin)).toBe(false);
    escrowedPin = reassemble(join(hostDir, 'escrow-escrowed'), ['okafor', 'lind', 'drlead']);
    expect(logsIn(token('escrowed'), escrowedPin)).toBe(true);
    // the profile keeps the old PIN: whatever opens the token below is the ceremony's reassembled
    // PIN
    expect(profiles.pinSource.get('escrowed')).toBe('env:PIN_ESCROWED');
  });

  it('drill: three custodians submit from their machines; close with another token is E_PIN_SOURCE and leaves the ceremony open; close --hsm escrowed proves the PIN and changes nothing', () => {
    const c = openCeremony('pin-drill.ceremony', ['--pin-escrow', 'escrow-escrowed'], 'drill');
    expect(c.body.subject).toMatchObject({
      kind: 'pin-escrow',
      file: 'escrow-escrowed/pin-escrow.bundle',
      token: { label: 'escrowed' },
    });
    const inbox: string[] = [];
    for (const id of ['hale', 'okafor', 'ciso'] as const) {
      const s = submitFrom(byId[id], join(hostDir, 'pin-drill.ceremony'), {
        share: join(hostDir, 'escrow-escrowed', `${id}.share`),
      });
      expectOk(s.run);
      expect(s.run.stderr).toMatch(/backup: {4}the escrowed PIN of token "escrowed"/);
      inbox.push(receive(s.out, `${id}-pin-drill.submission`));
    }
    const added = json(host(['ceremony', 'add', 'pin-drill.ceremony', ...inbox, '--json']));
    expect(added.quorum).toEqual({ accepted: 3, needed: 3, missing: 0 });

    const objectsBefore = listObjects(ws, { ...token('escrowed'), pin: escrowedPin });
    expect(objectsBefore.length).toBe(5);
    const before = accepted(c.nonce);
    const wrong = host(['ceremony', 'close', 'pin-drill.ceremony', '--hsm', 'bystander']);
    expectUserError(
      wrong,
      3,
      /E_PIN_SOURCE/,
      /"bystander" is token "bystander" \(serial [0-9a-f]+\); the escrowed PIN is for "escrowed" \(serial [0-9a-f]+\)/,
    );
    expect(existsSync(join(ceremonyDir(c.nonce), 'host.key'))).toBe(true);
    expect(existsSync(join(ceremonyDir(c.nonce), 'closed.json'))).toBe(false);
    expect(accepted(c.nonce)).toEqual(before);
    expect(logsIn(token('bystander'), token('bystander').pin)).toBe(true);

    const r = expectOk(host(['ceremony', 'close', 'pin-drill.ceremony', '--hsm', 'escrowed']));
    expect(r.stdout).toMatch(
      /drill passed: the reassembled PIN opens token "escrowed" \(serial [0-9a-f]+\), which holds 3 keys; nothing was changed/,
    );
    expect(listObjects(ws, { ...token('escrowed'), pin: escrowedPin })).toEqual(objectsBefore);
    expect(logsIn(token('escrowed'), escrowedPin)).toBe(true);
    expect(existsSync(join(ceremonyDir(c.nonce), 'host.key'))).toBe(false);
  });

  it("restore: close --from-hsm escrowed --hsm pin-target copies every key out; check values equal the primary's, and signatures verify with its public keys", () => {
    const c = openCeremony('pin-restore.ceremony', ['--pin-escrow', 'escrow-escrowed'], 'restore');
    const inbox: string[] = [];
    for (const id of ['lind', 'drlead', 'ciso'] as const) {
      const s = submitFrom(byId[id], join(hostDir, 'pin-restore.ceremony'), {
        share: join(hostDir, 'escrow-escrowed', `${id}.share`),
      });
      expectOk(s.run);
      inbox.push(receive(s.out, `${id}-pin-restore.submission`));
    }
    expectOk(host(['ceremony', 'add', 'pin-restore.ceremony', ...inbox]));
    const missing = host(['ceremony', 'close', 'pin-restore.ceremony', '--hsm', 'pin-target']);
    expectUserError(missing, 2, /E_USAGE/, /closing this restore ceremony needs --from-hsm NAME/);
    expect(listObjects(ws, token('pin-target'))).toEqual([]);

    const out = json(
      host([
        'ceremony',
        'close',
        'pin-restore.ceremony',
        '--from-hsm',
        'escrowed',
        '--hsm',
        'pin-target',
        '--json',
      ]),
    );
    expect(out.outcome.kind).toBe('copy');
    expect([...out.custodians].sort()).toEqual(['ciso', 'drlead', 'lind']);
    const primary = checkValues('pin-primary');
    expect(primary).toHaveLength(5);
    expect(checkValues('pin-target')).toEqual(primary);
    proveSameKeys(token('pin-primary'), token('pin-target'), { aes: '21', rsa: '22', ec: '23' });
    expect(existsSync(join(ceremonyDir(c.nonce), 'host.key'))).toBe(false);
  });
});

// ---------------------------------------------------------------- expiry

describe('expiry: the 1-minute ceremony opened in beforeAll (custos has no clock hook; this waits for the minute to pass)', () => {
  it('once expired: share submit refuses (E_CEREMONY), a submission made in time is rejected as expired, status says so, close refuses', async () => {
    const wait = short.expires + 1_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const c = short.c;
    const s = submitFrom(byId.hale, join(hostDir, 'short.ceremony'));
    const line = expectUserError(s.run, 3, /E_CEREMONY\]/);
    expect(line).toContain(`ceremony ${c.nonce} expired at ${c.body.expires}`);
    expect(s.run.stderr).toMatch(/^custos: hint: an expired ceremony takes no shares/m);
    expect(existsSync(s.out)).toBe(false);

    addRejected(
      c,
      short.early,
      'expired',
      new RegExp(`the ceremony expired at ${c.body.expires.replace(/\./g, '\\.')}`),
    );
    expect(accepted(c.nonce)).toEqual({});

    const status = json(host(['ceremony', 'status', 'short.ceremony', '--json']));
    expect(status.expired).toBe(true);
    expect(expectOk(host(['ceremony', 'status', 'short.ceremony'])).stdout).toMatch(
      /the ceremony has EXPIRED/,
    );

    const before = snapshot(hostDir);
    const close = host(['ceremony', 'close', 'short.ceremony', '--hsm', 'dr']);
    expectUserError(close, 3, /E_CEREMONY\]/, new RegExp(`ceremony ${c.nonce} expired at`));
    expect(snapshot(hostDir)).toEqual(before);
  });
});

// ---------------------------------------------------------------- the audit log

describe('the audit log', () => {
  const log = () => join(hostDir, '.custos', 'audit.jsonl');

  it("audit verify passes on the host log; the chain and every ceremony entry's signature check out with node:crypto", () => {
    const r = expectOk(host(['audit', 'verify', '.custos/audit.jsonl']));
    expect(r.stdout).toMatch(
      /^audit log \.custos\/audit\.jsonl: \d+ entries, chain intact, \d+ signed entries verified$/m,
    );
    const lines = readFileSync(log(), 'utf8').split('\n').filter(Boolean);
    const keys = new Map<string, string>();
    for (const f of [
      'restore.ceremony',
      'drill.ceremony',
      'short.ceremony',
      'pin-drill.ceremony',
      'pin-restore.ceremony',
    ]) {
      const c = readCeremony(join(hostDir, f));
      keys.set(c.nonce, c.body.signingKey);
    }
    let prev = '0'.repeat(64);
    let signed = 0;
    for (const [i, line] of lines.entries()) {
      const e = JSON.parse(line);
      expect(e.seq).toBe(i + 1);
      expect(e.prev, `entry ${e.seq}`).toBe(prev);
      prev = createHash('sha256').update(line).digest('hex');
      // A try at a ceremony already closed finds no key to sign with (it was destroyed): recorded
      // unsigned.
      const afterClose =
        e.outcome !== 'ok' &&
        e.code === 'E_CEREMONY' &&
        /^ceremony [0-9a-f]{32} was closed at /.test(e.detail?.error ?? '');
      if (e.ceremony && e.op !== 'share-submit' && !afterClose) {
        expect(e.sig, `entry ${e.seq} (${e.op}) is signed`).toBeDefined();
        expect(e.sig.key).toBe(keys.get(e.ceremony));
        const unsigned = line.replace(/,"sig":\{"key":"[^"]*","value":"[^"]*"\}\}$/, '}');
        expect(unsigned).not.toBe(line);
        const key = ed25519PublicKey(e.sig.key);
        expect(
          nodeVerify(
            null,
            Buffer.from(`custos-audit/1 entry\n${unsigned}`),
            key,
            Buffer.from(e.sig.value, 'base64'),
          ),
          `entry ${e.seq}`,
        ).toBe(true);
        signed += 1;
      }
    }
    expect(signed).toBeGreaterThan(20);
    expect(r.stdout).toContain(`${signed} signed entries verified`);
    expect(r.stdout).toContain(`head: ${prev}`);
    // and it can fail: one changed byte in a signed entry
    const copy = join(hostDir, 'audit-edited.jsonl');
    writeFileSync(
      copy,
      readFileSync(log(), 'utf8').replace(
        '"op":"submission-accepted"',
        '"op":"submission-acceptee"',
      ),
    );
    const bad = host(['audit', 'verify', 'audit-edited.jsonl']);
    expect(bad.status, describeRun(bad)).toBe(4);
    expect(bad.stderr).toMatch(/E_AUDIT_TAMPERED/);
  });

  it('audit show --ceremony lists the restore ceremony: open, each verdict with its reason, and the close', () => {
    const c = readCeremony(join(hostDir, 'restore.ceremony'));
    const entries = json<any[]>(
      host(['audit', 'show', '.custos/audit.jsonl', '--ceremony', c.nonce, '--json']),
    );
    expect(entries.every((e) => e.ceremony === c.nonce)).toBe(true);
    const hostOps = entries.filter((e) => e.op !== 'share-submit');
    expect(hostOps[0]).toMatchObject({
      op: 'ceremony-open',
      outcome: 'ok',
      detail: { purpose: 'restore', threshold: 3, total: 5 },
    });
    // refused closes are recorded too (a wrong --subject before, a second close after); one
    // succeeded
    expect(hostOps.filter((e) => e.op === 'ceremony-close' && e.outcome === 'ok')).toHaveLength(1);
    expect(hostOps.find((e) => e.op === 'ceremony-close' && e.outcome === 'ok')).toMatchObject({
      op: 'ceremony-close',
      outcome: 'ok',
      detail: { purpose: 'restore', quorum: ['ciso', 'hale', 'lind'], restored: 4, token: 'dr' },
    });
    expect(
      hostOps.filter((e) => e.op === 'submission-accepted').map((e) => e.detail.custodian),
    ).toEqual(['hale', 'lind', 'ciso']);
    expect(
      hostOps.filter((e) => e.op === 'submission-rejected').map((e) => e.detail.reason),
    ).toEqual([
      'wrong-ceremony',
      'foreign-bundle',
      'bad-signature',
      'unopened',
      'edited',
      'edited',
      'ceremony-changed',
      'wrong-ceremony',
      'duplicate',
      'duplicate',
      'malformed',
      'malformed',
    ]);
    const table = expectOk(host(['audit', 'show', '.custos/audit.jsonl', '--ceremony', c.nonce]));
    expect(table.stdout).toMatch(/submission-rejected/);
  });

  it("no share value, KEK, identity, passphrase, host key or PIN is in any audit log, on the host or the custodians' machines", () => {
    const logs = [
      log(),
      ...readdirSync(join(ws.dir, 'machines'))
        .map((m) => join(ws.dir, 'machines', m, '.custos', 'audit.jsonl'))
        .filter((p) => existsSync(p)),
    ];
    expect(logs.length).toBeGreaterThan(10);
    const needles = [...new Set([...ws.secrets, ...hostSecrets, PASSPHRASE])].filter(
      (s) => s.length >= 8,
    );
    expect(needles.length).toBeGreaterThan(30);
    const scan = (files: string[]) =>
      files.flatMap((f) => {
        const text = readFileSync(f, 'utf8').toLowerCase();
        return needles
          .filter((n) => text.includes(n.toLowerCase()))
          .map((n) => `${relative(ws.dir, f)} holds ${n.slice(0, 6)}…`);
      });
    expect(scan(logs)).toEqual([]);
    // the scan can fail
    const planted = join(ws.dir, 'planted.jsonl');
    writeFileSync(planted, `{"x":"${PASSPHRASE}"}\n`);
    expect(scan([planted])).toHaveLength(1);
    // the custodians' logs hold their submissions' digests, not the files
    const sub = readFileSync(join(hostDir, 'inbox', 'lind.submission'));
    const digest = createHash('sha256').update(sub).digest('hex');
    expect(logs.some((f) => readFileSync(f, 'utf8').includes(digest))).toBe(true);
  });

  it('no PIN, identity, passphrase, share value, KEK or host key appears in any custos output', () => {
    expectNoSecrets(ws, [...hostSecrets, PASSPHRASE]);
  });
});
