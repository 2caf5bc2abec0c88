/**
 * `custos ceremony run`, the interactive ceremony, and `share submit` and `ceremony cancel`, driven
 * in a real terminal of 80×24 (tmux) against real SoftHSM2 tokens, making the mistakes people make.
 * After every scenario no line the terminal showed was wider than 80 columns.
 *
 * A: a 3-of-5 restore: an arrow-key slip (someone picks another's name and gives their own share:
 * "take it as hale's?"), someone bringing a share already accepted, an empty path, a directory, a
 * missing file, Esc back to the way of giving the identity, a pasted identity never shown, a share
 * of another backup (only the share is asked again), a wrong identity (only the identity is asked
 * again, the same share retried), a wrong PIN typed for the target before the last question (asked
 * again); then "yes" restores, proved with pkcs11-tool and OpenSSL; the audit log blames nobody who
 * did not give their own share. B: Ctrl-C after one share (exit 130, the resume command), a target
 * token name that does not exist (named again), "No" at the question, then a close with a wrong PIN
 * in its variable says the shares are kept and the exact command, and the right one finishes. D: a
 * wrong passphrase is asked again, never ticked. E: share submit: the digest on one line in groups
 * of four, confirmed by typing its first 8 characters. F: a failure after "yes" (a conflicting
 * key on the target) keeps the shares and gives the command; cancel asks before destroying them.
 * C: without a terminal run refuses with E_NO_TTY and names the step commands.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Decrypter, Encrypter } from 'age-encryption';
import {
  BIN,
  MODULE,
  TIMEOUT,
  aesCbcArgs,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  json,
  listObjects,
  makeKey,
  openShare,
  profileFor,
  publicKeyPem,
  snapshot,
  terminalEnv,
  writeConfig,
  checkValueLines,
  opensslVerify,
  p11Output,
  signRsa,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { backUp, sourceAndTarget } from './scenarios.js';
import { SLOW, Tmux } from './tmux.js';

vi.setConfig({ testTimeout: 4 * TIMEOUT, hookTimeout: TIMEOUT });

const IDS = ['hale', 'okafor', 'lind', 'drlead', 'ciso'] as const;
type Id = (typeof IDS)[number];
const WHO = 'Who is giving their share now?';
const HOW = (id: Id) => `${id}: how will you give your age identity?`;
const IDENTITY = (id: Id) => `${id}: path of your identity file (Esc: back)`;
const SHARE = (id: Id) => `${id}: path of your share file (Esc: back)`;

let ws: Workspace;
let tmux: Tmux;
let byId: Record<Id, Custodian>;
let source: TokenRef;
let targetA: TokenRef;
let targetB: TokenRef;
let targetC: TokenRef;

beforeAll(() => {
  let list: Custodian[];
  let profiles: Profile[];
  ({
    ws,
    source,
    target: targetA,
    custodians: list,
    profiles,
  } = sourceAndTarget({
    workspace: 'ceremony-tty',
    source: 'vault',
    target: { label: 'dr-a', profile: 'dra' },
    custodians: [...IDS],
    threshold: 3,
  }));
  tmux = new Tmux(ws.dir, { width: 80, height: 24 });
  byId = Object.fromEntries(list.map((c) => [c.id, c])) as Record<Id, Custodian>;
  targetB = initToken(ws, 'dr-b');
  targetC = initToken(ws, 'dr-c');
  // dr-c already holds a key under the label and id of one of the bundle's, but another key
  makeKey(ws, targetC, { kind: 'aes', label: 'aes-key', id: '01' });
  profileFor(ws, profiles, targetB, 'drb');
  profileFor(ws, profiles, targetC, 'drc');
  writeConfig(ws, profiles);
  // the same dr-a, with its PIN typed at the terminal
  appendFileSync(
    join(ws.dir, 'custos.yaml'),
    `  typed:\n    module: ${MODULE}\n    token: dr-a\n    pin: prompt\n`,
  );
  backUp(ws, 'vault', 'vault.bundle');
  backUp(ws, 'vault', 'foreign.bundle');
  // register every share value and the KEK as secrets, opened outside custos (age CLI)
  const texts = IDS.map((id) =>
    openShare(ws, join(ws.dir, 'vault.bundle.shares', `${id}.share`), byId[id].identity),
  );
  for (const id of IDS)
    openShare(ws, join(ws.dir, 'foreign.bundle.shares', `${id}.share`), byId[id].identity);
  expect(aesKcv(combineKek(ws, texts.slice(0, 3))).length).toBe(6);
});

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

/** Starts custos in the terminal, with the workspace's environment and cwd. */
function runInTerminal(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): void {
  tmux.start({
    cwd: opts.cwd ?? ws.dir,
    env: { ...terminalEnv(ws), ...(opts.env ?? {}) },
    argv: [BIN, ...args],
  });
}

