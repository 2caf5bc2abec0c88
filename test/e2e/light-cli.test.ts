/**
 * `custos --version` and `--help` answer without loading pkcs11js (the native addon) or any
 * PKCS#11 module, and the CLI's usage errors follow the output conventions.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  TIMEOUT,
  cleanup,
  custos,
  expectNoSecrets,
  expectOk,
  expectUserError,
  newPin,
  type Workspace,
  workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
beforeAll(() => {
  ws = workspace('light');
});
afterAll(() => cleanup(ws));

/**
 * Imports dist/cli/main.js in a fresh node, runs main() for each argv, and after each records
 * what of pkcs11js is loaded: CommonJS modules in require.cache and native libraries mapped into
 * the process (process.report's sharedObjects). Then, as a control that the probe can see it,
 * imports the hsm layer, which does load pkcs11js.
 */
const PROBE = `
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { writeFileSync } from 'node:fs';
const require = createRequire(process.cwd() + '/');
const dist = process.env.CUSTOS_DIST;
const probe = () => ({
  cache: Object.keys(require.cache).filter((k) => /pkcs11/i.test(k)),
  shared: process.report.getReport().sharedObjects.filter((s) => /pkcs11|softhsm/i.test(s)),
});
const results = { before: probe() };
const { main } = await import(pathToFileURL(dist + '/cli/main.js').href);
for (const argv of JSON.parse(process.env.CUSTOS_ARGVS)) {
  const code = await main(['node', 'custos', ...argv], { NO_COLOR: '1' }, process.cwd());
  results[argv.join(' ')] = { code, ...probe() };
}
await import(pathToFileURL(dist + '/hsm/module.js').href);
results.control = probe();
writeFileSync(process.env.CUSTOS_PROBE_OUT, JSON.stringify(results));
`;

describe('light commands', () => {
  const argvs = [
    ['--help'],
    ['--version'],
    ['-V'],
    ['restore', '--help'],
    ['backup', '--help'],
    ['inventory', '--help'],
    ['hsm', '--help'],
    ['help', 'restore'],
  ];

  it("--version, --help and every command's --help run without loading pkcs11js (and the probe does see it when it is loaded)", () => {
    const out = join(ws.dir, 'probe.json');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], {
      cwd: ws.dir,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '',
        HOME: ws.dir,
        NO_COLOR: '1',
        CUSTOS_DIST: join(ROOT, 'dist'),
        CUSTOS_ARGVS: JSON.stringify(argvs),
        CUSTOS_PROBE_OUT: out,
      },
    });
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(readFileSync(out, 'utf8'));
    expect(results.before).toEqual({ cache: [], shared: [] });
    for (const argv of argvs) {
      expect(results[argv.join(' ')], argv.join(' ')).toEqual({ code: 0, cache: [], shared: [] });
    }
    // control: importing the hsm layer loads the addon, and the probe sees both signs of it
    expect(results.control.cache.some((k: string) => /pkcs11js/.test(k))).toBe(true);
    expect(results.control.shared.some((s: string) => /pkcs11\.node$/.test(s))).toBe(true);
    expect(r.stdout).toContain('Usage: custos');
  });

  it('bin/custos --version prints the version on stdout and exits 0', () => {
    const r = expectOk(custos(ws, ['--version']));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(r.stderr).toBe('');
  });

  it('bin/custos --help lists every command and exits 0', () => {
    const r = expectOk(custos(ws, ['--help']));
    for (const c of ['hsm', 'inventory', 'backup', 'shares', 'restore'])
      expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
    expect(r.stderr).toBe('');
  });

  it('an unknown command is a usage error (exit 2) in the custos: error: form', () => {
    const r = custos(ws, ['restroe']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^custos: error: unknown command 'restroe'/m);
    expect(r.stderr).not.toMatch(/^\s+at\s/m);
  });

  it('a PIN on the command line is refused, and not echoed', () => {
    const pin = newPin(ws);
    const r = custos(ws, ['inventory', '--hsm', 'anything', '--pin', pin]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^custos: error: unknown option '--pin'/m);
    expect(`${r.stdout}${r.stderr}`).not.toContain(pin);
  });

  it('a missing required option names it', () => {
    const r = custos(ws, ['backup', '--hsm', 'x', '--policy', 'p.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^custos: error: backup to a bundle needs --policy and --out \(or use --to-hsm NAME\) \[E_USAGE\]$/m,
    );
  });

  it('a missing bundle file is named (exit 3), before any token is touched', () => {
    const r = custos(ws, [
      'restore',
      '--bundle',
      'nowhere.bundle',
      '--hsm',
      'x',
      '--share',
      's',
      '--identity',
      'i',
    ]);
    expect(expectUserError(r, 3)).toMatch(/bundle .*nowhere\.bundle does not exist/);
  });

  it('no secret appears in any output', () => {
    expectNoSecrets(ws);
  });
});
