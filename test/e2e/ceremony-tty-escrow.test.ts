/**
 * `custos ceremony run` on a PIN-escrow drill ceremony, driven in a real terminal of 80×24 (tmux)
 * against a real SoftHSM2 token whose user PIN `escrow-pin` escrowed 2-of-3. The token's profile
 * still names the PIN it had before, which no longer logs in: whatever opens the token is the PIN
 * the quorum reassembles. Run without --hsm, custos asks for the escrowed token once the quorum is
 * in, looks for it before the last question, and logs into it only at the close.
 *
 * 1: the right name, then "yes": the drill passes, the token is unchanged, the audit log verifies.
 * 2: a name no profile or embedded token has, then a token that is not the escrowed one: each is
 * said, with which token to name, and asked again; "stop" leaves the accepted shares in the
 * ceremony and gives the command to close later. Without a terminal, `ceremony close` refuses the
 * same two names with the same advice, and with the right name completes the drill.
 * 3: the escrowed token given on the command line (--hsm, a repeatable option) is found as given.
 * 4: a wrong one given there, then Ctrl-C: the command to resume with leaves it out.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN,
  TIMEOUT,
  cleanup,
  combineKek,
  custos,
  expectNoSecrets,
  expectOk,
  json,
  makeCustodians,
  makeKey,
  openShare,
  p11Raw,
  snapshot,
  terminalEnv,
  workspace,
  writePolicy,
  type Custodian,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { SoPinProfiles } from './scenarios.js';
import { SLOW, Tmux } from './tmux.js';

vi.setConfig({ testTimeout: 4 * TIMEOUT, hookTimeout: TIMEOUT });

const IDS = ['ames', 'baker', 'cho'] as const;
type Id = (typeof IDS)[number];
const WHO = 'Who is giving their share now?';
const HOW = (id: Id) => `${id}: how will you give your age identity?`;
const IDENTITY = (id: Id) => `${id}: path of your identity file (Esc: back)`;
const SHARE = (id: Id) => `${id}: path of your share file (Esc: back)`;
const WHICH_TOKEN = 'The escrowed token to open (profile or embedded token):';
const PROVE = (name: string) => `Prove the escrowed PIN opens "${name}" now?`;

let ws: Workspace;
let tmux: Tmux;
let escrowed: TokenRef;
let other: TokenRef;

beforeAll(() => {
  ws = workspace('ceremony-tty-escrow');
  const custodians = makeCustodians(ws, [...IDS]);
  writePolicy(ws, 'policy.yaml', 2, custodians);
  const profiles = new SoPinProfiles(ws, join(ws.dir, 'custos.yaml'));
  escrowed = profiles.add('escrowed');
  other = profiles.add('other');
  makeKey(ws, escrowed, { kind: 'aes', label: 'vault-aes', id: '01' });
  makeKey(ws, escrowed, { kind: 'rsa', label: 'vault-rsa', id: '02' });
  expectOk(
    custos(ws, [
      'escrow-pin',
      '--hsm',
      'escrowed',
      '--policy',
      'policy.yaml',
      '--out',
      'escrow-escrowed',
    ]),
  );
  // the profile's PIN (env:PIN_ESCROWED) is the old one, which the token now refuses
  expect(p11Raw(ws, escrowed, ['--list-objects']).status).not.toBe(0);
  // every share value and the PIN's seed are secrets (opened outside custos, with the age CLI)
  const texts = custodians.map((c: Custodian) =>
    openShare(ws, join(ws.dir, 'escrow-escrowed', `${c.id}.share`), c.identity),
  );
  expect(combineKek(ws, texts.slice(0, 2))).toHaveLength(32);
  tmux = new Tmux(ws.dir, { width: 80, height: 24 });
});

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

const ceremonyDir = (nonce: string) => join(ws.dir, '.custos', 'ceremonies', nonce);
/** The token's object files, by name (SoftHSM2 rewrites its own bookkeeping at each login). */
const tokenObjects = () =>
  Object.keys(snapshot(ws.dir))
    .filter((f) => f.startsWith('tokens/'))
    .sort();

/** A drill ceremony of the escrow; its host key is registered as a secret. */
function openDrill(out: string): string {
  const r = json(
    custos(ws, [
      'ceremony',
      'open',
      '--pin-escrow',
      'escrow-escrowed',
      '--purpose',
      'drill',
      '--out',
      out,
      '--json',
    ]),
  );
  const nonce: string = r.ceremony.nonce;
  for (const l of readFileSync(join(ceremonyDir(nonce), 'host.key'), 'utf8').split('\n'))
    if (/^(AGE-SECRET-KEY-1|ed25519-pkcs8: )/.test(l))
      ws.secrets.add(l.replace(/^ed25519-pkcs8: /, ''));
  return nonce;
}

