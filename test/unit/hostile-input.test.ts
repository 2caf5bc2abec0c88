/**
 * Hostile input files get a clear, typed refusal that names
 * the file at fault, quickly; output never carries a terminal escape from a file; a damaged bundle
 * is named as such, not blamed on its shares.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  ftruncateSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CustosError } from '../../src/core/errors.js';
import { parsePolicy } from '../../src/core/policy.js';
import { parseConfig } from '../../src/core/config.js';
import { parseShare } from '../../src/core/share.js';
import { evaluateShares } from '../../src/core/quorum.js';
import { exposedDirectories, readInputFile, refuseExisting } from '../../src/io/files.js';
import { parseEntryLine } from '../../src/core/audit/entry.js';
import { checkLog } from '../../src/core/audit/check.js';
import { sha256Hex } from '../../src/crypto/check-values.js';
import { appendAudit } from '../../src/io/audit-log.js';
import { jsonText } from '../../src/io/output.js';
import {
  decryptWithAny,
  encryptToRecipient,
  newIdentity,
  parseIdentityFile,
} from '../../src/crypto/age.js';
import { verifyEd25519 } from '../../src/crypto/ed25519.js';
import { shareIndex } from '../../src/crypto/shamir.js';
import {
  loadBundle,
  judgeShares,
  loadIdentities,
  openShares,
  requireQuorum,
} from '../../src/ops/shares.js';
import { verifyShare } from '../../src/ops/verify-share.js';
import { run as runShow } from '../../src/cli/audit/show.js';
import { catchCustos, catchCustosAsync } from './helpers.js';
import { makeBackup } from './fixtures.js';
import { backupOnDisk, capturingOutput, sealBody, testContext } from './on-disk.js';

const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'custos-hostile-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What no user-facing message may contain: the words of a JavaScript, JSON or YAML engine. */
const ENGINE =
  /Unexpected token|JSON|YAMLParseError|stack|decode error|asn1|Invalid time value|NaN|undefined|\bat position\b/;

describe('a FIFO, a device or a huge file is refused before it is read', () => {
  test('a named pipe with no writer is refused at once (it used to hang the open)', () => {
    const d = scratch();
    const fifo = join(d, 'share.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const started = Date.now();
    const e = catchCustos(() => readInputFile(fifo, 'share file'), 'E_FILE');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(e.message).toBe(`share file ${fifo} is a named pipe (FIFO), not a regular file`);
  });

  test('/dev/zero as a bundle is refused as a device (it used to be read without end)', () => {
    const e = catchCustos(() => readInputFile('/dev/zero', 'bundle'), 'E_FILE');
    expect(e.message).toBe('bundle /dev/zero is a device, not a regular file');
  });

  test('each kind of file has a size cap, checked before reading: a 300 MiB sparse bundle is E_BUNDLE_FORMAT', () => {
    const d = scratch();
    const big = join(d, 'big.bundle');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 300 * 1024 * 1024);
    closeSync(fd);
    const e = catchCustos(() => loadBundle(testContext(d), 'big.bundle'), 'E_BUNDLE_FORMAT');
    expect(e.message).toMatch(
      /^bundle .*big\.bundle is 314572800 bytes, more than a custos bundle can be/,
    );
    const share = join(d, 'big.share');
    writeFileSync(share, Buffer.alloc(65 * 1024, 0x41));
    expect(catchCustos(() => readInputFile(share, 'share file'), 'E_FILE').message).toMatch(
      /is 66560 bytes, more than a custos share file can be \(65536 bytes\)/,
    );
  });

  test('a directory is named as one', () => {
    expect(catchCustos(() => readInputFile(tmpdir(), 'identity file'), 'E_FILE').message).toBe(
      `identity file ${tmpdir()} is a directory`,
    );
  });
});

