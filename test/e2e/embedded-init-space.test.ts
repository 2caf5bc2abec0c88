/**
 * `hsm init` with too little room to write (a file-size limit, as a full disk would be). SoftHSM
 * 2.6 does not check its writes and reports the token made; custos reads the store again, finds
 * the token missing, removes what was written and says so. Its own softhsm2.conf is written whole
 * or not at all. The limit is set with prlimit on the real CLI; what is left is read with
 * softhsm2-util and the file system.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BIN,
  TIMEOUT,
  cleanup,
  custos,
  expectOk,
  newPin,
  toolEnv,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let pins: Record<string, string>;

beforeAll(() => {
  ws = workspace('embedded-init-space');
  pins = { CUSTOS_PIN: newPin(ws), CUSTOS_SO_PIN: newPin(ws) };
});

afterAll(() => cleanup(ws));

/** `custos hsm init LABEL` in a fresh directory, no file written past `bytes` bytes. */
function initLimited(dir: string, label: string, bytes: number) {
  mkdirSync(dir, { recursive: true });
  return spawnSync('prlimit', [`--fsize=${bytes}`, BIN, 'hsm', 'init', label], {
    cwd: dir,
    env: { ...toolEnv(ws), NO_COLOR: '1', ...pins },
    encoding: 'utf8',
  });
}

/** Labels of the initialised tokens in a store, as softhsm2-util lists them. */
function storedLabels(dir: string): string[] {
  const r = spawnSync('softhsm2-util', ['--show-slots'], {
    env: { ...toolEnv(ws), SOFTHSM2_CONF: join(dir, '.custos', 'softhsm2.conf') },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/^\s+Label:\s+(\S.*?)\s*$/gm)].map((m) => m[1] as string);
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();

describe('hsm init with too little room to write', () => {
  it('a token SoftHSM could not write whole is named, removed, and the re-run makes it', () => {
    const dir = join(ws.dir, 'cut-token');
    // Room for softhsm2.conf (about 170 bytes), not for token.object (320).
    const r = initLimited(dir, 'vault', 250);
    expect(r.status, r.stderr).toBe(6);
    expect(r.stderr).toMatch(
      /^custos: error: SoftHSM said token "vault" was made, but its store read again does not hold it whole; token "vault" was removed again, so nothing was left behind \[E_HSM\]$/m,
    );
    expect(r.stderr).toMatch(/^custos: hint: check the free space and any file-size limit/m);
    expect(r.stdout).toBe('');
    expect(filesUnder(join(dir, '.custos'))).toEqual(['softhsm2.conf']);
    expect(storedLabels(dir)).toEqual([]);
    const again = custos(ws, ['hsm', 'init', 'vault'], { cwd: dir, env: pins });
    expectOk(again);
    expect(storedLabels(dir)).toEqual(['vault']);
  });

  it('a softhsm2.conf that cannot be written whole is not left half-written', () => {
    const dir = join(ws.dir, 'cut-config');
    const r = initLimited(dir, 'vault', 100);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /^custos: error: could not write the embedded store's configuration \S+softhsm2\.conf \(EFBIG\) \[E_FILE\]$/m,
    );
    expect(existsSync(join(dir, '.custos'))).toBe(true);
    expect(filesUnder(join(dir, '.custos'))).toEqual([]);
  });
});