/**
 * The pane, recorded as a run so the final scan covers what the terminal showed; and no line of it
 * was wider than the terminal.
 */
function recordPane(args: string[], status: number): string {
  const screen = tmux.screen();
  ws.runs.push({ args: [...args, '(terminal)'], status, stdout: screen, stderr: '' });
  expect(tmux.wideLines(), `lines wider than 80 columns in:\n${screen}`).toEqual([]);
  return screen;
}

/** The custos: lines of the pane with their continuations joined, as one line each. */
function diagnostics(screen: string): string[] {
  const out: string[] = [];
  for (const line of screen.split('\n')) {
    // a line continued is indented further than any first line (details start three blanks in)
    if (/^custos: {5,}\S/.test(line) && out.length > 0)
      out[out.length - 1] += ` ${line.replace(/^custos: +/, '')}`;
    else if (line.startsWith('custos: ')) out.push(line);
  }
  return out;
}

function openCeremony(out: string): { nonce: string; digest: string; body: any } {
  const r = json(
    custos(ws, [
      'ceremony',
      'open',
      '--bundle',
      'vault.bundle',
      '--purpose',
      'restore',
      '--out',
      out,
      '--json',
    ]),
  );
  const text = readFileSync(
    join(ws.dir, '.custos', 'ceremonies', r.ceremony.nonce, 'host.key'),
    'utf8',
  );
  for (const l of text.split('\n'))
    if (/^(AGE-SECRET-KEY-1|ed25519-pkcs8: )/.test(l))
      ws.secrets.add(l.replace(/^ed25519-pkcs8: /, ''));
  return { nonce: r.ceremony.nonce, digest: r.digest, body: r.ceremony };
}

const share = (id: Id, bundle = 'vault.bundle') => `${bundle}.shares/${id}.share`;

/** One custodian at the terminal, without mistakes: who, the identity file, the share file. */
async function giveShare(who: Id, identity: string, sharePath: string): Promise<string[]> {
  const offered = await tmux.select(WHO, `${who} — `);
  await tmux.select(HOW(who), 'The path of my identity file');
  await tmux.answer(IDENTITY(who), identity);
  await tmux.answer(SHARE(who), sharePath);
  return offered;
}

/**
 * The refusal and what to do are on the screen the person sees now (not scrolled away), right above
 * the next question.
 */
async function refusalShown(message: RegExp, todo: RegExp): Promise<void> {
  await tmux.waitFor(/^\? What now\?/m);
  // lines continued under their text read as one
  const now = tmux.visible().replace(/\n {4,}/g, ' ');
  expect(now).toMatch(message);
  expect(now).toMatch(todo);
}

const checkValues = (hsm: string) =>
  checkValueLines(custos(ws, ['inventory', '--hsm', hsm, '--json']));

/**
 * Outside oracles: AES and HMAC outputs equal on both tokens; an RSA signature made on `target`
 * verifies with the source's public key.
 */
function proveRestored(target: TokenRef): void {
  const dir = mkdtempSync(join(ws.dir, 'oracle-'));
  const data = join(dir, 'data.bin');
  writeFileSync(data, `restored? ${randomBytes(8).toString('hex')}\n`);
  writeFileSync(join(dir, 'zero.bin'), Buffer.alloc(16));
  const out = (t: TokenRef, args: string[], name: string) =>
    p11Output(ws, t, args, join(dir, `${t.label}-${name}`));
  const aes = (t: TokenRef) => out(t, aesCbcArgs('01', join(dir, 'zero.bin')), 'aes');
  const mac = (t: TokenRef) =>
    out(t, ['--sign', '-m', 'SHA256-HMAC', '--id', '02', '-i', data], 'mac');
  expect(aes(target).equals(aes(source))).toBe(true);
  expect(mac(target).equals(mac(source))).toBe(true);
  const sig = join(dir, 'rsa.sig');
  signRsa(ws, target, '03', data, sig);
  const pem = publicKeyPem(ws, source, '03', join(dir, 'rsa.pem'));
  const verify = (file: string) => opensslVerify(pem, sig, file);
  const ok = verify(data);
  expect(ok.status, ok.stderr).toBe(0);
  expect(ok.stdout).toMatch(/Verified OK/);
  writeFileSync(join(dir, 'other.bin'), 'other\n');
  expect(verify(join(dir, 'other.bin')).status).not.toBe(0);
}