describe('a 10,000-deep JSON value in an audit log line (found again by the fuzzer: test/fuzz)', () => {
  const deep = `{"v":${'['.repeat(10_000)}${']'.repeat(10_000)},"seq":1}`;

  test('the line is malformed, said in custos\'s words (it was RangeError: Maximum call stack size exceeded, quoting "v")', () => {
    expect(parseEntryLine(deep)).toEqual({
      ok: false,
      message: 'its JSON nests deeper than 32 levels',
    });
    const r = checkLog(`${deep}\n`, verifyEd25519, sha256Hex);
    expect(r.problems).toEqual([
      {
        line: 1,
        kind: 'malformed',
        message: 'not a custos-audit/1 entry: its JSON nests deeper than 32 levels',
      },
    ]);
  });

  test('appending after such a line refuses with E_AUDIT_TAMPERED, and the log is unchanged', () => {
    const d = scratch();
    const log = join(d, 'audit.jsonl');
    writeFileSync(log, `${deep}\n`);
    const e = catchCustos(
      () => appendAudit(log, { op: 'backup', actor: 'me', outcome: 'ok' }),
      'E_AUDIT_TAMPERED',
    );
    expect(e.message).toMatch(
      /ends with a line that is not an entry \(its JSON nests deeper than 32 levels\)/,
    );
    expect(readFileSync(log, 'utf8')).toBe(`${deep}\n`);
  });
});

