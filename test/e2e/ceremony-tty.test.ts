/**
 * `custos ceremony run`, the interactive ceremony, driven in a real terminal (tmux, fixed size)
 * against real SoftHSM2 tokens. A: a 3-of-5 restore where one custodian brings the wrong identity
 * and one a share of another backup (both turned away and named), three give good shares (one
 * pastes the identity at the hidden prompt, which never shows it), the quorum confirms and the
 * keys are restored, proved with pkcs11-tool and OpenSSL. B: Ctrl-C after one share (exit 130,
 * resume hint), status shows it kept, a second run no longer offers that custodian, "No" at the
 * confirm writes nothing, and `ceremony close` finishes it. C: without a terminal it refuses
 * with E_NO_TTY and names the step commands.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decrypter, Encrypter } from 'age-encryption';
import {
  BIN, TIMEOUT, aesKcv, bundleBody, cleanup, combineKek, custos, describeRun, expectNoSecrets, expectOk, expectUserError, initToken, json,
  listObjects, makeCustodians, makeStandardKeys, openShare, p11, profileFor, publicKeyPem, snapshot, writeConfig, writePolicy,
  type Custodian, type Profile, type Run, type TokenRef, type Workspace, workspace,
} from './helpers.js';
import { SLOW, Tmux } from './tmux.js';

vi.setConfig({ testTimeout: 4 * TIMEOUT, hookTimeout: TIMEOUT });

const IDS = ['hale', 'okafor', 'lind', 'drlead', 'ciso'] as const;
type Id = (typeof IDS)[number];
const WHO = 'Who is giving their share now?';

let ws: Workspace;
let tmux: Tmux;
let byId: Record<Id, Custodian>;
let source: TokenRef;
let targetA: TokenRef;
let targetB: TokenRef;
const profiles: Profile[] = [];

beforeAll(() => {
  ws = workspace('ceremony-tty');
  tmux = new Tmux(ws.dir);
  const list = makeCustodians(ws, [...IDS]);
  byId = Object.fromEntries(list.map((c) => [c.id, c])) as Record<Id, Custodian>;
  writePolicy(ws, 'policy.yaml', 3, list);
  source = initToken(ws, 'vault');
  targetA = initToken(ws, 'dr-a');
  targetB = initToken(ws, 'dr-b');
  makeStandardKeys(ws, source);
  profileFor(ws, profiles, source, 'vault');
  profileFor(ws, profiles, targetA, 'dra');
  profileFor(ws, profiles, targetB, 'drb');
  writeConfig(ws, profiles);
  expectOk(custos(ws, ['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'vault.bundle']));
  expectOk(custos(ws, ['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'foreign.bundle']));
  // register every share value and the KEK as secrets, opened outside custos (age CLI)
  const texts = IDS.map((id) => openShare(ws, join(ws.dir, 'vault.bundle.shares', `${id}.share`), byId[id].identity));
  for (const id of IDS) openShare(ws, join(ws.dir, 'foreign.bundle.shares', `${id}.share`), byId[id].identity);
  expect(aesKcv(combineKek(ws, texts.slice(0, 3))).length).toBe(6);
});

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

/** Starts `custos ceremony run` in the terminal, with the workspace's environment and cwd. */
function runInTerminal(args: string[]): void {
  tmux.start({
    cwd: ws.dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, LANG: 'C.UTF-8', NO_COLOR: '1', TERM: 'xterm-256color', SOFTHSM2_CONF: ws.conf, ...ws.env },
    argv: [BIN, 'ceremony', 'run', ...args],
  });
}

/** The pane, recorded as a run so the final scan covers what the terminal showed. */
function recordPane(args: string[], status: number): string {
  const screen = tmux.screen();
  ws.runs.push({ args: ['ceremony', 'run', ...args, '(terminal)'], status, stdout: screen, stderr: '' });
  return screen;
}

function openCeremony(out: string): { nonce: string; body: any } {
  const r = json(custos(ws, ['ceremony', 'open', '--bundle', 'vault.bundle', '--purpose', 'restore', '--out', out, '--json']));
  const text = readFileSync(join(ws.dir, '.custos', 'ceremonies', r.ceremony.nonce, 'host.key'), 'utf8');
  for (const l of text.split('\n')) if (/^(AGE-SECRET-KEY-1|ed25519-pkcs8: )/.test(l)) ws.secrets.add(l.replace(/^ed25519-pkcs8: /, ''));
  return { nonce: r.ceremony.nonce, body: r.ceremony };
}

