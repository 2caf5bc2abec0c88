// A restore killed part-way (SIGKILL, so no rollback runs) is finished by running it again,
// and nothing ends up duplicated on the token.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const CUSTOS = join(ROOT, 'bin', 'custos');
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const KEYS = 400;

let dir: string;
let env: NodeJS.ProcessEnv;

function custos(...args: string[]) {
  return spawnSync(CUSTOS, args, { cwd: dir, env, encoding: 'utf8' });
}

/** Objects on a token as the outside tool pkcs11-tool lists them. */
function tokenObjects(label: string): number {
  const out = execFileSync(
    'pkcs11-tool',
    ['--module', MODULE, '--token-label', label, '--login', '--pin', 'crash-pin', '--list-objects'],
    { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return out.split('\n').filter((l) => / Object;/.test(l)).length;
}

/** "class:label" for every key object on the token, as pkcs11-tool lists them. */
function labelsOf(label: string): string[] {
  const out = execFileSync(
    'pkcs11-tool',
    ['--module', MODULE, '--token-label', label, '--login', '--pin', 'crash-pin', '--list-objects'],
    { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const found: string[] = [];
  let kind = '';
  for (const line of out.split('\n')) {
    const k = /^(\w+) Key Object/.exec(line);
    if (k) kind = (k[1] ?? '').toLowerCase();
    const l = /^\s+label:\s*(.*)$/.exec(line);
    if (l) found.push(`${kind}:${l[1]}`);
  }
  return found;
}

/** Object files in a SoftHSM file-store token: cheap enough to poll while a restore runs. */
function tokenObjectFiles(label: string): number {
  const tokens = join(dir, 'tokens');
  const padded = Buffer.from(label.padEnd(32, ' '));
  for (const t of readdirSync(tokens)) {
    if (!readFileSync(join(tokens, t, 'token.object')).includes(padded)) continue;
    return readdirSync(join(tokens, t)).filter((f) => f.endsWith('.object') && f !== 'token.object')
      .length;
  }
  throw new Error(`no token directory for ${label}`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-crash-'));
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(
    join(dir, 'softhsm2.conf'),
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  env = {
    PATH: process.env.PATH,
    HOME: dir,
    SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
    TOKEN_PIN: 'crash-pin',
  };
  for (const label of ['src', 'dst']) {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', 'crash-so', '--pin', 'crash-pin'],
      { env, stdio: 'ignore' },
    );
  }
  writeFileSync(
    join(dir, 'custos.yaml'),
    [
      'hsms:',
      ...['src', 'dst'].flatMap((l) => [
        `  ${l}:`,
        `    module: ${MODULE}`,
        `    token: ${l}`,
        '    pin: env:TOKEN_PIN',
      ]),
    ].join('\n') + '\n',
  );
  const gen = `
    const { Token } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/token.js'))});
    const { generateSecretKey, generateKeyPair } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/generate.js'))});
    const t = await Token.open({ module: ${JSON.stringify(MODULE)}, token: 'src' }, async () => 'crash-pin', true);
    for (let i = 0; i < ${KEYS}; i++) generateSecretKey(t, { label: 'k-' + i, id: i.toString(16).padStart(4, '0'), keyType: 'AES', bytes: 32, extractable: true });
    generateKeyPair(t, { label: 'rsa', id: 'ffff', keyType: 'RSA', bits: 2048, extractable: true });
    t.close();`;
  execFileSync(process.execPath, ['--input-type=module', '-e', gen], { env });
  const policy = ['threshold: 2', 'custodians:'];
  for (const c of ['a', 'b', 'c']) {
    execFileSync('age-keygen', ['-o', join(dir, `${c}.key`)], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', join(dir, `${c}.key`)], {
      encoding: 'utf8',
    }).trim();
    policy.push(`  - id: ${c}`, `    recipient: ${recipient}`);
  }
  writeFileSync(join(dir, 'policy.yaml'), `${policy.join('\n')}\n`);
  const b = custos('backup', '--hsm', 'src', '--policy', 'policy.yaml', '--out', 'src.bundle');
  expect(b.status, b.stderr).toBe(0);
}, 120_000);

afterAll(() =>
  process.env.CUSTOS_KEEP_TEST_DIR
    ? console.log(`kept ${dir}`)
    : rmSync(dir, { recursive: true, force: true }),
);

describe('restore killed mid-run', () => {
  it('is completed by a second run, with no duplicates', async () => {
    const args = [
      'restore',
      '--bundle',
      'src.bundle',
      '--hsm',
      'dst',
      '--share',
      'src.bundle.shares/a.share',
      '--share',
      'src.bundle.shares/c.share',
      '--identity',
      'a.key',
      '--identity',
      'c.key',
    ];
    const before = tokenObjects('dst');
    const filesBefore = tokenObjectFiles('dst');
    const child = spawn(CUSTOS, args, { cwd: dir, env, stdio: 'ignore' });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    // Kill once a few keys are in, however slow a loaded machine makes the restore.
    let created = 0;
    for (let i = 0; i < 2400 && created < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      created = tokenObjectFiles('dst') - filesBefore;
    }
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    const partial = tokenObjects('dst') - before;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(KEYS + 2);

    const again = custos(...args, '--json');
    expect(again.status, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { keys: { status: string }[]; unnamedKeys: number };
    const present = report.keys.filter((k) => k.status === 'present').length;
    const restored = report.keys.filter((k) => k.status === 'restored').length;
    expect(present + restored).toBe(KEYS + 1);
    expect(present).toBeGreaterThanOrEqual(partial - 1);

    // Every bundle key exactly once, plus the RSA public key: KEYS secrets + 1 private + 1 public.
    // SoftHSM creates an object before setting its attributes, so a kill can leave one unnamed
    // key behind: the re-run must report it, and it is the only extra object allowed.
    expect(report.unnamedKeys).toBeLessThanOrEqual(1);
    if (report.unnamedKeys > 0)
      expect(again.stderr).toMatch(
        /^custos: warning: token "dst" holds 1 key object with no label and no id/m,
      );
    // A shell with no class at all is reported apart from the key shells.
    const otherShells = /holds 1 object with no label and no id that is not a key/.test(
      again.stderr,
    )
      ? 1
      : 0;
    expect(report.unnamedKeys + otherShells).toBeLessThanOrEqual(1);
    expect(tokenObjects('dst') - before).toBe(KEYS + 2 + report.unnamedKeys + otherShells);
    const labels = labelsOf('dst');
    expect(new Set(labels.filter((l) => l.startsWith('secret:'))).size).toBe(
      KEYS + (report.unnamedKeys > 0 ? 1 : 0),
    );
    const third = custos(...args, '--json');
    expect(third.status, third.stderr).toBe(0);
    expect(
      (JSON.parse(third.stdout) as { keys: { status: string }[] }).keys.every(
        (k) => k.status === 'present',
      ),
    ).toBe(true);
    expect(tokenObjects('dst') - before).toBe(KEYS + 2 + report.unnamedKeys + otherShells);
  }, 120_000);
});