describe('outputs and the audit log are not followed through symbolic links', () => {
  test('a dangling symbolic link at an output path counts as existing', () => {
    const d = scratch();
    const link = join(d, 'out.bundle');
    symlinkSync(join(d, 'elsewhere', 'victim'), link);
    expect(existsSync(link)).toBe(false);
    const e = catchCustos(() => refuseExisting([link]), 'E_EXISTS');
    expect(e.message).toBe(`refusing to overwrite ${link}`);
  });

  test('an audit log path that is a symbolic link is refused, and its target left as it was', () => {
    const d = scratch();
    const victim = join(d, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    const log = join(d, 'audit.jsonl');
    symlinkSync(victim, log);
    const e = catchCustos(
      () => appendAudit(log, { op: 'test', actor: 'me', outcome: 'ok' }),
      'E_AUDIT_WRITE',
    );
    expect(e.message).toBe(
      `could not append to the audit log ${log}: it is a symbolic link, which custos does not follow`,
    );
    expect(e.hint).toMatch(/--audit-log/);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  test('a shares directory anyone may write to is reported, with the directories above it that expose it', () => {
    const d = scratch();
    const open = join(d, 'open');
    const shares = join(open, 'shares');
    mkdirSync(shares, { recursive: true });
    chmodSync(open, 0o777);
    expect(exposedDirectories(shares)).toEqual([open]);
    chmodSync(shares, 0o1777);
    expect(exposedDirectories(shares)).toEqual([shares, open]);
    chmodSync(open, 0o1777);
    // A sticky directory above (as /tmp is) lets nobody else rename what is below it.
    expect(exposedDirectories(shares)).toEqual([shares]);
    chmodSync(shares, 0o700);
    expect(exposedDirectories(shares)).toEqual([]);
  });
});

describe("YAML bombs get custos's own message, quickly", () => {
  const policyError = (text: string): CustosError =>
    catchCustos(() => parsePolicy('p.yaml', text), 'E_POLICY');

  test('10,000 nested flow lists', () => {
    const e = policyError(`${'['.repeat(10_000)}${']'.repeat(10_000)}`);
    expect(e.message).toBe('p.yaml:1: nests deeper than 32 levels');
  });

  test('a megabyte of unclosed brackets, compact lists and indentation (the engine ran out of memory on the first)', () => {
    for (const text of [
      '['.repeat(1024 * 1024 - 1),
      '- '.repeat(300_000),
      Array.from({ length: 1400 }, (_, i) => `${' '.repeat(i)}a:`).join('\n'),
    ]) {
      const started = Date.now();
      expect(policyError(text).message).toMatch(/^p\.yaml:\d+: nests deeper than 32 levels$/);
      expect(Date.now() - started).toBeLessThan(2000);
    }
  });

  test('50,000 keys are refused in well under a second (it took 21 s, quadratic in the keys)', () => {
    const started = Date.now();
    const e = policyError(Array.from({ length: 50_000 }, (_, i) => `k${i}: 1`).join('\n'));
    expect(e.message).toBe(
      'p.yaml:20001: has more than 20000 entries, more than a custos YAML file can have',
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("a map with thousands of distinct keys is read in linear time (the duplicate check is custos's own)", () => {
    const started = Date.now();
    const text = `hsms:\n${Array.from({ length: 3000 }, (_, i) => `  p${i}: {module: m.so, token: t${i}}`).join('\n')}\n`;
    expect(parseConfig('custos.yaml', text).hsms.size).toBe(3000);
    expect(Date.now() - started).toBeLessThan(3000);
    const dup = catchCustos(
      () => parseConfig('custos.yaml', `${text}  p7: {module: m.so, token: again}\n`),
      'E_CONFIG',
    );
    expect(dup.message).toBe('custos.yaml:3002: "p7" appears twice in hsms');
  });

  test('more than a megabyte, and a second document, are refused by name', () => {
    expect(policyError(`# ${'x'.repeat(1024 * 1024)}\n`).message).toBe(
      `p.yaml:1: is ${1024 * 1024 + 3} bytes, more than a custos YAML file can be (1048576)`,
    );
    expect(policyError('threshold: 2\n---\nthreshold: 3\n').message).toBe(
      'p.yaml:2: holds more than one YAML document (a line "---" starts another)',
    );
  });

  test('no message of these names the engine', () => {
    for (const text of [
      '['.repeat(40),
      '{a: '.repeat(40),
      'a: &x [1]\nb: *x\n',
      'a: !!binary AAAA\n',
      '%YAML 9.9\n---\na: 1\n',
    ]) {
      let message = '';
      try {
        parsePolicy('p.yaml', text);
      } catch (e) {
        expect(e).toBeInstanceOf(CustosError);
        message = (e as CustosError).message;
      }
      expect(message).not.toMatch(ENGINE);
    }
  });
});

describe('output escapes every string from a file, in every kind of output', () => {
  const hostile = 'pay\u001b[2J\u001b]0;owned\u0007ments\u202eTXT.exe\u2028fake line\u0085';

  test('tables, data lines, notes and warnings show escapes, never obey them', () => {
    const { out, stdout, stderr } = capturingOutput(true);
    out.table(['label', 'state'], [[hostile, out.colour.green('ok')]]);
    out.data([hostile, `two\nlines in one`]);
    out.data(hostile);
    out.note(hostile);
    out.warn(hostile);
    const all = stdout() + stderr();
    // Only the colour this Output put there itself (SGR ...m) reaches the terminal; no other
    // escape.
    expect(all.replace(/\u001b\[(1|22|32|39)m/g, '')).not.toMatch(
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
    );
    expect(stdout()).toContain(
      'pay\\x1b[2J\\x1b]0;owned\\x07ments\\u{202e}TXT.exe\\u{2028}fake line\\x85',
    );
    expect(stdout()).toContain('two\\x0alines in one');
    expect(stdout()).toContain('\u001b[32mok\u001b[39m');
  });

  test("a style cannot be forged by text: only this Output's own marks colour anything", () => {
    const { out, stdout } = capturingOutput(true);
    const other = capturingOutput(true).out;
    out.data([`${other.colour.red('forged')} \u0000deadbeefdeadbeefred+\u0000x`]);
    expect(stdout()).not.toContain('\u001b[31m');
  });

  test('JSON output escapes what JSON.stringify leaves raw: DEL, C1, bidi marks and line separators', () => {
    const text = jsonText({ label: hostile, fine: 'Lindqvist Advokatbyrå — 東京' });
    expect(text).not.toMatch(
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
    );
    expect(text).toContain('\\u202eTXT.exe\\u2028fake line\\u0085');
    expect(JSON.parse(text)).toEqual({ label: hostile, fine: 'Lindqvist Advokatbyrå — 東京' });
  });

  test('audit show prints nothing raw from the log: op, actor and detail with escapes, bidi marks and separators', async () => {
    const d = scratch();
    const log = join(d, 'audit.jsonl');
    appendAudit(log, {
      op: `ceremony-open${hostile}`,
      actor: `eve${hostile}`,
      outcome: 'ok',
      detail: { matter: hostile, keys: [hostile] },
    });
    const { out, stdout, stderr } = capturingOutput(true);
    await runShow({ ...testContext(d, out) }, { log: 'audit.jsonl' });
    const shown = stdout() + stderr();
    expect(shown.replace(/\u001b\[(1|22)m/g, '')).not.toMatch(
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/,
    );
    expect(shown).toContain('evepay\\x1b[2J');
  });
});

describe('a bundle whose id was changed is named, not its shares', () => {
  const B = makeBackup({ threshold: 2, total: 3 });
  const flipped = {
    ...B.body,
    bundleId: `${B.body.bundleId.slice(0, -1)}${B.body.bundleId.endsWith('0') ? '1' : '0'}`,
  };
  const good = (i: number) => ({
    source: `c${i + 1}.share`,
    opened: {
      share: parseShare('s', B.shareTexts[i] as string),
      recipient: B.body.escrow.custodians[i]!.recipient,
    },
  });

  test("shares signed by the bundle's own dealer key but naming another id are bundle-changed, and the original id is kept", () => {
    const state = evaluateShares(
      { body: flipped, digest: 'f'.repeat(64) },
      [good(0), good(1), good(2)],
      verifyEd25519,
      shareIndex,
    );
    expect(state.accepted).toEqual([]);
    expect(state.rejected.map((r) => r.reason)).toEqual([
      'bundle-changed',
      'bundle-changed',
      'bundle-changed',
    ]);
    expect(state.rejected[0]?.message).toBe(
      `it was made by this backup for bundle ${B.body.bundleId}, but the bundle file says ${flipped.bundleId}: the bundle file has been changed`,
    );
    expect(state.bundleChanged).toBe(true);
    expect(state.originalId).toBe(B.body.bundleId);
  });

  test('a share of another backup is still foreign-bundle', () => {
    const other = makeBackup({ threshold: 2, total: 3 });
    const state = evaluateShares(
      { body: B.body, digest: B.digest },
      [
        {
          source: 'x',
          opened: {
            share: parseShare('x', other.shareTexts[0] as string),
            recipient: other.body.escrow.custodians[0]!.recipient,
          },
        },
      ],
      verifyEd25519,
      shareIndex,
    );
    expect(state.rejected.map((r) => r.reason)).toEqual(['foreign-bundle']);
    expect(state.bundleChanged).toBe(false);
  });

  test('a restore names the bundle as damaged (E_BUNDLE_TAMPERED), not "0 of 2 accepted"', async () => {
    const disk = await backupOnDisk({ threshold: 2, total: 3 });
    const file = readFileSync(disk.bundlePath, 'utf8');
    const id = disk.backup.body.bundleId;
    const changed = `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`;
    writeFileSync(
      join(disk.dir, 'flipped.bundle'),
      file.replace(`"bundleId": "${id}"`, `"bundleId": "${changed}"`),
    );
    const bundle = loadBundle(disk.ctx, 'flipped.bundle');
    const state = judgeShares(
      bundle.quorum,
      await openShares(
        disk.ctx,
        disk.sharePaths,
        await loadIdentities(disk.ctx, disk.identityPaths),
      ),
    );
    const e = catchCustos(() => requireQuorum(bundle, state), 'E_BUNDLE_TAMPERED');
    expect(e.message).toBe(
      `flipped.bundle has been changed since the backup: it says bundle ${changed}, but shares made by this very backup name bundle ${id}`,
    );
    expect(e.hint).toMatch(/the shares are not at fault/);
  });

  test('shares verify tells the custodian the bundle is damaged, and their share is good', async () => {
    const disk = await backupOnDisk({ threshold: 2, total: 3 });
    const id = disk.backup.body.bundleId;
    const changed = `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`;
    writeFileSync(
      join(disk.dir, 'flipped.bundle'),
      readFileSync(disk.bundlePath, 'utf8').replace(
        `"bundleId": "${id}"`,
        `"bundleId": "${changed}"`,
      ),
    );
    const e = await catchCustosAsync(
      () =>
        verifyShare(
          disk.ctx,
          'flipped.bundle',
          disk.sharePaths[1] as string,
          disk.identityPaths[1] as string,
        ),
      'E_BUNDLE_TAMPERED',
    );
    expect(e.message).toMatch(/^flipped\.bundle has been changed since the backup/);
    expect(e.details).toEqual([
      `${disk.sharePaths[1]} is authentic: it was made by this backup, and it is not the file at fault`,
    ]);
  });
});

describe("a bundle's key records are checked when it is loaded", () => {
  const variant = async (edit: (keys: any[]) => void) => {
    const disk = await backupOnDisk({
      threshold: 2,
      total: 2,
      edit: (body) => edit(body.keys as any[]),
    });
    return () => loadBundle(disk.ctx, 'b.bundle');
  };

  test('a bundle listing one key twice is refused (it restored it twice)', async () => {
    const load = await variant((keys) => keys.push({ ...keys[0] }));
    expect(catchCustos(load, 'E_BUNDLE_FORMAT').message).toBe(
      'b.bundle: keys[3] ("payments-kek-2026" (id 01a2)) is listed twice (also keys[0]): a bundle lists each key once',
    );
  });

  test('a malformed EC point or curve is refused by name (node said "decode error" or "header too long" at restore)', async () => {
    const badPoint = await variant((keys) => {
      keys[2].publicKey.ecPoint = '04410400';
    });
    expect(catchCustos(badPoint, 'E_BUNDLE_FORMAT').message).toMatch(
      /^b\.bundle: keys\[2\] \("tls\\edge\n01"\) records a public key that is not a valid EC key/,
    );
    const badParams = await variant((keys) => {
      keys[2].ecParams = '0608ff';
      keys[2].publicKey.ecParams = '0608ff';
    });
    expect(catchCustos(badParams, 'E_BUNDLE_FORMAT').message).toMatch(
      /has curve parameters \(ecParams\) that are not one DER value/,
    );
    const longHeader = await variant((keys) => {
      keys[2].publicKey.ecParams = '06ff2a8648ce3d030107';
    });
    expect(catchCustos(longHeader, 'E_BUNDLE_FORMAT').message).not.toMatch(ENGINE);
  });

  test('an intact bundle loads', async () => {
    const load = await variant(() => undefined);
    expect(load().body.keys).toHaveLength(3);
  });
});

describe('shares are matched to identities by their stanza', () => {
  test("each share opens with the identity that fits, wherever it is in the list, and a stranger's file is unopened", async () => {
    const people = await Promise.all(Array.from({ length: 12 }, () => newIdentity()));
    const ids = (
      await Promise.all(people.map((p, i) => parseIdentityFile(`k${i}`, `${p.secret}\n`)))
    ).flat();
    for (const [i, p] of people.entries()) {
      const file = Buffer.from(await encryptToRecipient(p.recipient, `hello ${i}`), 'utf8');
      for (const first of [0, i, 11 - i]) {
        const r = await decryptWithAny(file, ids, first);
        expect(r).toEqual({ plaintext: `hello ${i}`, identity: ids[i] });
      }
    }
    const stranger = await newIdentity();
    expect(
      await decryptWithAny(
        Buffer.from(await encryptToRecipient(stranger.recipient, 'x'), 'utf8'),
        ids,
      ),
    ).toEqual({ failure: 'no-identity' });
  });

  test('a 64-of-64 quorum opens in well under the time of trying every identity on every share', async () => {
    const disk = await backupOnDisk({ threshold: 64, total: 64 });
    const identities = await loadIdentities(disk.ctx, [...disk.identityPaths].reverse());
    const started = Date.now();
    const opened = await openShares(disk.ctx, disk.sharePaths, identities);
    const ms = Date.now() - started;
    expect(opened.every((c) => 'share' in c.opened)).toBe(true);
    // Trying each identity on each share took about 1.5 ms a try: 64 x 32 tries, 3 s. Figures:
    // test/bench/shares-open.mjs.
    expect(ms).toBeLessThan(2500);
  });
});

describe('a sealed body built here round-trips through loadBundle', () => {
  test('sealBody agrees with makeBackup', () => {
    const B = makeBackup();
    expect(sealBody(B.body, B.kek, B.dealer).digest).toBe(B.digest);
  });
});
