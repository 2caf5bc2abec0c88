/**
 * Several custos runs writing into one token at the same time: restores from a bundle and copies
 * from another token (backup --to-hsm). Each run makes its plan (what is on the token, what to
 * create) only once it holds the token, so however they interleave every key ends up on the token
 * exactly once, counted by pkcs11-tool, and every run either finishes (finding the keys present) or
 * is refused with a clear error.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  MODULE,
  ROOT,
  TIMEOUT,
  cleanup,
  custos,
  describeRun,
  expectOk,
  initToken,
  p11,
  profileFor,
  quorumArgs,
  writeConfig,
  type Custodian,
  type Profile,
  type TokenRef,
  type Workspace,
} from '../e2e/helpers.js';
import { backUp, sourceAndTarget } from '../e2e/scenarios.js';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeAsync, duplicates, makeManyKeys, objectTally, runEnv, start } from './tokens.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const AES = 150;
/** AES keys, the RSA and EC private keys, and their two public keys. */
const OBJECTS = AES + 4;

let ws: Workspace;
let source: TokenRef;
let custodians: Custodian[];
let profiles: Profile[];

beforeAll(() => {
  ({ ws, source, custodians, profiles } = sourceAndTarget({
    workspace: 'concurrent',
    source: 'cw-src',
    target: 'cw-restore',
    standardKeys: false,
    custodians: ['c1', 'c2', 'c3'],
    threshold: 2,
  }));
  for (const label of ['cw-copy', 'cw-wait', 'cw-remote', 'cw-dirs'])
    profileFor(ws, profiles, initToken(ws, label), label);
  writeConfig(ws, profiles);
  makeManyKeys(ws, source, AES);
  backUp(ws, 'cw-src', 'src.bundle');
});

afterAll(() => cleanup(ws));

function tokenOf(label: string): TokenRef {
  const p = profiles.find((x) => x.name === label) as Profile;
  return { label, pin: ws.env[p.pinVar] as string, soPin: '', conf: ws.conf };
}

const restoreArgs = (hsm: string) => [
  'restore',
  '--bundle',
  'src.bundle',
  '--hsm',
  hsm,
  '--json',
  ...quorumArgs('src.bundle', [custodians[0]!, custodians[2]!]),
];

/** Every run exits 0 (it found the keys present, or restored them) or was refused as busy. */
function expectSensible(runs: { status: number | null; stderr: string }[]): number {
  let ok = 0;
  for (const r of runs) {
    if (r.status === 0) {
      ok++;
      continue;
    }
    expect(r.stderr, describeAsync(r as never)).toMatch(/^custos: error: .*\[E_BUSY\]/m);
  }
  expect(ok).toBeGreaterThan(0);
  return ok;
}

