/**
 * Every screen fits an 80-column terminal. Without a terminal (COLUMNS unset) custos lays out for
 * 80 columns: backup (its tables and its "next:" block), inventory, audit show, ceremony status
 * with refusals below the table, and the --help of every command, each with an example and where
 * its PINs and passphrases come from. In a real 80×24 terminal (tmux): hsm init checks the PIN
 * length at the first entry and asks again, and restore asks the PIN and shows its result. A token
 * that is not found is named with what the module does see and, for a SoftHSM2 profile, which
 * configuration it read (the DR runbook's first step on a fresh machine, SOFTHSM2_CONF unset).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN,
  MODULE,
  TIMEOUT,
  cleanup,
  custos,
  expectNoSecrets,
  expectOk,
  expectUserError,
  newPin,
  terminalEnv,
  type Custodian,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { sourceAndTarget } from './scenarios.js';
import { SLOW, Tmux } from './tmux.js';

vi.setConfig({ testTimeout: 2 * TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let tmux: Tmux;
let custodians: Custodian[];
let target: TokenRef;
let bundleId: string;

/** custos as a pipe sees it: no terminal, and no COLUMNS. */
const at80 = (
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Run => custos(ws, args, { ...opts, env: { COLUMNS: undefined, ...(opts.env ?? {}) } });

/**
 * Lines of stdout wider than 80 columns (box drawing and accents count one each). Diagnostics on a
 * stderr that is no terminal stay one line each, for logs; on a terminal they wrap (see below).
 */
const wide = (r: Run) => r.stdout.split('\n').filter((l) => [...l].length > 80);

beforeAll(() => {
  ({ ws, custodians, target } = sourceAndTarget({
    workspace: 'screens-80',
    source: 'vault',
    target: { label: 'dr-site', profile: 'dr' },
    custodians: ['hale-llp', 'okafor-law', 'lindqvist', 'dr-lead', 'ciso'],
    threshold: 3,
  }));
  tmux = new Tmux(ws.dir, { width: 80, height: 24 });
  appendFileSync(
    join(ws.dir, 'custos.yaml'),
    `  typed:\n    module: ${MODULE}\n    token: dr-site\n    pin: prompt\n  ghost:\n    module: ${MODULE}\n    token: PAYMENTS-DR\n    pin: prompt\n`,
  );
});

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

describe('without a terminal, output is laid out for 80 columns', () => {
  it('backup: both tables fit, no "KEK", and it ends with what to do next', () => {
    const r = expectOk(
      at80(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'vault.bundle']),
    );
    expect(wide(r)).toEqual([]);
    bundleId = /\(id ([0-9a-f]{32})\)/.exec(r.stdout)?.[1] as string;
    expect(bundleId).toMatch(/^[0-9a-f]{32}$/);
    expect(r.stdout).not.toMatch(/KEK|SPKI|recombining/);
    // an asymmetric key's check value is named for what it is, the hash of its public key
    expect(r.stdout).toMatch(/pubkey-sha256/);
    const next = r.stdout.slice(r.stdout.indexOf('\nnext:\n') + 1).split('\n');
    expect(next[0]).toBe('next:');
    expect(next[1]).toBe(`  1. write the bundle id in the backup record: ${bundleId}`);
    expect(next[2]).toBe(
      '  2. hand each custodian their own share file, and only theirs (table above);',
    );
    expect(next.join('\n')).toMatch(/each checks it: custos shares verify --bundle vault\.bundle/);
    expect(next.join('\n')).toMatch(
      /^ {2}3\. then delete this host's copies: rm vault\.bundle\.shares\/\*\.share$/m,
    );
    // every share file is named in full, even with the table narrowed
    for (const c of custodians) expect(r.stdout).toContain(`vault.bundle.shares/${c.id}.share`);
  });

  it('a share of another backup: shares verify gives the instruction ceremony run and share submit give, word for word', () => {
    expectOk(
      at80(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'other.bundle']),
    );
    const hale = custodians[0] as Custodian;
    const r = at80([
      'shares',
      'verify',
      '--bundle',
      'vault.bundle',
      '--share',
      `other.bundle.shares/${hale.id}.share`,
      '--identity',
      hale.identity,
    ]);
    expectUserError(
      r,
      4,
      /belongs to another backup \(bundle [0-9a-f]{32}, not [0-9a-f]{32}\) \[E_SHARE_REJECTED\]/,
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `^custos: hint: this share is for another backup: find the share file made for bundle ${bundleId} \\(custodians often hold several\\)$`,
        'm',
      ),
    );
    const good = expectOk(
      at80([
        'shares',
        'verify',
        '--bundle',
        'vault.bundle',
        '--share',
        `vault.bundle.shares/${hale.id}.share`,
        '--identity',
        hale.identity,
      ]),
    );
    expect(good.stdout).toMatch(
      /^ {2}signature {2}verified: made by this backup, for this very bundle file$/m,
    );
    expect(good.stdout).not.toMatch(/dealer/);
  });

  it('the same tables are boxes, one row each, on a wide terminal (COLUMNS)', () => {
    const r = expectOk(at80(['inventory', '--hsm', 'vault'], { env: { COLUMNS: '200' } }));
    expect(r.stdout).toMatch(/^│ aes-key +│ 01 +│ secret +│ AES /m);
    expect(r.stdout.split('\n').some((l) => [...l].length > 80)).toBe(true);
  });

  it('inventory at 80 columns: each key a block of lines, every value there', () => {
    const r = expectOk(at80(['inventory', '--hsm', 'vault']));
    expect(wide(r)).toEqual([]);
    for (const label of ['aes-key', 'hmac-key', 'rsa-key', 'ec-key', 'bound-key'])
      expect(r.stdout).toMatch(new RegExp(`^${label}$`, 'm'));
    expect(r.stdout).toMatch(/extractable: (yes|no)/);
    expect(r.stdout).toMatch(/check value: KCV [0-9a-f]{6}/);
  });

  it('ceremony status: the table has no reason column; each refusal and what to do are below it; nobody is blamed for an unsigned file', () => {
    expectOk(
      at80([
        'ceremony',
        'open',
        '--bundle',
        'vault.bundle',
        '--purpose',
        'drill',
        '--out',
        's.ceremony',
      ]),
    );
    mkdirSync(join(ws.dir, 'inbox'), { recursive: true });
    const add = at80(['ceremony', 'add', 's.ceremony', 'vault.bundle.shares/ciso.share']);
    expect(add.status).toBe(4);
    expect(add.stderr).toMatch(/^custos: error: 1 submission rejected \[E_SUBMISSION_REJECTED\]$/m);
    expect(add.stdout).toMatch(
      /^next: as each submission arrives: custos ceremony add s\.ceremony FILE\.\.\.$/m,
    );
    expect(wide(add)).toEqual([]);
    const r = expectOk(at80(['ceremony', 'status', 's.ceremony']));
    expect(wide(r)).toEqual([]);
    expect(r.stdout).toMatch(/^│ custodian +│ name +│ share │ state +│$/m);
    expect(r.stdout).not.toMatch(/│ reason/);
    expect(r.stdout).toMatch(
      /^vault\.bundle\.shares\/ciso\.share \(sender not proven, counted against nobody\):$/m,
    );
    expect(r.stdout).toMatch(
      /^ {2}refused: {5}is an encrypted file, most likely a share file, not a/m,
    );
    expect(r.stdout).toMatch(
      /^ {2}what to do: {2}never send a share file: the custodian runs custos share/m,
    );
    expect(r.stdout).toMatch(/^quorum: 0 of 3 shares accepted \(3 more needed\)$/m);
    // the digest a custodian compares by phone: one line, sixteen groups of four
    expect(r.stdout).toMatch(/^([0-9a-f]{4} ){15}[0-9a-f]{4}$/m);
  });

  it('audit show: an entry per block, its detail wrapped, nothing wider than 80', () => {
    const r = expectOk(at80(['audit', 'show', '.custos/audit.jsonl']));
    expect(wide(r)).toEqual([]);
    expect(r.stdout).toMatch(/^1 {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}backup {2}ok$/m);
    expect(r.stdout).toMatch(/^ {4}by \S+ {3}bundle [0-9a-f]{8}$/m);
  });

  it('--help of every command fits, with a short example, and says where PINs and passphrases come from', () => {
    const commands = [
      ['hsm', 'init'],
      ['inventory'],
      ['backup'],
      ['domain', 'init'],
      ['domain', 'enroll'],
      ['domain', 'rotate'],
      ['domain', 'show'],
      ['shares', 'verify'],
      ['shares', 'submit'],
      ['share', 'verify'],
      ['share', 'submit'],
      ['ceremony', 'open'],
      ['ceremony', 'add'],
      ['ceremony', 'status'],
      ['ceremony', 'close'],
      ['ceremony', 'cancel'],
      ['ceremony', 'run'],
      ['handover', 'request'],
      ['handover', 'approve'],
      ['handover', 'status'],
      ['handover', 'execute'],
      ['handover', 'verify'],
      ['policy', 'check'],
      ['restore'],
      ['escrow-pin'],
      ['audit', 'verify'],
      ['audit', 'show'],
      ['demo'],
    ];
    for (const c of commands) {
      const r = expectOk(at80([...c, '--help']));
      expect(wide(r), c.join(' ')).toEqual([]);
      expect(r.stdout, c.join(' ')).toMatch(new RegExp(`^Usage: custos ${c.join(' ')} `, 'm'));
      expect(r.stdout, c.join(' ')).toMatch(/^Example:\n {2}custos /m);
      expect(r.stdout, c.join(' ')).toMatch(/PIN|passphrase/);
    }
    for (const c of [[], ['ceremony'], ['shares'], ['domain'], ['handover'], ['hsm'], ['audit']])
      expect(wide(expectOk(at80([...c, '--help']))), c.join(' ')).toEqual([]);
  });
});

