// A restore killed part-way (SIGKILL, so no rollback runs) is finished by running it again,
// and nothing ends up duplicated on the token.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BIN,
  MODULE,
  ROOT,
  sharedPinStore,
  tokenObjectFiles,
  type SharedPinStore,
} from '../e2e/helpers.js';

const KEYS = 400;

let store: SharedPinStore;
let dir: string;
let env: NodeJS.ProcessEnv;

const custos = (...args: string[]) => store.custos(args);

/** Objects on a token as the outside tool pkcs11-tool lists them. */
function tokenObjects(label: string): number {
  return store
    .objects(label)
    .split('\n')
    .filter((l) => / Object;/.test(l)).length;
}

beforeAll(() => {
  store = sharedPinStore('custos-crash-', ['src', 'dst'], { pin: 'crash-pin', soPin: 'crash-so' });
  ({ dir, env } = store);
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
    const filesBefore = tokenObjectFiles(store, 'dst');
    const child = spawn(BIN, args, { cwd: dir, env, stdio: 'ignore' });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    // Kill once a few keys are in, however slow a loaded machine makes the restore.
    let created = 0;
    for (let i = 0; i < 2400 && created < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      created = tokenObjectFiles(store, 'dst') - filesBefore;
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
    const labels = store.keyLabels('dst');
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