/** One custodian at the terminal: who, how the identity comes, the identity, the share (default if undefined). */
async function giveShare(id: Id, identity: { file: string } | { paste: string }, share?: string): Promise<string[]> {
  const offered = await tmux.select(WHO, `${id} — `);
  if ('file' in identity) {
    await tmux.select(`${id}: how will you give your age identity?`, 'The path of my identity file');
    await tmux.answer(`${id}: path of your identity file`, identity.file);
  } else {
    await tmux.select(`${id}: how will you give your age identity?`, 'Paste the key');
    await tmux.waitFor(new RegExp(`^\\? ${id}: paste your identity, then Enter:`, 'm'));
    tmux.paste(identity.paste);
    // pasted, not yet entered: nothing of it shows
    await new Promise((r) => setTimeout(r, 300));
    expect(tmux.screen()).not.toContain(identity.paste.slice(16, 40));
    tmux.keys('Enter');
    await tmux.waitFor(new RegExp(`^✔ ${id}: paste your identity, then Enter:`, 'm'));
  }
  const prompt = await tmux.waitFor(new RegExp(`^\\? ${id}: path of your share file`, 'm'));
  if (share === undefined) {
    // the default offered is the share next to the bundle
    expect(prompt).toContain(`? ${id}: path of your share file (vault.bundle.shares/${id}.share)`);
  }
  await tmux.answer(`${id}: path of your share file`, share ?? '');
  return offered;
}

type Row = { label: string; id: string; class: string; keyType: string; checkValue: { method: string; value: string } };

function checkValues(hsm: string): string[] {
  return json<{ rows: Row[] }>(custos(ws, ['inventory', '--hsm', hsm, '--json'])).rows
    .map((r) => `${r.class}/${r.label}/${r.id}=${r.keyType}:${r.checkValue.method}:${r.checkValue.value}`).sort();
}

/** Outside oracles: AES and HMAC outputs equal on both tokens; an RSA signature made on `target` verifies with the source's public key. */
function proveRestored(target: TokenRef): void {
  const dir = mkdtempSync(join(ws.dir, 'oracle-'));
  const data = join(dir, 'data.bin');
  writeFileSync(data, `restored? ${randomBytes(8).toString('hex')}\n`);
  writeFileSync(join(dir, 'zero.bin'), Buffer.alloc(16));
  const out = (t: TokenRef, args: string[], name: string) => {
    const file = join(dir, `${t.label}-${name}`);
    p11(ws, t, [...args, '-o', file]);
    return readFileSync(file);
  };
  const aes = (t: TokenRef) => out(t, ['--encrypt', '-m', 'AES-CBC', '--iv', '00'.repeat(16), '--id', '01', '-i', join(dir, 'zero.bin')], 'aes');
  const mac = (t: TokenRef) => out(t, ['--sign', '-m', 'SHA256-HMAC', '--id', '02', '-i', data], 'mac');
  expect(aes(target).equals(aes(source))).toBe(true);
  expect(mac(target).equals(mac(source))).toBe(true);
  const sig = join(dir, 'rsa.sig');
  p11(ws, target, ['--sign', '-m', 'SHA256-RSA-PKCS', '--id', '03', '-i', data, '-o', sig]);
  const pem = publicKeyPem(ws, source, '03', join(dir, 'rsa.pem'));
  const verify = (file: string) => spawnSync('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', sig, file], { encoding: 'utf8' });
  const ok = verify(data);
  expect(ok.status, ok.stderr).toBe(0);
  expect(ok.stdout).toMatch(/Verified OK/);
  writeFileSync(join(dir, 'other.bin'), 'other\n');
  expect(verify(join(dir, 'other.bin')).status).not.toBe(0);
}

const sourceValues = () => checkValues('vault').filter((v) => !v.includes('/bound-key/'));