describe('a token that is not found: what the module sees, and for SoftHSM2 which configuration it read', () => {
  it('a SoftHSM2 profile with SOFTHSM2_CONF unset (a fresh machine): the configuration read, how to point at another, and no "custos hsm init"', () => {
    const fresh = custos(ws, ['inventory', '--hsm', 'ghost'], {
      conf: null,
      env: { COLUMNS: undefined },
    });
    expectUserError(
      fresh,
      6,
      /no token labelled "PAYMENTS-DR" in \/usr\/lib\/softhsm\/libsofthsm2\.so/,
    );
    const text = fresh.stderr;
    expect(text).toMatch(/^custos: {3}the module sees/m);
    expect(text).toMatch(
      /^custos: {3}SoftHSM2 read \/etc\/softhsm\/softhsm2\.conf \(SOFTHSM2_CONF is not set\)/m,
    );
    expect(text).toMatch(
      /^custos: hint: check token: in custos\.yaml against the labels above; if the token is in another SoftHSM2 store, point at that store's file: export SOFTHSM2_CONF=\/path\/to\/softhsm2\.conf$/m,
    );
    expect(text).not.toMatch(/custos hsm init/);
  });

  it('with SOFTHSM2_CONF set: the labels and serials the module sees, and the file it read', () => {
    const r = at80(['inventory', '--hsm', 'ghost']);
    expectUserError(r, 6, /E_TOKEN_NOT_FOUND/);
    const text = r.stderr;
    expect(text).toMatch(
      /^custos: {3}the module sees: "[a-z-]+" \(serial [0-9a-f]+\), "[a-z-]+" \(serial [0-9a-f]+\)$/m,
    );
    expect(text).toContain(`"vault" (serial `);
    expect(text).toContain(`"dr-site" (serial `);
    expect(text).toContain(
      `SoftHSM2 read ${ws.conf} (from SOFTHSM2_CONF), whose tokens are in ${join(ws.dir, 'tokens')}`,
    );
  });

  it('the embedded store: what it holds, and how to make the one named', () => {
    const dir = join(ws.dir, 'embedded');
    mkdirSync(dir);
    const env = { CUSTOS_PIN: newPin(ws), CUSTOS_SO_PIN: newPin(ws), COLUMNS: undefined };
    expectOk(custos(ws, ['hsm', 'init', 'primary'], { cwd: dir, env }));
    const r = custos(ws, ['inventory', '--hsm', 'nosuch'], { cwd: dir, env });
    expectUserError(r, 6, /no token labelled "nosuch" in the embedded store/);
    const text = r.stderr;
    expect(text).toMatch(/^custos: {3}the module sees: "primary" \(serial [0-9a-f]+\)$/m);
    expect(text).toMatch(
      /^custos: hint: use one of the tokens there, or create this one: custos hsm init nosuch$/m,
    );
  });
});