const sourceValues = () => checkValues('vault').filter((v) => !v.includes('/bound-key/'));

/**
 * The submission-verdict entries of a ceremony in the audit log, as `accepted:<custodian>` or
 * `rejected:<custodian or nobody>:<reason>`.
 */
function verdicts(nonce: string): string[] {
  return json<any[]>(
    custos(ws, ['audit', 'show', '.custos/audit.jsonl', '--ceremony', nonce, '--json']),
  )
    .filter((e) => e.op.startsWith('submission-'))
    .map((e) =>
      e.op === 'submission-accepted'
        ? `accepted:${e.detail.custodian}`
        : `rejected:${e.detail.custodian ?? 'nobody'}:${e.detail.reason}`,
    );
}

describe('A: a 3-of-5 restore at 80×24, with the mistakes people make', () => {
  let nonce: string;
  const args = ['ceremony', 'run', 'a.ceremony', '--hsm', 'typed'];

  it('each mistake asks again for the one answer that was wrong, says why and what to do where it cannot scroll away; the target is logged into before the question; "yes" restores', async () => {
    const opened = openCeremony('a.ceremony');
    nonce = opened.nonce;
    const foreignId = bundleBody(join(ws.dir, 'foreign.bundle')).bundleId;
    const bundleId = bundleBody(join(ws.dir, 'vault.bundle')).bundleId;
    runInTerminal(args);
    const first = await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    expect(first).toMatch(/^custos quorum ceremony$/m);
    expect(first).toContain(`ceremony:  ${nonce}`);
    // the digest custodians compare by phone: alone on its line, in groups of four
    expect(first).toMatch(new RegExp(`^${opened.digest.match(/.{4}/g)?.join(' ')}$`, 'm'));
    expect(first).toMatch(/^quorum: {4}3 of the 5 custodians must give their share$/m);
    expect(first).toMatch(/^quorum: 0 of 3 shares accepted \(3 more needed\)$/m);
    // the host's own copies of the shares are pointed out, and never offered
    expect(first).toMatch(
      /^note: this host still holds copies of share files, in vault\.bundle\.shares\/\./m,
    );

    // 1. an arrow-key slip: hale is at the terminal but okafor is picked; hale's own share proves
    // whose it is
    const offered = await tmux.select(WHO, 'okafor — ');
    expect(offered).toEqual([
      ...IDS.map((id) => `${id} — Custodian ${id.toUpperCase()}`),
      'Nobody for now: stop here (the ceremony stays open)',
    ]);
    await tmux.select(HOW('okafor'), 'The path of my identity file');
    await tmux.answer(IDENTITY('okafor'), byId.hale.identity);
    const empty = await tmux.waitFor(
      new RegExp(`^\\? ${SHARE('okafor').replace(/[().]/g, '\\$&')}\\s*$`, 'm'),
    );
    expect(empty).not.toMatch(/path of your share file \(Esc: back\) \(/);
    await tmux.refused(
      SHARE('okafor'),
      '',
      'no path given: type the path of your share file, or press Esc to go back',
    );
    await tmux.refused(
      SHARE('okafor'),
      'vault.bundle.shares',
      /^✘ share file vault\.bundle\.shares is a directory/m,
    );
    await tmux.answer(SHARE('okafor'), share('hale'));
    await tmux.answer("This is hale's share, not okafor's. Take it as hale's?", 'y');
    await tmux.waitFor(/^✔ hale's share is accepted \(1 of 3\)\.$/m, { timeout: SLOW });

    // 2. ciso brings hale's share, already in: nothing is recorded against anyone
    await giveShare('ciso', byId.hale.identity, share('hale'));
    await refusalShown(
      /^✘ not accepted: this is hale's share, and hale's share is already accepted$/m,
      /^ {2}what to do: nothing more is needed from hale; ciso gives their own share file$/m,
    );
    await tmux.select('What now?', 'Choose someone else');

    // 3. lind: no path, a missing file, Esc back to the way of giving the identity, then the key
    // pasted
    await tmux.select(WHO, 'lind — ');
    await tmux.select(HOW('lind'), 'The path of my identity file');
    await tmux.refused(
      IDENTITY('lind'),
      '',
      'no path given: type the path of your identity file, or press Esc to go back',
    );
    await tmux.refused(
      IDENTITY('lind'),
      'nope.key',
      /^✘ identity file nope\.key does not exist: check the path \(Esc: back\)$/m,
    );
    await tmux.escape();
    // back to the way of giving the identity, asked again; the path prompt is gone, and nothing was
    // ticked for it
    await tmux.waitFor(
      new RegExp(`^\\? ${HOW('lind').replace(/\?/g, '\\?')}\\n❯ The path of my identity file`, 'm'),
    );
    expect(tmux.screen()).not.toMatch(/^[?✔] lind: path of your identity file/m);
    await tmux.select(HOW('lind'), 'Paste the key');
    await tmux.waitFor(/^\? lind: paste your identity, then Enter \(Esc: back\):/m);
    tmux.paste(byId.lind.secret);
    await new Promise((r) => setTimeout(r, 300));
    expect(tmux.screen()).not.toContain(byId.lind.secret.slice(16, 40));
    tmux.keys('Enter');
    await tmux.waitFor(/^✔ lind: paste your identity, then Enter \(Esc: back\):$/m);
    //    a share of another backup: only the share is asked again
    await tmux.answer(SHARE('lind'), share('lind', 'foreign.bundle'), { timeout: SLOW });
    await refusalShown(
      new RegExp(`^✘ not accepted: belongs to another backup \\(bundle ${foreignId}, not`, 'm'),
      new RegExp(
        `^ {2}what to do: this share is for another backup: find the share file made for\\s+bundle ${bundleId}`,
        'm',
      ),
    );
    const choices = await tmux.select('What now?', 'Give another share file');
    expect(choices).toEqual([
      'Give another share file',
      'Give another identity',
      'Choose someone else',
      'Stop here (the ceremony stays open)',
    ]);
    await tmux.answer(SHARE('lind'), share('lind'), { timeout: SLOW });
    await tmux.waitFor(/^✔ lind's share is accepted \(2 of 3\)\.$/m, { timeout: SLOW });
    // the identity was asked once: only the share was asked again
    expect((tmux.screen().match(/paste your identity/g) ?? []).length).toBe(1);

    // 4. drlead brings hale's identity: only the identity is asked again, and the same share file
    // retried
    await giveShare('drlead', byId.hale.identity, share('drlead'));
    await refusalShown(
      /^✘ not accepted: none of the identities given opens it/m,
      /^ {2}what to do: use the identity file that belongs with this share file/m,
    );
    const order = await tmux.select('What now?', 'Give another identity');
    expect(order[0]).toBe('Give another identity');
    await tmux.answer(IDENTITY('drlead'), byId.drlead.identity);
    await tmux.waitFor(/^✔ drlead's share is accepted \(3 of 3\)\.$/m, { timeout: SLOW });
    expect((tmux.screen().match(/^✔ drlead: path of your share file/gm) ?? []).length).toBe(1);

    // 5. the quorum: the target's PIN is asked, and a wrong one asked again, before the last
    // question
    let screen = await tmux.waitFor(/^\? PIN for token "dr-a":/m, { timeout: SLOW });
    expect(screen).toMatch(/^quorum: 3 of 3 shares accepted — quorum reached$/m);
    expect(screen).not.toMatch(/Restore all/);
    tmux.paste(`${targetA.pin}-wrong`);
    tmux.keys('Enter');
    await refusalShown(
      /^✘ token "typed" did not accept that PIN; nothing was written$/m,
      /^ {2}each wrong PIN counts towards locking the token: type it carefully$/m,
    );
    expect(tmux.screen()).not.toMatch(/^✔ PIN for token/m);
    await tmux.select('What now?', 'Type the PIN again');
    await tmux.waitFor(/^\? PIN for token "dr-a":/m);
    tmux.paste(targetA.pin);
    tmux.keys('Enter');
    screen = await tmux.waitFor(/^\? Restore all 4 keys into "typed" now\? \(y\/N\)/m, {
      timeout: SLOW,
    });
    expect(screen).toMatch(/^Quorum reached: 3 of 3 shares accepted\.$/m);
    expect(listObjects(ws, targetA)).toEqual([]);
    await tmux.answer('Restore all 4 keys into "typed" now?', 'y');
    screen = await tmux.waitFor(/^ceremony [0-9a-f]{32} closed \(quorum: drlead, hale, lind\)/m, {
      timeout: SLOW,
    });
    expect(screen).toMatch(/^token "dr-a": 4 keys restored, 0 already present/m);
    expect(screen).toMatch(new RegExp(`^every key matches bundle ${bundleId}; quorum: `, 'm'));
    // the restore's table fits too: too wide for a box at 80 columns, each key is a block of lines
    expect(screen).toMatch(/^aes-key$/m);
    expect(screen).toMatch(/^ {2}proved by: check value, same wrapped bytes/m);
    expect(await tmux.exitStatus()).toBe(0);
    screen = recordPane(args, 0);
    // the pasted key and the PIN never showed, in any form
    expect(screen).not.toContain(byId.lind.secret);
    expect(screen.toLowerCase()).not.toContain(byId.lind.secret.slice(16, 48).toLowerCase());
    expect(screen).not.toContain(targetA.pin);
  });

  it("the target token holds the source's keys: same check values, and the outside oracles agree", () => {
    expect(checkValues('dra')).toEqual(sourceValues());
    proveRestored(targetA);
  });

  it("the audit log blames nobody who did not give their own share: okafor (picked by mistake) and ciso (who brought hale's) are named nowhere", () => {
    const dir = join(ws.dir, '.custos', 'ceremonies', nonce);
    expect(existsSync(join(dir, 'host.key'))).toBe(false);
    expect(existsSync(join(dir, 'closed.json'))).toBe(true);
    // lind's foreign share and drlead's wrong identity proved no sender: they are put against
    // nobody
    expect(verdicts(nonce)).toEqual([
      'accepted:hale',
      'rejected:nobody:foreign-bundle',
      'accepted:lind',
      'rejected:nobody:unopened',
      'accepted:drlead',
    ]);
    const log = readFileSync(join(ws.dir, '.custos', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(nonce));
    expect(log.filter((l) => /okafor|ciso/.test(l) && /submission-/.test(l))).toEqual([]);
    expectOk(custos(ws, ['audit', 'verify', '.custos/audit.jsonl']));
  });
});

describe('B: an interrupted ceremony, resumed; a target that is not there; the shares kept through failures', () => {
  let nonce: string;
  const args = ['ceremony', 'run', 'b.ceremony', '--hsm', 'drx'];
  const dir = () => join(ws.dir, '.custos', 'ceremonies', nonce);

  it('one share accepted, then Ctrl-C at the next prompt: exit 130 with the count and the exact command that resumes', async () => {
    ({ nonce } = openCeremony('b.ceremony'));
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('hale', byId.hale.identity, share('hale'));
    await tmux.waitFor(/^✔ hale's share is accepted \(1 of 3\)\.$/m, { timeout: SLOW });
    await tmux.waitFor(/^\? Who is giving their share now\?\n❯ okafor/m);
    tmux.keys('C-c');
    expect(await tmux.exitStatus()).toBe(130);
    const screen = recordPane(args, 130);
    const said = diagnostics(screen);
    expect(said).toContain(
      'custos: error: ceremony interrupted with 1 of 3 shares accepted; they are kept, locked with the ceremony key [E_CANCELLED]',
    );
    expect(said).toContain('custos: hint: resume with: custos ceremony run b.ceremony --hsm drx');
    expect(screen).not.toMatch(/^\s+at\s|node:internal|ExitPromptError/m);
  });

  it('run again: hale is no longer offered; at the quorum the missing token is named again, its hint listing what is there; "No" writes nothing', async () => {
    runInTerminal(args);
    const first = await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    expect(first).toMatch(/^quorum: 1 of 3 shares accepted \(2 more needed\)$/m);
    const offered = await giveShare('okafor', byId.okafor.identity, share('okafor'));
    expect(offered).toEqual([
      'okafor — Custodian OKAFOR',
      'lind — Custodian LIND',
      'drlead — Custodian DRLEAD',
      'ciso — Custodian CISO',
      'Nobody for now: stop here (the ceremony stays open)',
    ]);
    await tmux.waitFor(/^✔ okafor's share is accepted \(2 of 3\)\.$/m, { timeout: SLOW });
    await giveShare('ciso', byId.ciso.identity, share('ciso'));
    await tmux.waitFor(/^✔ ciso's share is accepted \(3 of 3\)\.$/m, { timeout: SLOW });
    await refusalShown(
      /^✘ no custos\.yaml profile is named "drx", and there is no embedded HSM store/m,
      /custos hsm init drx/,
    );
    await tmux.select('What now?', 'Name another token');
    await tmux.answer('Restore into which HSM (profile or embedded token)?', 'drb');
    await tmux.waitFor(/^\? Restore all 4 keys into "drb" now\? \(y\/N\)/m, { timeout: SLOW });
    const before = snapshot(ws.dir);
    await tmux.answer('Restore all 4 keys into "drb" now?', 'n');
    const screen = await tmux.waitFor(
      /^nothing done yet; the accepted shares are kept\. Close later with:/m,
    );
    expect(screen).toMatch(
      /^nothing done yet; the accepted shares are kept\. Close later with:\n {2}custos ceremony close b\.ceremony --hsm drb$/m,
    );
    expect(screen).toMatch(/^✔ Restore all 4 keys into "drb" now\? No$/m);
    expect(await tmux.exitStatus()).toBe(0);
    recordPane(args, 0);
    expect(listObjects(ws, targetB)).toEqual([]);
    const after = snapshot(ws.dir);
    expect(
      Object.keys(after)
        .filter((k) => after[k] !== before[k])
        .filter((k) => k !== '.custos/audit.jsonl'),
    ).toEqual([]);
    expect(readdirSync(join(dir(), 'accepted')).sort()).toEqual([
      'ciso.submission',
      'hale.submission',
      'okafor.submission',
    ]);
  });

  it('ceremony close with a wrong PIN in its variable: says in plain words, keeps the shares, gives the exact command; with the right one it completes', () => {
    const wrong = custos(ws, ['ceremony', 'close', 'b.ceremony', '--hsm', 'drb'], {
      env: { PIN_DRB: `${targetB.pin}-wrong` },
    });
    expectUserError(wrong, 6, /E_PIN_INCORRECT/);
    // not a terminal (a log, a script): each diagnostic stays on one line
    const hint = wrong.stderr.split('\n').find((l) => l.startsWith('custos: hint: '));
    expect(hint).toBe(
      'custos: hint: $PIN_DRB holds a wrong PIN: find the right PIN before trying again (each wrong PIN counts towards locking the token). ' +
        'Nothing was written, and the 3 accepted shares are kept; then run: custos ceremony close b.ceremony --hsm drb',
    );
    expect(readdirSync(join(dir(), 'accepted'))).toHaveLength(3);
    const r = expectOk(custos(ws, ['ceremony', 'close', 'b.ceremony', '--hsm', 'drb']));
    expect(r.stdout).toMatch(
      new RegExp(`^ceremony ${nonce} closed \\(quorum: ciso, hale, okafor\\)`, 'm'),
    );
    expect(checkValues('drb')).toEqual(sourceValues());
    proveRestored(targetB);
    expect(existsSync(join(dir(), 'host.key'))).toBe(false);
  });
});

describe('D: passphrase-protected identity files at the terminal', () => {
  const args = ['ceremony', 'run', 'd.ceremony', '--hsm', 'drb'];
  const passphrase = `pass-${randomBytes(6).toString('hex')}`;
  const protectedFile = (id: Id) => `custodians/${id}.age`;
  const asked = (id: Id) => `passphrase of identity file ${protectedFile(id)} (Esc: back):`;

  it('files made like `age -p` (scrypt recipient; checked by the age library with the passphrase)', async () => {
    ws.secrets.add(passphrase);
    for (const id of ['lind', 'okafor'] as const) {
      const e = new Encrypter();
      e.setPassphrase(passphrase);
      // a lighter scrypt than age's default (2^18) keeps this file quick; ceremony-remote.test.ts
      // uses the default
      e.setScryptWorkFactor(15);
      writeFileSync(
        join(ws.dir, protectedFile(id)),
        await e.encrypt(readFileSync(byId[id].identity)),
        { mode: 0o600 },
      );
      const d = new Decrypter();
      d.addPassphrase(passphrase);
      expect(await d.decrypt(readFileSync(join(ws.dir, protectedFile(id))), 'text')).toBe(
        readFileSync(byId[id].identity, 'utf8'),
      );
    }
  });

  it('a wrong passphrase is said and asked again at once, never ticked; the right one goes on to the share; Ctrl-C at a passphrase prompt is an interruption', async () => {
    openCeremony('d.ceremony');
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('hale', byId.hale.identity, share('hale'));
    await tmux.waitFor(/^✔ hale's share is accepted \(1 of 3\)\.$/m, { timeout: SLOW });

    await tmux.select(WHO, 'lind — ');
    await tmux.select(HOW('lind'), 'The path of my identity file');
    await tmux.answer(IDENTITY('lind'), protectedFile('lind'));
    await tmux.waitFor(`? ${asked('lind')}`, { timeout: SLOW });
    tmux.paste(`${passphrase}-wrong`);
    tmux.keys('Enter');
    await tmux.waitFor(
      /^✘ that passphrase does not open custodians\/lind\.age: type it again \(Esc: back\)$/m,
      { timeout: SLOW },
    );
    // asked again, right under the refusal, without choosing the name, the way or the file again
    await tmux.waitFor(
      new RegExp(
        `^✘ that passphrase .*\\n\\? passphrase of identity file custodians/lind\\.age`,
        'm',
      ),
      { timeout: SLOW },
    );
    expect(tmux.screen()).not.toMatch(/^✔ passphrase of identity file/m);
    expect((tmux.screen().match(/^✔ Who is giving their share now\? lind/gm) ?? []).length).toBe(1);
    tmux.paste(passphrase);
    tmux.keys('Enter');
    await tmux.waitFor(/^✔ passphrase of identity file custodians\/lind\.age \(Esc: back\):$/m, {
      timeout: SLOW,
    });
    await tmux.answer(SHARE('lind'), share('lind'), { timeout: SLOW });
    await tmux.waitFor(/^✔ lind's share is accepted \(2 of 3\)\.$/m, { timeout: SLOW });

    await tmux.select(WHO, 'okafor — ');
    await tmux.select(HOW('okafor'), 'The path of my identity file');
    await tmux.answer(IDENTITY('okafor'), protectedFile('okafor'));
    await tmux.waitFor(`? ${asked('okafor')}`, { timeout: SLOW });
    tmux.keys('C-c');
    expect(await tmux.exitStatus()).toBe(130);
    const screen = recordPane(args, 130);
    expect(screen).not.toContain(passphrase);
    expect(screen).not.toMatch(/^\s+at\s|node:internal|ExitPromptError/m);
    expect(json(custos(ws, ['ceremony', 'status', 'd.ceremony', '--json'])).accepted).toBe(2);
    const said = diagnostics(screen);
    expect(said).toContain('custos: hint: resume with: custos ceremony run d.ceremony --hsm drb');
    expect(said).toContain(
      'custos: error: ceremony interrupted with 2 of 3 shares accepted; they are kept, locked with the ceremony key [E_CANCELLED]',
    );
    expect(screen).not.toMatch(/nothing was changed/);
  });
});

describe("E: share submit on a custodian's machine, at 80×24", () => {
  let digest: string;
  let machine: string;
  const args = [
    'share',
    'submit',
    '--ceremony',
    'e.ceremony',
    '--share',
    'okafor.share',
    '--identity',
    'okafor.key',
    '--out',
    'okafor.submission',
  ];

  it('shows the digest alone on its line in groups of four; a wrong or short answer is said and asked again; the first 8 characters give the share', async () => {
    ({ digest } = openCeremony('e.ceremony'));
    machine = mkdtempSync(join(ws.dir, 'machine-'));
    copyFileSync(join(ws.dir, 'e.ceremony'), join(machine, 'e.ceremony'));
    copyFileSync(join(ws.dir, share('okafor')), join(machine, 'okafor.share'));
    copyFileSync(byId.okafor.identity, join(machine, 'okafor.key'));
    runInTerminal(['share', 'submit', ...args.slice(2)], { cwd: machine, env: { HOME: machine } });
    const message = "first 8 characters of the lead's SHA-256:";
    const first = await tmux.waitFor(`? ${message}`, { timeout: SLOW });
    expect(first).toMatch(/^you are asked to give your share for:$/m);
    expect(first).toMatch(new RegExp(`^${digest.match(/.{4}/g)?.join(' ')}$`, 'm'));
    expect(first).toMatch(
      /^your share \(okafor, Custodian OKAFOR\) opens and belongs to this restore\.$/m,
    );
    // a bare y is not an answer
    await tmux.refused(
      message,
      'y',
      /^✘ type exactly 8 characters \(you typed 1\), or press Enter alone to stop$/m,
    );
    await tmux.refused(
      message,
      '00000000',
      /^✘ not this file's SHA-256: retype it, or press Enter alone and call the lead$/m,
    );
    expect(existsSync(join(machine, 'okafor.submission'))).toBe(false);
    await tmux.answer(message, `${digest.slice(0, 4)} ${digest.slice(4, 8).toUpperCase()}`);
    const screen = await tmux.waitFor(/^submission okafor\.submission written for okafor$/m, {
      timeout: SLOW,
    });
    expect(screen).toMatch(/^next: send this file, and only this file, to the ceremony lead\.$/m);
    expect(await tmux.exitStatus()).toBe(0);
    recordPane(['share', 'submit'], 0);
    expect(readFileSync(join(machine, 'okafor.submission'), 'utf8')).toMatch(
      /^custos-submission\/1\n/,
    );
  });

  it('Enter alone stops: nothing is written', async () => {
    runInTerminal(['share', 'submit', ...args.slice(2, -1), 'again.submission'], {
      cwd: machine,
      env: { HOME: machine },
    });
    await tmux.answer("first 8 characters of the lead's SHA-256:", '', { timeout: SLOW });
    expect(await tmux.exitStatus()).toBe(130);
    const screen = recordPane(['share', 'submit'], 130);
    expect(diagnostics(screen)).toContain(
      'custos: error: not submitted; nothing was written [E_CANCELLED]',
    );
    expect(existsSync(join(machine, 'again.submission'))).toBe(false);
  });
});

describe('F: a failure after "yes" keeps the shares and gives the command; cancel asks first', () => {
  const args = ['ceremony', 'run', 'f.ceremony', '--hsm', 'drc'];
  let nonce: string;
  const dir = () => join(ws.dir, '.custos', 'ceremonies', nonce);

  it('a key on the target that conflicts with the bundle, found after "yes": exit 7, nothing written, the 3 shares kept, and the exact command', async () => {
    ({ nonce } = openCeremony('f.ceremony'));
    const inbox = join(ws.dir, 'f-inbox');
    mkdirSync(inbox, { recursive: true });
    for (const id of ['hale', 'lind', 'ciso'] as const) {
      expectOk(
        custos(ws, [
          'share',
          'submit',
          '--ceremony',
          'f.ceremony',
          '--share',
          share(id),
          '--identity',
          byId[id].identity,
          '--out',
          `f-inbox/${id}.submission`,
          '--yes',
        ]),
      );
    }
    const added = expectOk(
      custos(ws, [
        'ceremony',
        'add',
        'f.ceremony',
        ...['hale', 'lind', 'ciso'].map((id) => `f-inbox/${id}.submission`),
      ]),
    );
    expect(added.stdout).toMatch(/^next: custos ceremony close f\.ceremony --hsm TARGET$/m);
    const objects = listObjects(ws, targetC);
    runInTerminal(args);
    await tmux.waitFor(/^\? Restore all 4 keys into "drc" now\? \(y\/N\)/m, { timeout: SLOW });
    await tmux.answer('Restore all 4 keys into "drc" now?', 'y');
    expect(await tmux.exitStatus()).toBe(7);
    const screen = recordPane(args, 7);
    const said = diagnostics(screen);
    expect(said.find((l) => l.startsWith('custos: error: '))).toMatch(
      /conflicts? with the bundle; nothing was written \[E_CONFLICT\]$/,
    );
    expect(said.find((l) => l.startsWith('custos: hint: '))).toMatch(
      /Nothing was written, and the 3 accepted shares are kept; then run: custos ceremony close f\.ceremony --hsm drc$/,
    );
    expect(listObjects(ws, targetC)).toEqual(objects);
    expect(readdirSync(join(dir(), 'accepted'))).toHaveLength(3);
  });

  it('cancel asks before destroying the accepted shares (No keeps them); without a terminal it needs --yes; --yes cancels', async () => {
    runInTerminal(['ceremony', 'cancel', 'f.ceremony']);
    const question = `Cancel ceremony ${nonce.slice(0, 8)}… and destroy its 3 accepted shares?`;
    const screen = await tmux.waitFor(`? ${question}`, { timeout: SLOW });
    expect(diagnostics(screen)).toContain(
      'custos: cancelling destroys the ceremony key and the 3 accepted shares it holds; the custodians would have to give their shares again, in a new ceremony',
    );
    await tmux.answer(question, 'n');
    expect(await tmux.exitStatus()).toBe(130);
    recordPane(['ceremony', 'cancel'], 130);
    expect(readdirSync(join(dir(), 'accepted'))).toHaveLength(3);
    const noTty = custos(ws, ['ceremony', 'cancel', 'f.ceremony']);
    expectUserError(noTty, 8, /E_NO_TTY/);
    expect(noTty.stderr).toMatch(/^custos: hint: add --yes to cancel without being asked$/m);
    expect(existsSync(join(dir(), 'host.key'))).toBe(true);
    const done = expectOk(custos(ws, ['ceremony', 'cancel', 'f.ceremony', '--yes']));
    expect(done.stdout).toMatch(
      new RegExp(
        `^ceremony ${nonce} cancelled: its key and 3 shares it held on this host were destroyed`,
        'm',
      ),
    );
    expect(existsSync(join(dir(), 'accepted'))).toBe(false);
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
