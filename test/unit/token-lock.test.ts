/**
 * The host-local lock (io/lock.ts) and the token lock's key (io/token-lock.ts): one lock per token
 * identity, tokens with all-zero serials told apart by model and maker, a lock whose holder is gone
 * cleared at once, a live one waited for and then refused with E_BUSY naming its holder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CustosError } from '../../src/core/errors.js';
import { acquireLock, ownerPath } from '../../src/io/lock.js';
import { lockToken, lockWaitMs, shellQuote, tokenLockPlace } from '../../src/io/token-lock.js';

const dir = mkdtempSync(join(tmpdir(), 'custos-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const token = (over: Partial<{ label: string; serial: string; model: string }> = {}) => ({
  module: '/usr/lib/softhsm/libsofthsm2.so',
  identity: {
    label: 'dr',
    serial: '0000000000000000',
    model: 'NSS 3',
    manufacturer: 'Mozilla Foundation',
    ...over,
  },
});

describe('the token lock', () => {
  test('is keyed by module and token identity, in .custos/locks of the working directory', () => {
    const a = tokenLockPlace(dir, token());
    expect(a.lockPath.startsWith(join(resolve(dir), '.custos', 'locks') + '/')).toBe(true);
    expect(tokenLockPlace(dir, token()).lockPath).toBe(a.lockPath);
    // All-zero serials: the model (and maker) tell tokens apart.
    expect(tokenLockPlace(dir, token({ model: 'NSS 4' })).lockPath).not.toBe(a.lockPath);
    expect(tokenLockPlace(dir, token({ label: 'dr2' })).lockPath).not.toBe(a.lockPath);
    expect(tokenLockPlace(dir, token({ serial: '4cb774a39765c413' })).lockPath).not.toBe(
      a.lockPath,
    );
    expect(tokenLockPlace(dir, { ...token(), module: '/usr/lib/other.so' }).lockPath).not.toBe(
      a.lockPath,
    );
  });

  test('a second taker in this process is refused at once with E_BUSY when it may not wait', () => {
    const held = lockToken(dir, token(), 'restore', 0, () => {});
    try {
      let e: unknown;
      try {
        lockToken(dir, token(), 'copy', 0, () => {});
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(CustosError);
      expect((e as CustosError).code).toBe('E_BUSY');
      expect((e as CustosError).message).toMatch(
        new RegExp(
          `^token "dr" is in use by another custos run \\(restore, pid ${process.pid} on this host, since [\\d:]+ UTC\\)$`,
        ),
      );
    } finally {
      held.lock.release();
    }
    expect(existsSync(held.place.lockPath)).toBe(false);
    expect(existsSync(ownerPath(held.place.lockPath))).toBe(false);
  });

  test('a lock whose holder on this host is gone is cleared at once', () => {
    const path = join(dir, 'dead.lock');
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    // As a process killed with SIGKILL leaves it: the directory and its owner file.
    const lock = acquireLock(path, { command: 'x', waitMs: 0, busy: () => new Error('busy') });
    writeFileSync(
      ownerPath(path),
      JSON.stringify({ ...lock.owner, pid: dead, started: '1', host: hostname() }),
    );
    const started = Date.now();
    const again = acquireLock(path, {
      command: 'y',
      waitMs: 0,
      busy: () => new Error('still busy'),
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(again.owner.command).toBe('y');
    again.release();
  });

  test('a live holder in another process is waited for, saying so once, until it lets go', async () => {
    const path = join(dir, 'live.lock');
    const script = `
      const { acquireLock } = await import(${JSON.stringify(resolve(__dirname, '../../dist/io/lock.js'))});
      const l = acquireLock(${JSON.stringify(path)}, { command: 'restore', waitMs: 0, busy: () => new Error('busy') });
      console.log('held');
      setTimeout(() => { l.release(); }, 600);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((r) => child.stdout.on('data', () => r()));
    const waits: string[] = [];
    const lock = acquireLock(path, {
      command: 'copy',
      waitMs: 20_000,
      onWait: (o) => waits.push(`${o?.command} ${o?.pid}`),
      busy: () => new Error('busy'),
    });
    expect(waits).toEqual([`restore ${child.pid}`]);
    lock.release();
    await new Promise((r) => child.on('exit', r));
  });

  test('CUSTOS_LOCK_WAIT is whole seconds', () => {
    expect(lockWaitMs({})).toBe(300_000);
    expect(lockWaitMs({ CUSTOS_LOCK_WAIT: '0' })).toBe(0);
    expect(lockWaitMs({ CUSTOS_LOCK_WAIT: '12' })).toBe(12_000);
    expect(() => lockWaitMs({ CUSTOS_LOCK_WAIT: '1.5' })).toThrow(/whole number of seconds/);
  });

  test('commands name paths and labels as a shell reads them', () => {
    expect(shellQuote('/usr/lib/softhsm/libsofthsm2.so')).toBe('/usr/lib/softhsm/libsofthsm2.so');
    expect(shellQuote('custos run 0011')).toBe("'custos run 0011'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
