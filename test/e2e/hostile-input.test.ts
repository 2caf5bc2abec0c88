/**
 * Hostile input through the real CLI, without an HSM: a FIFO or /dev/zero given as a share or
 * bundle is
 * refused at once (it hung); a bundle whose id was changed is named by `shares verify` (it told the
 * custodian their share was foreign); `audit show` prints nothing raw from the log; a YAML bomb
 * gets
 * custos's own message; shares written where anyone can replace them are warned about.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendAudit } from '../../src/io/audit-log.js';
import {
  BIN,
  TIMEOUT,
  cleanup,
  custos,
  describeRun,
  expectNoSecrets,
  expectOk,
  expectUserError,
  makeCustodians,
  writePolicy,
  type Workspace,
  workspace,
} from './helpers.js';
import { backupOnDisk, type BackupOnDisk } from '../unit/on-disk.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let disk: BackupOnDisk;
beforeAll(async () => {
  ws = workspace('hostile');
  disk = await backupOnDisk({ threshold: 2, total: 3 });
  for (const s of disk.identities) ws.secrets.add(s);
});
afterAll(() => cleanup(ws));

/**
 * What no output may contain raw: C0 (but the line feed) and C1 controls, bidi marks, separators.
 */
const RAW =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const ENGINE =
  /Unexpected token|JSON|YAMLParseError|stack|decode error|asn1|Invalid time value|NaN/;

describe('a FIFO or a device given as an input file', () => {
  const run = (args: string[]) =>
    spawnSync(BIN, args, {
      cwd: disk.dir,
      encoding: 'utf8',
      timeout: 20_000,
      env: { PATH: process.env.PATH ?? '', HOME: ws.dir, NO_COLOR: '1' },
    });

  it('is refused at once, named, as a share or as a bundle (custos used to hang on both)', () => {
    expect(spawnSync('mkfifo', [join(disk.dir, 'pipe')]).status).toBe(0);
    const cases: [string[], RegExp][] = [
      [
        [
          'shares',
          'verify',
          '--bundle',
          'b.bundle',
          '--share',
          'pipe',
          '--identity',
          disk.identityPaths[0] as string,
        ],
        /share file \S*\/pipe is a named pipe \(FIFO\), not a regular file \[E_FILE\]/,
      ],
      [
        [
          'shares',
          'verify',
          '--bundle',
          'b.bundle',
          '--share',
          '/dev/zero',
          '--identity',
          disk.identityPaths[0] as string,
        ],
        /share file \/dev\/zero is a device, not a regular file \[E_FILE\]/,
      ],
      [
        [
          'shares',
          'verify',
          '--bundle',
          'pipe',
          '--share',
          disk.sharePaths[0] as string,
          '--identity',
          disk.identityPaths[0] as string,
        ],
        /bundle \S*\/pipe is a named pipe \(FIFO\), not a regular file \[E_FILE\]/,
      ],
      [
        [
          'shares',
          'verify',
          '--bundle',
          '/dev/zero',
          '--share',
          disk.sharePaths[0] as string,
          '--identity',
          disk.identityPaths[0] as string,
        ],
        /bundle \/dev\/zero is a device, not a regular file \[E_FILE\]/,
      ],
      [
        [
          'shares',
          'verify',
          '--bundle',
          'b.bundle',
          '--share',
          disk.sharePaths[0] as string,
          '--identity',
          'pipe',
        ],
        /identity file \S*\/pipe is a named pipe/,
      ],
    ];
    for (const [args, message] of cases) {
      const started = Date.now();
      const r = run(args);
      expect(r.error, `custos ${args.join(' ')} hung`).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(15_000);
      expectUserError({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }, 3, message);
    }
  });
});

describe('shares verify with a bundle whose id was changed', () => {
  it('names the bundle as damaged (E_BUNDLE_TAMPERED) and says the share is good; the intact bundle verifies', () => {
    const id = disk.backup.body.bundleId;
    const changed = `${id.slice(0, 5)}${id[5] === 'a' ? 'b' : 'a'}${id.slice(6)}`;
    writeFileSync(
      join(disk.dir, 'flipped.bundle'),
      readFileSync(disk.bundlePath, 'utf8').replace(
        `"bundleId": "${id}"`,
        `"bundleId": "${changed}"`,
      ),
    );
    const r = custos(
      ws,
      [
        'shares',
        'verify',
        '--bundle',
        'flipped.bundle',
        '--share',
        'c2-llp.share',
        '--identity',
        'c2-llp.key',
      ],
      { cwd: disk.dir },
    );
    const line = expectUserError(
      r,
      4,
      /hint: the shares are not at fault: use an intact copy of flipped\.bundle/,
    );
    expect(line).toBe(
      `custos: error: flipped.bundle has been changed since the backup: it says bundle ${changed}, but shares made by this very backup name bundle ${id} [E_BUNDLE_TAMPERED]`,
    );
    expect(r.stderr).not.toMatch(/another backup|foreign/);
    expectOk(
      custos(
        ws,
        [
          'shares',
          'verify',
          '--bundle',
          'b.bundle',
          '--share',
          'c2-llp.share',
          '--identity',
          'c2-llp.key',
        ],
        { cwd: disk.dir },
      ),
    );
  });
});