describe('concurrent writers to one token', () => {
  it('three restores of one bundle at once leave every key exactly once', async () => {
    const target = tokenOf('cw-restore');
    const runs = await Promise.all([0, 1, 2].map(() => start(ws, restoreArgs('cw-restore')).done));
    for (const r of runs) expect(r.signal, describeAsync(r)).toBeNull();
    const ok = expectSensible(runs);
    expect(ok, runs.map(describeAsync).join('\n')).toBe(3);
    const tally = objectTally(ws, target);
    expect(duplicates(tally)).toEqual([]);
    expect(tally.size).toBe(OBJECTS);
    // Exactly one run restored the keys; the others waited for it and found them present.
    const reports = runs.map(
      (r) => JSON.parse(r.stdout) as { keys: { status: string; proof: string }[] },
    );
    const restoredBy = reports.filter((j) => j.keys.some((k) => k.status === 'restored'));
    expect(restoredBy).toHaveLength(1);
    for (const j of reports) {
      expect(j.keys).toHaveLength(AES + 2);
      expect(j.keys.every((k) => k.proof !== 'none')).toBe(true);
    }
    expect(runs.some((r) => /waiting for another custos run/.test(r.stderr))).toBe(true);
  });

  it('two backup --to-hsm into one target at once leave every key exactly once', async () => {
    const target = tokenOf('cw-copy');
    const args = ['backup', '--hsm', 'cw-src', '--to-hsm', 'cw-copy', '--json'];
    const runs = await Promise.all([0, 1].map(() => start(ws, args).done));
    for (const r of runs) expect(r.signal, describeAsync(r)).toBeNull();
    expect(expectSensible(runs), runs.map(describeAsync).join('\n')).toBe(2);
    const tally = objectTally(ws, target);
    expect(duplicates(tally)).toEqual([]);
    expect(tally.size).toBe(OBJECTS);
  });

  it('restores run from two working directories at once (no shared lock): the marker on the token keeps them apart', async () => {
    const target = tokenOf('cw-dirs');
    const other = join(ws.dir, 'elsewhere');
    mkdirSync(other, { recursive: true });
    copyFileSync(join(ws.dir, 'custos.yaml'), join(other, 'custos.yaml'));
    const args = restoreArgs('cw-dirs').map((a) =>
      a.startsWith('src.bundle') ? join(ws.dir, a) : a,
    );
    const runs = await Promise.all([
      start(ws, args).done,
      start(ws, args, {}, other).done,
      start(ws, args, {}, other).done,
    ]);
    for (const r of runs) expect(r.status, describeAsync(r)).toBe(0);
    const tally = objectTally(ws, target);
    expect(duplicates(tally)).toEqual([]);
    expect(tally.size).toBe(OBJECTS);
    const restoredBy = runs.filter((r) =>
      (JSON.parse(r.stdout) as { keys: { status: string }[] }).keys.some(
        (k) => k.status === 'restored',
      ),
    );
    expect(restoredBy).toHaveLength(1);
  });

  it('a run finding the token held on this host waits for it, or is refused when it may not wait', async () => {
    const target = tokenOf('cw-wait');
    const before = objectTally(ws, target);
    // Another process holds the token's lock (as a restore would) for a few seconds.
    const holder = holdTokenLock(target, 'restore');
    await holder.holding;
    const refused = await start(ws, restoreArgs('cw-wait'), { CUSTOS_LOCK_WAIT: '0' }).done;
    expect(refused.status, describeAsync(refused)).toBe(8);
    expect(refused.stderr).toMatch(
      /^custos: error: token "cw-wait" is in use by another custos run \(restore, pid \d+ on this host, since [\d:]+ UTC\) \[E_BUSY\]$/m,
    );
    expect(refused.stdout).toBe('');
    expect(objectTally(ws, target)).toEqual(before);
    const waiting = start(ws, restoreArgs('cw-wait'), { CUSTOS_LOCK_WAIT: '60' });
    let stderr = '';
    waiting.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 1200 && !/waiting for another custos run/.test(stderr); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toMatch(
      /^custos: waiting for another custos run \(restore, pid \d+ on this host/m,
    );
    expect(objectTally(ws, target)).toEqual(before);
    holder.release();
    const waited = await waiting.done;
    expect(waited.status, describeAsync(waited)).toBe(0);
    expect(await holder.exited).toBe(0);
    const tally = objectTally(ws, target);
    expect(duplicates(tally)).toEqual([]);
    expect(tally.size).toBe(OBJECTS);
  });

  it('a run of another host, seen by its marker on the token, is waited for and named with the command that clears it', () => {
    const target = tokenOf('cw-remote');
    // The marker a run on another host would have put on a shared token (made by pkcs11-tool).
    const body = JSON.stringify({
      format: 'custos-run/1',
      runId: '00112233aabbccdd',
      command: 'restore',
      pid: 4242,
      host: 'dr-site-2.example',
      since: '2026-12-01T10:00:00.000Z',
      creates: [],
    });
    writeFileSync(join(ws.dir, 'marker.json'), body);
    p11(ws, target, [
      '--write-object',
      join(ws.dir, 'marker.json'),
      '--type',
      'data',
      '--label',
      'custos run 00112233aabbccdd',
      '--application-label',
      'custos',
      '--private',
    ]);
    const before = objectTally(ws, target);
    const refused = custos(ws, restoreArgs('cw-remote'), { env: { CUSTOS_LOCK_WAIT: '1' } });
    expect(refused.status, describeRun(refused)).toBe(8);
    expect(refused.stderr).toMatch(
      /^custos: waiting for another custos run \(restore, pid 4242 on host dr-site-2\.example, since 10:00:00 UTC\) to finish with token "cw-remote"$/m,
    );
    expect(refused.stderr).toMatch(
      /^custos: error: token "cw-remote" is in use by another custos run/m,
    );
    expect(objectTally(ws, target)).toEqual(before);
    // The hint names the command that removes the marker, once the run is known to have stopped.
    const command = /--delete-object --type data --label '([^']+)'/.exec(refused.stderr);
    expect(command?.[1]).toBe('custos run 00112233aabbccdd');
    expect(refused.stderr).toContain(
      `pkcs11-tool --module ${MODULE} --token-label cw-remote --login --delete-object --type data --label 'custos run 00112233aabbccdd'`,
    );
    p11(ws, target, ['--delete-object', '--type', 'data', '--label', command?.[1] as string]);
    expectOk(custos(ws, restoreArgs('cw-remote')));
    const tally = objectTally(ws, target);
    expect(duplicates(tally)).toEqual([]);
    expect(tally.size).toBe(OBJECTS);
  });
});

/**
 * A process that holds a token's lock, as a custos run does (through custos's own lock module),
 * until told to release it.
 */
function holdTokenLock(
  token: TokenRef,
  command: string,
): { holding: Promise<void>; release: () => void; exited: Promise<number | null> } {
  const flag = join(ws.dir, `release-${token.label}`);
  const script = `
    const { Token } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/token.js'))});
    const { lockToken } = await import(${JSON.stringify(join(ROOT, 'dist/io/token-lock.js'))});
    const t = await Token.open({ module: ${JSON.stringify(MODULE)}, token: ${JSON.stringify(token.label)} }, async () => ${JSON.stringify(token.pin)}, false);
    const { lock } = lockToken(${JSON.stringify(ws.dir)}, t, ${JSON.stringify(command)}, 0, () => {});
    console.log('holding');
    const { existsSync } = await import('node:fs');
    while (!existsSync(${JSON.stringify(flag)})) await new Promise((r) => setTimeout(r, 20));
    lock.release();
    t.close();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: runEnv(ws),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const holding = new Promise<void>((resolve) =>
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('holding')) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { holding, release: () => writeFileSync(flag, ''), exited };
}