function runInTerminal(args: string[]): void {
  tmux.start({ cwd: ws.dir, env: terminalEnv(ws), argv: [BIN, ...args] });
}

/**
 * The pane, recorded as a run so the final scan covers what the terminal showed; no line of it was
 * wider than the terminal, and no PIN-like run of base32 shows.
 */
function recordPane(args: string[], status: number): string {
  const screen = tmux.screen();
  ws.runs.push({ args: [...args, '(terminal)'], status, stdout: screen, stderr: '' });
  expect(tmux.wideLines(), `lines wider than 80 columns in:\n${screen}`).toEqual([]);
  expect(screen).not.toMatch(/[A-Z2-7]{52}/);
  return screen;
}

/** One custodian at the terminal: who, the identity file, the share file; the share accepted. */
async function giveShare(who: Id, nth: number): Promise<void> {
  await tmux.select(WHO, `${who} — `);
  await tmux.select(HOW(who), 'The path of my identity file');
  await tmux.answer(IDENTITY(who), `custodians/${who}.key`);
  await tmux.answer(SHARE(who), `escrow-escrowed/${who}.share`);
  await tmux.waitFor(`✔ ${who}'s share is accepted (${nth} of 2).`, { timeout: SLOW });
}

/** The entries of one ceremony in the audit log, as `op:outcome` (a custodian's id added). */
function ceremonyEntries(nonce: string): string[] {
  return json<any[]>(
    custos(ws, ['audit', 'show', '.custos/audit.jsonl', '--ceremony', nonce, '--json']),
  ).map((e) => `${e.op}:${e.outcome}${e.detail?.custodian ? `:${e.detail.custodian}` : ''}`);
}

function auditVerifies(): void {
  const r = expectOk(custos(ws, ['audit', 'verify', '.custos/audit.jsonl']));
  expect(r.stdout).toMatch(/chain intact/);
}

describe('1: a PIN-escrow drill at the terminal, the escrowed token named when asked', () => {
  it('two custodians give their shares; custos then asks for the escrowed token, "escrowed" is typed, "yes" proves the reassembled PIN opens it: exit 0, the token unchanged, the audit log verifies', async () => {
    const nonce = openDrill('drill.ceremony');
    const args = ['ceremony', 'run', 'drill.ceremony'];
    const objects = tokenObjects();
    // the AES key and the RSA pair
    expect(objects.filter((f) => f.endsWith('.object'))).toHaveLength(3);
    runInTerminal(args);
    const first = await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    expect(first).toMatch(
      /^purpose: {3}drill — a drill: prove the escrowed PIN opens its token, change$/m,
    );
    expect(first).toMatch(
      /^backup: {4}the escrowed PIN of token "escrowed" \(serial [0-9a-f]+\)$/m,
    );
    expect(first).toMatch(/^quorum: 0 of 2 shares accepted \(2 more needed\)$/m);

    await giveShare('ames', 1);
    // no token is asked for before the quorum
    expect(tmux.screen()).not.toContain(WHICH_TOKEN);
    await giveShare('cho', 2);
    await tmux.answer(WHICH_TOKEN, 'escrowed', { timeout: SLOW });
    const lastQuestion = /^\? Prove the escrowed PIN opens "escrowed" now\? \(y\/N\)/m;
    const asked = await tmux.waitFor(lastQuestion, { timeout: SLOW });
    expect(asked).toMatch(
      /^✔ The escrowed token to open \(profile or embedded token\): escrowed\nQuorum reached: 2 of 2 shares accepted\.\n\? Prove/m,
    );
    expect(existsSync(join(ceremonyDir(nonce), 'host.key'))).toBe(true);
    await tmux.answer(PROVE('escrowed'), 'y');
    expect(await tmux.exitStatus()).toBe(0);
    const screen = recordPane(args, 0);
    expect(screen).toMatch(/^✔ Prove the escrowed PIN opens "escrowed" now\? Yes$/m);
    // custos's own lines, wrapped at 80 with their continuations two blanks in, read as one
    const said = screen.replace(/\n {2}(?=\S)/g, ' ');
    expect(said).toMatch(
      /^drill passed: the reassembled PIN opens token "escrowed" \(serial [0-9a-f]+\), which holds 2 keys; nothing was changed$/m,
    );
    expect(said).toMatch(
      new RegExp(
        `^ceremony ${nonce} closed \\(quorum: ames, cho\\); its key and the shares it held on this host were destroyed$`,
        'm',
      ),
    );
    expect(screen).not.toMatch(/^custos: (error|hint):|^\s+at\s|node:internal|ExitPromptError/m);
    expect(existsSync(join(ceremonyDir(nonce), 'host.key'))).toBe(false);
    expect(tokenObjects()).toEqual(objects);
    // the profile's old PIN still does not log in: the drill opened the token with the escrowed one
    expect(p11Raw(ws, escrowed, ['--list-objects']).status).not.toBe(0);

    expect(ceremonyEntries(nonce)).toEqual([
      'ceremony-open:ok',
      'submission-accepted:ok:ames',
      'submission-accepted:ok:cho',
      'ceremony-close:ok',
    ]);
    auditVerifies();
  });
});