describe('in an 80×24 terminal', () => {
  const env = () => terminalEnv(ws);

  it("hsm init checks a PIN's length at the first entry and asks it again; two entries that differ are asked again; no line is wider than 80", async () => {
    const dir = join(ws.dir, 'init');
    mkdirSync(dir);
    const so = newPin(ws);
    const user = newPin(ws);
    tmux.start({ cwd: dir, env: env(), argv: [BIN, 'hsm', 'init', 'primary'] });
    await tmux.waitFor(/^\? new security officer PIN:/m, { timeout: SLOW });
    tmux.paste('123');
    tmux.keys('Enter');
    await tmux.waitFor(
      /^✘ the security officer PIN must have 4 to 255 characters \(this one has 3\)$/m,
    );
    // asked again at once: not after three more entries
    expect(tmux.screen()).not.toMatch(/repeat the security officer PIN/);
    await tmux.waitFor(/^✘ .*\n\? new security officer PIN:/m);
    tmux.paste(so);
    tmux.keys('Enter');
    await tmux.waitFor(/^\? repeat the security officer PIN:/m);
    tmux.paste(`${so}x`);
    tmux.keys('Enter');
    await tmux.waitFor(/^✘ the two entries differ: type the new security officer PIN again$/m);
    await tmux.waitFor(/^✘ the two entries differ.*\n\? new security officer PIN:/m);
    tmux.paste(so);
    tmux.keys('Enter');
    await tmux.waitFor(/^\? repeat the security officer PIN:/m);
    tmux.paste(so);
    tmux.keys('Enter');
    await tmux.waitFor(/^\? new user PIN:/m);
    tmux.paste(user);
    tmux.keys('Enter');
    await tmux.waitFor(/^\? repeat the user PIN:/m);
    tmux.paste(user);
    tmux.keys('Enter');
    const screen = await tmux.waitFor(/^created token "primary" \(serial [0-9a-f]+\)/m, {
      timeout: SLOW,
    });
    expect(await tmux.exitStatus()).toBe(0);
    expect(screen).not.toContain(so);
    expect(screen).not.toContain(user);
    expect(tmux.wideLines()).toEqual([]);
    ws.runs.push({
      args: ['hsm', 'init', '(terminal)'],
      status: 0,
      stdout: tmux.screen(),
      stderr: '',
    });
  });

  it("restore asks the target's PIN (a wrong one: the hint says it was the PIN typed) and shows every key in 80 columns", async () => {
    const shares = ['hale-llp', 'lindqvist', 'ciso'].flatMap((id) => [
      '--share',
      `vault.bundle.shares/${id}.share`,
      '--identity',
      custodians.find((c) => c.id === id)?.identity as string,
    ]);
    tmux.start({
      cwd: ws.dir,
      env: env(),
      argv: [BIN, 'restore', '--bundle', 'vault.bundle', '--hsm', 'typed', ...shares],
    });
    await tmux.waitFor(/^\? PIN for token "dr-site":/m, { timeout: SLOW });
    tmux.paste(`${target.pin}-not`);
    tmux.keys('Enter');
    expect(await tmux.exitStatus()).toBe(6);
    const failed = tmux.screen().replace(/\ncustos: {5,}/g, ' ');
    expect(failed).toMatch(
      /^custos: hint: the PIN typed was wrong: find the right PIN before trying again \(each wrong PIN counts towards locking the token\)$/m,
    );
    expect(failed).not.toMatch(/PIN source/);
    expect(tmux.wideLines()).toEqual([]);

    tmux.start({
      cwd: ws.dir,
      env: env(),
      argv: [BIN, 'restore', '--bundle', 'vault.bundle', '--hsm', 'typed', ...shares],
    });
    await tmux.waitFor(/^\? PIN for token "dr-site":/m, { timeout: SLOW });
    tmux.paste(target.pin);
    tmux.keys('Enter');
    const screen = await tmux.waitFor(/^every key matches bundle/m, { timeout: SLOW });
    expect(await tmux.exitStatus()).toBe(0);
    expect(screen).toMatch(/^token "dr-site": 4 keys restored/m);
    expect(screen).toMatch(/proved by: check value, same wrapped bytes/);
    expect(screen).not.toMatch(/rewrap|SPKI/);
    expect(tmux.wideLines()).toEqual([]);
    expect(screen).not.toContain(target.pin);
    ws.runs.push({ args: ['restore', '(terminal)'], status: 0, stdout: tmux.screen(), stderr: '' });
  });
});

describe('secrets', () => {
  it('no PIN, identity or share value appears in any output', () => {
    expectNoSecrets(ws);
    expect(readFileSync(join(ws.dir, '.custos', 'audit.jsonl'), 'utf8')).toContain(
      '"op":"restore"',
    );
  });
});
