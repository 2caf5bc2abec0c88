/**
 * Appending to the audit log (src/io/audit-log.ts) on a real file system: the chain it builds,
 * file and directory modes, refusal of a damaged tail, the lock under two concurrent processes,
 * and clearing a lock left by a dead process. Hashes are recomputed here with node:crypto.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENESIS, type AuditEntry } from '../../src/core/audit/entry.js';
import { checkLog } from '../../src/core/audit/check.js';
import { appendAudit, readLog, readLogBytes } from '../../src/io/audit-log.js';
import { freshSigner, verifyEd25519 } from '../../src/crypto/ed25519.js';
import { catchCustos } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST_MODULE = join(ROOT, 'dist', 'io', 'audit-log.js');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

let dir: string;
let n = 0;
/** A fresh log path in a directory that does not exist yet. */
function newLog(): string {
  n++;
  return join(dir, `case-${n}`, 'nested', 'audit.jsonl');
}

function lines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

function verify(path: string) {
  return checkLog(readFileSync(path), verifyEd25519, (d) => sha256(d));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-audit-log-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('appendAudit', () => {
  test('appends build a chain that checkLog accepts, each line linking to the one before', () => {
    const path = newLog();
    const signer = freshSigner();
    const written: AuditEntry[] = [];
    written.push(
      appendAudit(path, {
        op: 'backup',
        actor: 'alice',
        outcome: 'ok',
        artifacts: { bundle: sha256('b') },
      }),
    );
    written.push(
      appendAudit(
        path,
        {
          op: 'ceremony-open',
          actor: 'bob',
          outcome: 'ok',
          ceremony: 'c'.repeat(32),
          detail: { signingKey: signer.publicKey.toString('base64') },
        },
        signer,
      ),
    );
    written.push(
      appendAudit(
        path,
        {
          op: 'ceremony-submit',
          actor: 'carol',
          outcome: 'refused',
          code: 'E_SHARE_REJECTED',
          ceremony: 'c'.repeat(32),
        },
        signer,
      ),
    );
    written.push(
      appendAudit(path, {
        op: 'inventory',
        actor: 'dave',
        outcome: 'ok',
        detail: { keys: 3, tokens: ['a', 'b'] },
      }),
    );
    const ls = lines(path);
    expect(ls).toHaveLength(4);
    ls.forEach((line, i) => {
      const e = JSON.parse(line);
      expect(e.seq).toBe(i + 1);
      expect(e.prev).toBe(i === 0 ? GENESIS : sha256(ls[i - 1] as string));
      expect(e).toEqual(written[i]);
      expect(Date.now() - Date.parse(e.time)).toBeLessThan(60_000);
    });
    const r = verify(path);
    expect(r.problems).toEqual([]);
    expect(r.signed).toBe(2);
    expect(r.head).toBe(sha256(ls[3] as string));
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(readLog(path)).toBe(readFileSync(path, 'utf8'));
  });

  test('the log is created 0600 and its new directories 0700', () => {
    const path = newLog();
    appendAudit(path, { op: 'x', actor: 'a', outcome: 'ok' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
    expect(statSync(dirname(dirname(path))).mode & 0o777).toBe(0o700);
  });

  test('a last line longer than the tail it first reads, in a log larger than that', () => {
    const path = newLog();
    for (let i = 0; i < 300; i++)
      appendAudit(path, {
        op: 'x',
        actor: 'a',
        outcome: 'ok',
        detail: { pad: 'p'.repeat(300), i },
      });
    appendAudit(path, {
      op: 'big',
      actor: 'a',
      outcome: 'ok',
      detail: { pad: 'q'.repeat(200_000) },
    });
    const e = appendAudit(path, { op: 'after', actor: 'a', outcome: 'ok' });
    const ls = lines(path);
    expect(e.seq).toBe(302);
    expect(e.prev).toBe(sha256(ls[300] as string));
    expect(verify(path).problems).toEqual([]);
  });

  const damaged: [string, (text: string) => string, RegExp][] = [
    ['a truncated last line', (t) => t.slice(0, -15), /does not end with a newline/],
    ['a last entry without its newline', (t) => t.slice(0, -1), /does not end with a newline/],
    ['a last line that is not an entry', (t) => `${t}garbage\n`, /not an entry \(not JSON\)/],
    ['an empty last line', (t) => `${t}\n`, /not an entry \(empty line\)/],
    [
      'a re-spaced last entry',
      (t) => t.replace(/"op":"x"(?=[^\n]*\n$)/, '"op": "x"'),
      /not in canonical form/,
    ],
  ];
  test.each(damaged)('refuses a log with %s and leaves it unchanged', (_, damage, message) => {
    const path = newLog();
    appendAudit(path, { op: 'x', actor: 'a', outcome: 'ok' });
    appendAudit(path, { op: 'x', actor: 'a', outcome: 'ok' });
    const text = damage(readFileSync(path, 'utf8'));
    writeFileSync(path, text);
    const err = catchCustos(
      () => appendAudit(path, { op: 'y', actor: 'a', outcome: 'ok' }),
      'E_AUDIT_TAMPERED',
    );
    expect(err.message).toMatch(message);
    expect(err.message).toContain(path);
    expect(err.hint).toContain(`custos audit verify ${path}`);
    expect(readFileSync(path, 'utf8')).toBe(text);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test('a file-system failure is E_AUDIT_WRITE naming the log and the cause', () => {
    const blocker = join(dir, `blocker-${++n}`);
    writeFileSync(blocker, 'a file, not a directory');
    const path = join(blocker, 'audit.jsonl');
    const err = catchCustos(
      () => appendAudit(path, { op: 'x', actor: 'a', outcome: 'ok' }),
      'E_AUDIT_WRITE',
    );
    expect(err.message).toBe(`could not append to the audit log ${path} (ENOTDIR)`);
    expect(err.hint).toBeTruthy();
  });

  test('readLog of a missing file is E_FILE', () => {
    const err = catchCustos(() => readLogBytes(join(dir, 'nope.jsonl')), 'E_FILE');
    expect(err.message).toMatch(/audit log .*nope\.jsonl does not exist/);
  });
});

describe('the lock', () => {
  test('two processes appending 40 entries each, at once, leave one intact chain of 81', async () => {
    expect(
      existsSync(DIST_MODULE),
      `${DIST_MODULE} is missing: build first (npx tsc -p tsconfig.json)`,
    ).toBe(true);
    const path = newLog();
    appendAudit(path, { op: 'start', actor: 'test', outcome: 'ok' });
    const go = join(dirname(path), 'go');
    const script = (who: string) => `
      import { appendAudit } from ${JSON.stringify(DIST_MODULE)};
      import { existsSync } from 'node:fs';
      process.stdout.write('ready\\n');
      while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
      for (let i = 0; i < 40; i++) appendAudit(${JSON.stringify(path)}, { op: 'append', actor: ${JSON.stringify(who)}, outcome: 'ok', detail: { i } });
    `;
    const children = ['a', 'b'].map((who) =>
      spawn(process.execPath, ['--input-type=module', '-e', script(who)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const stderr = ['', ''];
    children.forEach((c, i) =>
      c.stderr.on('data', (d: Buffer) => {
        stderr[i] += d.toString();
      }),
    );
    await Promise.all(
      children.map((c) => new Promise<void>((res) => c.stdout.once('data', () => res()))),
    );
    writeFileSync(go, '');
    const codes = await Promise.all(
      children.map((c) => new Promise<number | null>((res) => c.on('exit', (code) => res(code)))),
    );
    expect(codes, stderr.join('\n')).toEqual([0, 0]);

    const r = verify(path);
    expect(r.problems).toEqual([]);
    expect(r.entries.map((e) => e.seq)).toEqual(Array.from({ length: 81 }, (_, i) => i + 1));
    for (const who of ['a', 'b']) {
      expect(r.entries.filter((e) => e.actor === who).map((e) => e.detail?.i)).toEqual(
        Array.from({ length: 40 }, (_, i) => i),
      );
    }
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test('a lock left by a dead process is cleared', () => {
    const path = newLog();
    appendAudit(path, { op: 'x', actor: 'a', outcome: 'ok' });
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    expect(() => process.kill(dead, 0)).toThrow();
    writeFileSync(`${path}.lock`, `${dead}\n`);
    const started = Date.now();
    const e = appendAudit(path, { op: 'y', actor: 'a', outcome: 'ok' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(e.seq).toBe(2);
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(verify(path).problems).toEqual([]);
  });

  test('a lock held by a live process is waited for, until it is released', async () => {
    expect(
      existsSync(DIST_MODULE),
      `${DIST_MODULE} is missing: build first (npx tsc -p tsconfig.json)`,
    ).toBe(true);
    const path = newLog();
    appendAudit(path, { op: 'x', actor: 'a', outcome: 'ok' });
    // This (live) process holds the lock; a child appends, and must wait until the lock is removed.
    writeFileSync(`${path}.lock`, `${process.pid}\n`);
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
      import { appendAudit } from ${JSON.stringify(DIST_MODULE)};
      appendAudit(${JSON.stringify(path)}, { op: 'y', actor: 'child', outcome: 'ok' });
    `,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await new Promise((res) => setTimeout(res, 700));
    expect(lines(path), 'the child appended while the lock was held').toHaveLength(1);
    rmSync(`${path}.lock`);
    expect(await exited, stderr).toBe(0);
    expect(lines(path)).toHaveLength(2);
    expect(verify(path).problems).toEqual([]);
  });
});