describe('audit show', () => {
  it('prints nothing raw from the log: escape sequences, U+202E and line separators are shown escaped, in the table and in --json', () => {
    const hostile =
      'x\u001b]0;pwned\u0007\u001b[2J\u202eexe.txt\u2028forged: every key matches\u0085';
    const dir = join(ws.dir, 'audit');
    mkdirSync(dir);
    appendAudit(join(dir, 'log.jsonl'), {
      op: `restore${hostile}`,
      actor: `mallory${hostile}`,
      outcome: 'ok',
      code: `E_X${hostile}`,
      detail: { label: hostile, keys: [hostile, 'b'] },
    });
    for (const env of [{ NO_COLOR: '1' }, { NO_COLOR: undefined, FORCE_COLOR: '1' }]) {
      const r = expectOk(custos(ws, ['audit', 'show', 'log.jsonl'], { cwd: dir, env }));
      expect(r.stdout + r.stderr, describeRun(r)).not.toMatch(RAW);
      expect(r.stdout).toContain(
        'mallory x\\x1b]0;pwned\\x07\\x1b[2J\\u{202e}exe.txt\\u{2028}forged'.replace(' ', ''),
      );
    }
    const j = expectOk(custos(ws, ['audit', 'show', 'log.jsonl', '--json'], { cwd: dir }));
    expect(j.stdout).not.toMatch(RAW);
    expect(j.stdout).toContain('\\u202eexe.txt\\u2028forged');
    expect(JSON.parse(j.stdout)[0].actor).toBe(`mallory${hostile}`);
  });
});

describe('policy files that are bombs', () => {
  it("a nesting bomb and 50,000 keys get custos's own message, in well under a second", () => {
    writeFileSync(join(ws.dir, 'deep.yaml'), `${'['.repeat(10_000)}${']'.repeat(10_000)}\n`);
    writeFileSync(
      join(ws.dir, 'wide.yaml'),
      `${Array.from({ length: 50_000 }, (_, i) => `k${i}: 1`).join('\n')}\n`,
    );
    for (const [file, message] of [
      ['deep.yaml', 'deep.yaml:1: nests deeper than 32 levels'],
      [
        'wide.yaml',
        'wide.yaml:20001: has more than 20000 entries, more than a custos YAML file can have',
      ],
    ]) {
      const started = Date.now();
      const r = custos(ws, ['policy', 'check', file as string]);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(expectUserError(r, 3)).toBe(`custos: error: ${message} [E_POLICY]`);
      expect(r.stderr).not.toMatch(ENGINE);
    }
  });
});

describe('share files written where anyone can replace them', () => {
  it('domain init warns, naming the world-writable directory; a private one gets no warning', () => {
    const domainInit = (out: string, sharesDir: string) =>
      expectOk(
        custos(ws, [
          'domain',
          'init',
          '--policy',
          'domain-policy.yaml',
          '--out',
          out,
          '--shares-dir',
          sharesDir,
        ]),
      );
    const custodians = makeCustodians(ws, ['ana', 'ben']);
    writePolicy(ws, 'domain-policy.yaml', 2, custodians);
    mkdirSync(join(ws.dir, 'open', 'shares'), { recursive: true });
    chmodSync(join(ws.dir, 'open'), 0o777);
    const r = domainInit('open.domain', 'open/shares');
    expect(r.stderr).toContain(
      `custos: warning: share files were written to ${join(ws.dir, 'open', 'shares')}, where others on this host can replace or remove them (${join(ws.dir, 'open')} above it is writable by anyone and not sticky)`,
    );
    chmodSync(join(ws.dir, 'open'), 0o700);
    const quiet = domainInit('private.domain', 'private/shares');
    expect(quiet.stderr).not.toMatch(/warning/);
  });

  it('leaks no secret', () => expectNoSecrets(ws));
});