describe('A: a 3-of-5 restore at one terminal', () => {
  let nonce: string;
  const args = ['a.ceremony', '--hsm', 'dra'];

  it('a wrong identity and a share of another backup are turned away and named; three good shares (one pasted, never shown) reach the quorum; "yes" restores', async () => {
    ({ nonce } = openCeremony('a.ceremony'));
    const foreignId = bundleBody(join(ws.dir, 'foreign.bundle')).bundleId;
    const bundleId = bundleBody(join(ws.dir, 'vault.bundle')).bundleId;
    runInTerminal(args);
    const first = await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    expect(first).toMatch(/^custos quorum ceremony$/m);
    expect(first).toContain(`ceremony:  ${nonce}`);
    expect(first).toMatch(/^quorum: 0 of 3 accepted \(3 more needed\)$/m);

    // okafor brings hale's identity file
    const offered = await giveShare('okafor', { file: byId.hale.identity });
    expect(offered).toEqual([...IDS.map((id) => `${id} — Custodian ${id.toUpperCase()}`), 'Nobody for now: stop here and resume later']);
    let screen = await tmux.waitFor(/^✘ not accepted: none of the identities given opens it/m);
    expect(screen).toMatch(/^ {2}what to do: use the identity file that goes with this share/m);
    screen = await tmux.waitFor(/│ okafor +│ Custodian OKAFOR +│ 2 +│ rejected │ none of the identities given opens it/);

    // drlead brings a share of another backup
    const again = await giveShare('drlead', { file: byId.drlead.identity }, 'foreign.bundle.shares/drlead.share');
    expect(again).toContain('okafor — Custodian OKAFOR (try again)');
    screen = await tmux.waitFor(new RegExp(`^✘ not accepted: belongs to another backup \\(bundle ${foreignId}, not ${bundleId}\\)`, 'm'));
    expect(screen).toMatch(/^ {2}what to do: this share belongs to another backup/m);
    await tmux.waitFor(/│ drlead +│ Custodian DRLEAD +│ 4 +│ rejected │ belongs to another backup/);

    // three good custodians; lind pastes the key at the hidden prompt
    await giveShare('hale', { file: byId.hale.identity });
    await tmux.waitFor(/^✔ hale's share is accepted \(1 of 3\)\.$/m);
    await giveShare('lind', { paste: byId.lind.secret });
    await tmux.waitFor(/^✔ lind's share is accepted \(2 of 3\)\.$/m);
    await giveShare('ciso', { file: byId.ciso.identity });
    await tmux.waitFor(/^✔ ciso's share is accepted \(3 of 3\)\.$/m);
    screen = await tmux.waitFor(/^Quorum reached: 3 of 5 custodians\.$/m);
    expect(screen).toMatch(/^\? Restore all 4 keys into "dra" now\? \(y\/N\)/m);
    expect(listObjects(ws, targetA)).toEqual([]);
    await tmux.answer('Restore all 4 keys into "dra" now?', 'y');
    screen = await tmux.waitFor(/^ceremony [0-9a-f]{32} closed \(quorum: ciso, hale, lind\)/m, { timeout: SLOW });
    expect(screen).toMatch(/^token "dr-a": 4 keys restored, 0 already present/m);
    expect(screen).toMatch(new RegExp(`^every key matches bundle ${bundleId}; quorum: `, 'm'));
    expect(await tmux.exitStatus()).toBe(0);
    screen = recordPane(args, 0);
    // the pasted key never showed, in any form
    expect(screen).not.toContain(byId.lind.secret);
    expect(screen.toLowerCase()).not.toContain(byId.lind.secret.slice(16, 48).toLowerCase());
  });

  it('the target token holds the source\'s keys: same check values, and the outside oracles agree', () => {
    expect(checkValues('dra')).toEqual(sourceValues());
    proveRestored(targetA);
  });

  it('the ceremony is closed: host key and sealed shares gone; status and the audit log tell the story, with both rejections named', () => {
    const dir = join(ws.dir, '.custos', 'ceremonies', nonce);
    expect(existsSync(join(dir, 'host.key'))).toBe(false);
    expect(existsSync(join(dir, 'accepted'))).toBe(false);
    expect(existsSync(join(dir, 'closed.json'))).toBe(true);
    const s = json(custos(ws, ['ceremony', 'status', 'a.ceremony', '--json']));
    expect(s.closed).toMatchObject({ outcome: 'restore completed' });
    const entries = json<any[]>(custos(ws, ['audit', 'show', '.custos/audit.jsonl', '--ceremony', nonce, '--json']));
    expect(entries.map((e) => e.op === 'submission-rejected' ? `rejected:${e.detail.custodian}:${e.detail.reason}` : e.op === 'submission-accepted' ? `accepted:${e.detail.custodian}` : e.op)).toEqual([
      'ceremony-open', 'rejected:okafor:unopened', 'rejected:drlead:foreign-bundle', 'accepted:hale', 'accepted:lind', 'accepted:ciso', 'ceremony-close',
    ]);
    expect(entries.every((e) => e.sig)).toBe(true);
    expectOk(custos(ws, ['audit', 'verify', '.custos/audit.jsonl']));
  });
});

describe('B: an interrupted ceremony, resumed', () => {
  let nonce: string;
  const args = ['b.ceremony', '--hsm', 'drb'];
  const dir = () => join(ws.dir, '.custos', 'ceremonies', nonce);

  it('one share accepted, then Ctrl-C at the next prompt: exit 130 with the count and the resume hint', async () => {
    ({ nonce } = openCeremony('b.ceremony'));
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('hale', { file: byId.hale.identity });
    await tmux.waitFor(/^✔ hale's share is accepted \(1 of 3\)\.$/m);
    await tmux.waitFor(/^\? Who is giving their share now\?\n❯ okafor/m);
    tmux.keys('C-c');
    const screen = await tmux.waitFor(/^EXIT=\d+$/m);
    expect(await tmux.exitStatus()).toBe(130);
    expect(screen).toMatch(/^custos: error: ceremony interrupted with 1 of 3 shares accepted; they are kept, sealed to the ceremony key \[E_CANCELLED\]$/m);
    expect(screen).toMatch(/^custos: hint: resume with: custos ceremony run b\.ceremony$/m);
    expect(screen).not.toMatch(/^\s+at\s|node:internal|ExitPromptError/m);
    recordPane(args, 130);
  });

  it('ceremony status --json shows the one accepted share, kept sealed on the host', () => {
    const s = json(custos(ws, ['ceremony', 'status', 'b.ceremony', '--json']));
    expect(s.accepted).toBe(1);
    expect(s.closed).toBeNull();
    expect(Object.fromEntries(s.custodians.map((x: { id: string; state: string }) => [x.id, x.state]))).toEqual({ hale: 'accepted', okafor: 'waiting', lind: 'waiting', drlead: 'waiting', ciso: 'waiting' });
    expect(readdirSync(join(dir(), 'accepted'))).toEqual(['hale.submission']);
    expect(readFileSync(join(dir(), 'accepted', 'hale.submission'), 'utf8')).toMatch(/^custos-submission\/1\n/);
  });

  it('run again: hale is no longer offered; two more shares reach the quorum; "No" at the confirm writes nothing to the target', async () => {
    runInTerminal(args);
    const first = await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    expect(first).toMatch(/^quorum: 1 of 3 accepted \(2 more needed\)$/m);
    const offered = await giveShare('okafor', { file: byId.okafor.identity });
    expect(offered).toEqual(['okafor — Custodian OKAFOR', 'lind — Custodian LIND', 'drlead — Custodian DRLEAD', 'ciso — Custodian CISO', 'Nobody for now: stop here and resume later']);
    await tmux.waitFor(/^✔ okafor's share is accepted \(2 of 3\)\.$/m);
    await giveShare('ciso', { file: byId.ciso.identity });
    await tmux.waitFor(/^✔ ciso's share is accepted \(3 of 3\)\.$/m);
    await tmux.waitFor(/^\? Restore all 4 keys into "drb" now\? \(y\/N\)/m);
    const before = snapshot(ws.dir);
    await tmux.answer('Restore all 4 keys into "drb" now?', 'n');
    const screen = await tmux.waitFor(/^nothing done yet; the quorum is kept\. Close later with: custos ceremony close b\.ceremony --hsm TARGET$/m);
    expect(screen).toMatch(/^✔ Restore all 4 keys into "drb" now\? No$/m);
    expect(await tmux.exitStatus()).toBe(0);
    recordPane(args, 0);
    expect(listObjects(ws, targetB)).toEqual([]);
    const after = snapshot(ws.dir);
    // nothing changed but the audit log (the tokens' object files included)
    expect(Object.keys(after).filter((k) => after[k] !== before[k]).filter((k) => k !== '.custos/audit.jsonl')).toEqual([]);
    expect(existsSync(join(dir(), 'host.key'))).toBe(true);
    expect(readdirSync(join(dir(), 'accepted')).sort()).toEqual(['ciso.submission', 'hale.submission', 'okafor.submission']);
  });

  it('ceremony close, without a terminal, completes it: the target holds the source\'s keys', () => {
    const r = expectOk(custos(ws, ['ceremony', 'close', 'b.ceremony', '--hsm', 'drb']));
    expect(r.stdout).toMatch(new RegExp(`^ceremony ${nonce} closed \\(quorum: ciso, hale, okafor\\)`, 'm'));
    expect(checkValues('drb')).toEqual(sourceValues());
    proveRestored(targetB);
    expect(existsSync(join(dir(), 'host.key'))).toBe(false);
  });
});

describe('D: passphrase-protected identity files at the terminal', () => {
  const args = ['d.ceremony', '--hsm', 'drb'];
  const passphrase = `pass-${randomBytes(6).toString('hex')}`;
  const protectedFile = (id: Id) => join(ws.dir, 'custodians', `${id}.age`);

  /** Answers the identity-file path and the passphrase prompt that follows (the passphrase pasted, never shown). */
  async function identityWithPassphrase(id: Id, pass: string | null): Promise<void> {
    await tmux.select(WHO, `${id} — `);
    await tmux.select(`${id}: how will you give your age identity?`, 'The path of my identity file');
    await tmux.answer(`${id}: path of your identity file`, protectedFile(id));
    await tmux.waitFor(new RegExp(`^\\? passphrase of identity file ${protectedFile(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`, 'm'), { timeout: SLOW });
    if (pass === null) return;
    tmux.paste(pass);
    tmux.keys('Enter');
  }

  it('files made like `age -p` (scrypt recipient; checked by the age library with the passphrase)', async () => {
    ws.secrets.add(passphrase);
    for (const id of ['lind', 'okafor'] as const) {
      const e = new Encrypter();
      e.setPassphrase(passphrase);
      // a lighter scrypt than age's default (2^18) keeps this file quick; ceremony-remote.test.ts uses the default
      e.setScryptWorkFactor(15);
      writeFileSync(protectedFile(id), await e.encrypt(readFileSync(byId[id].identity)), { mode: 0o600 });
      const d = new Decrypter();
      d.addPassphrase(passphrase);
      expect(await d.decrypt(readFileSync(protectedFile(id)), 'text')).toBe(readFileSync(byId[id].identity, 'utf8'));
    }
  });

  it('a wrong passphrase is turned away, the right one accepted, neither shown; Ctrl-C at a later passphrase prompt is an interruption like at any other prompt', async () => {
    openCeremony('d.ceremony');
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('hale', { file: byId.hale.identity });
    await tmux.waitFor(/^✔ hale's share is accepted \(1 of 3\)\.$/m);

    await identityWithPassphrase('lind', `${passphrase}-wrong`);
    await tmux.waitFor(/^✘ not accepted: the passphrase does not open identity file .*lind\.age/m, { timeout: SLOW });
    await identityWithPassphrase('lind', passphrase);
    await tmux.answer('lind: path of your share file', '', { timeout: SLOW });
    await tmux.waitFor(/^✔ lind's share is accepted \(2 of 3\)\.$/m, { timeout: SLOW });

    await identityWithPassphrase('okafor', null);
    tmux.keys('C-c');
    expect(await tmux.exitStatus()).toBe(130);
    const screen = recordPane(args, 130);
    expect(screen).not.toContain(passphrase);
    expect(screen).not.toMatch(/^\s+at\s|node:internal|ExitPromptError/m);
    expect(json(custos(ws, ['ceremony', 'status', 'd.ceremony', '--json'])).accepted).toBe(2);
    // the same words as Ctrl-C at any other prompt of the ceremony: the shares are kept, and how to resume
    expect(screen).toMatch(/^custos: hint: resume with: custos ceremony run d\.ceremony$/m);
    expect(screen).toMatch(/^custos: error: ceremony interrupted with 2 of 3 shares accepted; they are kept, sealed to the ceremony key \[E_CANCELLED\]$/m);
    expect(screen).not.toMatch(/nothing was changed/);
  });
});

describe('C: without a terminal', () => {
  it('ceremony run refuses with E_NO_TTY (exit 8), names the step commands, and writes nothing', () => {
    openCeremony('c.ceremony');
    const before = snapshot(ws.dir);
    const r: Run = custos(ws, ['ceremony', 'run', 'c.ceremony', '--hsm', 'dra']);
    const line = expectUserError(r, 8, /E_NO_TTY/);
    expect(line).toMatch(/custos ceremony run needs a terminal to ask, and there is none/);
    const hint = r.stderr.split('\n').find((l) => l.startsWith('custos: hint: '));
    expect(hint, describeRun(r)).toBeDefined();
    expect(hint).toMatch(/custos share submit/);
    expect(hint).toMatch(/custos ceremony add CEREMONY SUBMISSION/);
    expect(hint).toMatch(/custos ceremony close CEREMONY/);
    expect(snapshot(ws.dir)).toEqual(before);
  });
});

describe('secrets', () => {
  it('no PIN, identity, share value, KEK or host key appears in any output or on the terminal, nor in the audit log', () => {
    expectNoSecrets(ws);
    const log = readFileSync(join(ws.dir, '.custos', 'audit.jsonl'), 'utf8').toLowerCase();
    const found = [...ws.secrets].filter((s) => s.length >= 8 && log.includes(s.toLowerCase()));
    expect(found.map((s) => s.slice(0, 6))).toEqual([]);
    expect(log).toContain('"op":"ceremony-close"');
  });
});