describe('2: a PIN-escrow drill at the terminal, a wrong token named, then stopped', () => {
  let nonce: string;
  // the serial pkcs11-tool reads for each token (not custos's own record of it)
  const serials = { escrowed: '', other: '' };
  const serialOf = (t: TokenRef) =>
    new RegExp(`token label\\s*: ${t.label}\\n[\\s\\S]*?serial num\\s*: (\\S+)`).exec(
      p11Raw(ws, t, ['--list-token-slots']).stdout.toString(),
    )?.[1] ?? '';
  const args = ['ceremony', 'run', 'missing.ceremony'];

  it('a name that does not exist, then another token: each is said with the token to name, and asked again; "stop" keeps the 2 accepted shares and gives the command to close later', async () => {
    nonce = openDrill('missing.ceremony');
    const objects = tokenObjects();
    serials.escrowed = serialOf(escrowed);
    serials.other = serialOf(other);
    expect(serials.escrowed).toMatch(/^[0-9a-f]{16}$/);
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('baker', 1);
    await giveShare('ames', 2);
    const which = `name the profile or embedded token of token "escrowed" (serial ${serials.escrowed}), whose PIN the custodians hold`;
    // custos's lines, wrapped at 80 with their continuations indented, read as one
    const said = () => tmux.screen().replace(/\n {2,4}(?=\S)/g, ' ');

    await tmux.answer(WHICH_TOKEN, 'nosuch', { timeout: SLOW });
    await tmux.waitFor(/^\? What now\?/m, { timeout: SLOW });
    expect(said()).toContain(
      `✘ no custos.yaml profile is named "nosuch", and there is no embedded HSM store in ${ws.dir} ${which}`,
    );
    // a new token could never be the escrowed one: the embedded store's hint is not given
    expect(said()).not.toContain('custos hsm init');
    await tmux.select('What now?', 'Name another token');

    await tmux.answer(WHICH_TOKEN, 'other', { timeout: SLOW });
    await tmux.waitFor(/^✘ "other" is token/m, { timeout: SLOW });
    expect(said()).toContain(
      `✘ "other" is token "other" (serial ${serials.other}); the escrowed PIN is for "escrowed" (serial ${serials.escrowed}) ${which}`,
    );
    expect(tmux.screen()).not.toContain(PROVE('other'));
    await tmux.select('What now?', 'Stop here (the accepted shares are kept)');
    expect(await tmux.exitStatus()).toBe(0);
    const screen = recordPane(args, 0);
    // the command keeps its placeholder, not a name that was wrong
    expect(screen).toMatch(
      /^nothing done yet; the accepted shares are kept\. Close later with:\n {2}custos ceremony close missing\.ceremony --hsm ESCROWED-TOKEN$/m,
    );
    expect(screen).not.toMatch(/^custos: (error|hint):|^\s+at\s|node:internal|ExitPromptError/m);

    expect(readdirSync(join(ceremonyDir(nonce), 'accepted')).sort()).toEqual([
      'ames.submission',
      'baker.submission',
    ]);
    expect(json(custos(ws, ['ceremony', 'status', 'missing.ceremony', '--json'])).accepted).toBe(2);
    expect(existsSync(join(ceremonyDir(nonce), 'host.key'))).toBe(true);
    expect(tokenObjects()).toEqual(objects);
  });

  it('ceremony close without a terminal, a missing name or another token: refused with the token to name and the command with its placeholder; nothing changes', () => {
    const objects = tokenObjects();
    for (const [name, status, code] of [
      ['nosuch', 6, 'E_TOKEN_NOT_FOUND'],
      ['other', 3, 'E_PIN_SOURCE'],
    ] as const) {
      const r = custos(ws, ['ceremony', 'close', 'missing.ceremony', '--hsm', name]);
      expect(r.status, r.stderr).toBe(status);
      const said = r.stderr.replace(/\ncustos: {6,}/g, ' ');
      expect(said).toContain(`[${code}]`);
      expect(said).toContain(
        `custos: hint: name the profile or embedded token of token "escrowed" (serial ${serials.escrowed}), whose PIN the custodians hold. Nothing was written, and the 2 accepted shares are kept; then run: custos ceremony close missing.ceremony --hsm ESCROWED-TOKEN\n`,
      );
    }
    expect(json(custos(ws, ['ceremony', 'status', 'missing.ceremony', '--json'])).accepted).toBe(2);
    expect(tokenObjects()).toEqual(objects);
  });

  it('ceremony close without a terminal, the right name in place of ESCROWED-TOKEN, completes the drill with the kept shares; the audit log verifies', () => {
    const r = expectOk(custos(ws, ['ceremony', 'close', 'missing.ceremony', '--hsm', 'escrowed']));
    expect(r.stdout).toMatch(
      /^drill passed: the reassembled PIN opens token "escrowed" \(serial [0-9a-f]+\), which holds 2 keys; nothing was changed$/m,
    );
    expect(r.stdout).toMatch(
      new RegExp(`^ceremony ${nonce} closed \\(quorum: ames, baker\\)`, 'm'),
    );
    expect(existsSync(join(ceremonyDir(nonce), 'host.key'))).toBe(false);
    expect(ceremonyEntries(nonce)).toEqual([
      'ceremony-open:ok',
      'submission-accepted:ok:baker',
      'submission-accepted:ok:ames',
      // the two refused closes without a terminal (the terminal's own checks leave no entry)
      'ceremony-close:failed',
      'ceremony-close:failed',
      'ceremony-close:ok',
    ]);
    auditVerifies();
  });
});

