/**
 * Long lists of keys are summarised on a terminal and listed in full on request (--full), or
 * whenever stdout is not a terminal. A token of 60 keys, inventoried in a real terminal (tmux).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  BIN,
  ROOT,
  TIMEOUT,
  cleanup,
  custos,
  expectOk,
  initToken,
  profileFor,
  workspace,
  writeConfig,
  type Profile,
  type TokenRef,
} from './helpers.js';
import { SLOW, Tmux } from './tmux.js';

const ws = workspace('long-lists');
const profiles: Profile[] = [];
let token: TokenRef;
let tmux: Tmux;
const N = 60;

beforeAll(() => {
  token = initToken(ws, 'many');
  profileFor(ws, profiles, token);
  writeConfig(ws, profiles);
  // 60 AES keys through custos's own generate helper (one process, not 60 pkcs11-tool runs)
  const script = `
    const { Token } = await import(${JSON.stringify(join(ROOT, 'dist', 'hsm', 'token.js'))});
    const { generateSecretKey } = await import(${JSON.stringify(join(ROOT, 'dist', 'hsm', 'generate.js'))});
    const { finalizeAll } = await import(${JSON.stringify(join(ROOT, 'dist', 'hsm', 'module.js'))});
    const t = await Token.open({ module: '/usr/lib/softhsm/libsofthsm2.so', token: 'many' }, async () => process.env.PIN, true);
    for (let i = 0; i < ${N}; i++) generateSecretKey(t, { label: 'k-' + String(i).padStart(3, '0'), id: i.toString(16).padStart(4, '0'), keyType: 'AES', bytes: 32, extractable: true });
    t.close(); finalizeAll();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH, SOFTHSM2_CONF: ws.conf, PIN: token.pin },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(r.stderr);
  tmux = new Tmux(ws.dir);
}, TIMEOUT);

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

const env = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: ws.dir,
  LANG: 'C.UTF-8',
  NO_COLOR: '1',
  SOFTHSM2_CONF: ws.conf,
  ...ws.env,
});

describe('a list of more than 50 keys', () => {
  it('is summarised on a terminal: one row per kind of key with its count, and how to see them all', async () => {
    tmux.start({ cwd: ws.dir, env: env(), argv: [BIN, 'inventory', '--hsm', 'many'] });
    expect(await tmux.exitStatus(SLOW)).toBe(0);
    const screen = tmux.screen();
    expect(screen).toMatch(/│ secret\s+│ AES\s+│ 256\s+│ yes\s+│ yes\s+│ 60\s+│/);
    expect(screen).toMatch(
      /custos: 60 key objects, summarised on a terminal: --full lists each one, --json gives them all as JSON/,
    );
    expect(screen).not.toMatch(/k-037/);
  });

  it('is listed in full on a terminal with --full', async () => {
    tmux.start({ cwd: ws.dir, env: env(), argv: [BIN, 'inventory', '--hsm', 'many', '--full'] });
    expect(await tmux.exitStatus(SLOW)).toBe(0);
    // the last rows are on the screen (the first have scrolled away)
    expect(tmux.screen()).toMatch(/k-059/);
    expect(tmux.screen()).not.toMatch(/summarised/);
  });

  it('is listed in full when stdout is not a terminal (a pipe or a file)', () => {
    const r = expectOk(custos(ws, ['inventory', '--hsm', 'many']));
    for (let i = 0; i < N; i++) expect(r.stdout).toContain(`k-${String(i).padStart(3, '0')}`);
    expect(r.stderr).not.toMatch(/summarised/);
  });
});
