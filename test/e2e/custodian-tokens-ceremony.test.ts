/**
 * A quorum ceremony at an 80×24 terminal whose custodians hold their keys on tokens (one SoftHSM2
 * token each): each gives the path of their token identity file, is told to insert the token, and
 * types its PIN when their share is opened. A wrong PIN is said and asked again, and counts
 * against nobody's share.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  MODULE,
  TIMEOUT,
  cleanup,
  custos,
  expectOk,
  json,
  p11,
  terminalEnv,
  type Custodian,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { backupArgs, tokenCustodians, type TokenCustodians } from './scenarios.js';
import { SLOW, Tmux } from './tmux.js';

let ws: Workspace;
let tmux: Tmux;
let dr: TokenRef;
let ca: TokenRef;
let cb: TokenRef;
let dd: Custodian;

const WHO = 'Who is giving their share now?';
const HOW = (id: string) => `${id}: how will you give your age identity?`;
const TOKEN_FILE = (id: string) => `${id}: path of your token identity file (Esc: back)`;
const SHARE = (id: string) => `${id}: path of your share file (Esc: back)`;

beforeAll(() => {
  let recipients: TokenCustodians['recipients'];
  ({ ws, dr, ca, cb, dd, recipients } = tokenCustodians('custodian-ceremony', 'auto.yaml'));
  tmux = new Tmux(ws.dir, { width: 80, height: 24 });
  // the same profiles, with the custodian tokens' PINs typed at the terminal
  writeFileSync(
    join(ws.dir, 'custos.yaml'),
    [
      'hsms:',
      ...[
        ['vault', 'env:PIN_VAULT'],
        ['dr', 'env:PIN_DR'],
        ['ca', 'prompt'],
        ['cb', 'prompt'],
      ].flatMap(([name, pin]) => [
        `  ${name}:`,
        `    module: ${MODULE}`,
        `    token: ${name}`,
        `    pin: ${pin}`,
      ]),
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(ws.dir, 'policy.yaml'),
    [
      'threshold: 2',
      'custodians:',
      `  - { id: ca, name: Hale LLP, recipient: "${recipients.ca}" }`,
      `  - { id: cb, name: Okafor Law, recipient: "${recipients.cb}" }`,
      `  - { id: dd, name: Lind, recipient: ${dd.recipient} }`,
      '',
    ].join('\n'),
  );
  expectOk(custos(ws, ['--config', 'auto.yaml', ...backupArgs('vault', 'v.bundle')]));
}, TIMEOUT);

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

/** Gives a token custodian's share: the way, the token identity file, the share, the PIN. */
async function tokenTurn(id: string, pin: string, mistake?: string): Promise<void> {
  await tmux.select(WHO, `${id} — `);
  await tmux.select(HOW(id), 'My hardware token');
  await tmux.waitFor(new RegExp(`^${id}: insert your token now\\.`, 'm'));
  await tmux.answer(TOKEN_FILE(id), `${id}.token-identity`);
  await tmux.answer(SHARE(id), `v.bundle.shares/${id}.share`);
  const prompt = new RegExp(`^\\? PIN of token "${id}" \\(key "custodian"\\):`, 'gm');
  await tmux.waitFor(prompt, { timeout: SLOW });
  if (mistake !== undefined) {
    tmux.type(mistake);
    tmux.keys('Enter');
    await tmux.waitFor(/^\? What now\?/m, { timeout: SLOW });
    const now = tmux.visible().replace(/\n {4,}/g, ' ');
    expect(now).toMatch(new RegExp(`^✘ not accepted: wrong PIN for token "${id}": `, 'm'));
    expect(now).toMatch(/^ {2}what to do: type the PIN of this token again, with care/m);
    await tmux.select('What now?', 'Give another identity');
    await tmux.answer(TOKEN_FILE(id), `${id}.token-identity`);
    // the share file is taken again as given; only the PIN is asked (a PIN prompt, once
    // answered, leaves no line: the one on screen is the new one)
    await tmux.waitFor(prompt, { timeout: SLOW });
  }
  tmux.type(pin);
  tmux.keys('Enter');
}

describe('a ceremony with token custodians at 80×24', () => {
  it('each custodian inserts their token and types its PIN; a wrong PIN is said and asked again; the quorum restores', async () => {
    const opened = json(
      custos(ws, [
        '--config',
        'auto.yaml',
        'ceremony',
        'open',
        '--bundle',
        'v.bundle',
        '--purpose',
        'restore',
        '--out',
        't.ceremony',
        '--json',
      ]),
    );
    const nonce = opened.ceremony.nonce as string;
    const host = readFileSync(join(ws.dir, '.custos', 'ceremonies', nonce, 'host.key'), 'utf8');
    for (const l of host.split('\n'))
      if (/^(AGE-SECRET-KEY-1|ed25519-pkcs8: )/.test(l))
        ws.secrets.add(l.replace(/^ed25519-pkcs8: /, ''));
    const args = ['ceremony', 'run', 't.ceremony', '--hsm', 'dr'];
    tmux.start({
      cwd: ws.dir,
      env: terminalEnv(ws),
      argv: [BIN, ...args],
    });
    await tmux.waitFor(/^\? Who is giving their share now\?/m, { timeout: SLOW });
    await tokenTurn('ca', ca.pin, 'not-the-pin');
    await tmux.waitFor(/^✔ ca's share is accepted \(1 of 2\)\.$/m, { timeout: SLOW });
    await tokenTurn('cb', cb.pin);
    await tmux.waitFor(/^✔ cb's share is accepted \(2 of 2\)\.$/m, { timeout: SLOW });
    await tmux.waitFor(/^\? Restore all 1 keys into "dr" now\? \(y\/N\)/m, { timeout: SLOW });
    tmux.type('y');
    tmux.keys('Enter');
    const status = await tmux.exitStatus();
    const screen = tmux.screen();
    ws.runs.push({ args: [...args, '(terminal)'], status, stdout: screen, stderr: '' });
    expect(status, screen).toBe(0);
    expect(screen).toMatch(new RegExp(`^ceremony ${nonce} closed \\(quorum: ca, cb\\)`, 'm'));
    expect(tmux.wideLines(), `lines wider than 80 columns in:\n${screen}`).toEqual([]);
    for (const secret of [ca.pin, cb.pin, 'not-the-pin']) expect(screen).not.toContain(secret);
    expect(p11(ws, dr, ['--list-objects'])).toContain('payments');
    // the wrong PIN was not put against the share
    const entries = json<any[]>(
      custos(ws, ['audit', 'show', '.custos/audit.jsonl', '--ceremony', nonce, '--json']),
    ).filter((e) => e.op.startsWith('submission-'));
    expect(entries.map((e) => `${e.op}:${e.detail.custodian}`)).toEqual([
      'submission-accepted:ca',
      'submission-accepted:cb',
    ]);
  });
});