describe('3: a PIN-escrow drill at the terminal, the escrowed token given with --hsm', () => {
  it('the quorum goes straight to the last question, the token found and checked; "No" leaves the ceremony open with the exact close command', async () => {
    const nonce = openDrill('given.ceremony');
    const args = ['ceremony', 'run', 'given.ceremony', '--hsm', 'escrowed'];
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('cho', 1);
    await giveShare('baker', 2);
    await tmux.answer(PROVE('escrowed'), 'n', { timeout: SLOW });
    expect(await tmux.exitStatus()).toBe(0);
    const screen = recordPane(args, 0);
    expect(screen).not.toContain(WHICH_TOKEN);
    expect(screen).not.toMatch(/^✘ /m);
    expect(screen).toMatch(
      /^nothing done yet; the accepted shares are kept\. Close later with:\n {2}custos ceremony close given\.ceremony --hsm escrowed$/m,
    );
    expect(readdirSync(join(ceremonyDir(nonce), 'accepted')).sort()).toEqual([
      'baker.submission',
      'cho.submission',
    ]);
  });
});

describe('4: a wrong --hsm on the command line, then Ctrl-C', () => {
  it('the resume command it gives leaves the wrong name out, so the run asks for the token again', async () => {
    openDrill('wrong.ceremony');
    const args = ['ceremony', 'run', 'wrong.ceremony', '--hsm', 'nosuch'];
    runInTerminal(args);
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await giveShare('ames', 1);
    await giveShare('cho', 2);
    await tmux.waitFor(/^✘ no custos\.yaml profile is named "nosuch"/m, { timeout: SLOW });
    await tmux.waitFor(/^\? What now\?/m, { timeout: SLOW });
    tmux.keys('C-c');
    expect(await tmux.exitStatus()).toBe(130);
    const screen = recordPane(args, 130);
    expect(screen).toMatch(/^custos: hint: resume with: custos ceremony run wrong\.ceremony$/m);
  });
});

describe('secrets', () => {
  it('no PIN, identity, share value, seed or host key appears in any output or on the terminal, nor in the audit log', () => {
    expectNoSecrets(ws);
    const log = readFileSync(join(ws.dir, '.custos', 'audit.jsonl'), 'utf8');
    const found = [...ws.secrets].filter(
      (s) => s.length >= 8 && log.toLowerCase().includes(s.toLowerCase()),
    );
    expect(found.map((s) => s.slice(0, 6))).toEqual([]);
    expect(log).not.toMatch(/[A-Z2-7]{52}/);
  });
});
