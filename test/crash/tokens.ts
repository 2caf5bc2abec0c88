/**
 * Shared by the concurrency and crash tests: custos run as a child process that can be started
 * several at a time or killed, many keys made quickly inside a SoftHSM2 token, and an outside count
 * of a token's objects (pkcs11-tool).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  BIN,
  MODULE,
  ROOT,
  listObjects,
  tokenObjectFiles,
  type TokenRef,
  type Workspace,
} from '../e2e/helpers.js';

export interface AsyncRun {
  args: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runEnv(ws: Workspace): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: ws.dir,
    LANG: 'C.UTF-8',
    NO_COLOR: '1',
    SOFTHSM2_CONF: ws.conf,
    COLUMNS: '250',
    ...ws.env,
  };
}

/** Starts bin/custos; `done` settles when it exits (status null and a signal if it was killed). */
export function start(
  ws: Workspace,
  args: string[],
  env: Record<string, string> = {},
  cwd = ws.dir,
): { child: ChildProcess; done: Promise<AsyncRun> } {
  const child = spawn(BIN, args, {
    cwd,
    env: { ...runEnv(ws), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<AsyncRun>((resolve) =>
    child.on('close', (status, signal) => resolve({ args, status, signal, stdout, stderr })),
  );
  return { child, done };
}

export function describeAsync(r: AsyncRun): string {
  return `custos ${r.args.join(' ')} -> ${r.status ?? r.signal}\n--- stdout\n${r.stdout.slice(0, 4000)}\n--- stderr\n${r.stderr.slice(0, 4000)}`;
}

/**
 * Makes `aes` AES keys (labels k-0…, ids 0000…), an RSA and an EC key pair (ids ff01, ff02) inside
 * the token, through custos's own key generation in one process (pkcs11-tool would take a process
 * per key).
 */
export function makeManyKeys(ws: Workspace, token: TokenRef, aes: number): void {
  const gen = `
    const { Token } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/token.js'))});
    const { generateSecretKey, generateKeyPair } = await import(${JSON.stringify(join(ROOT, 'dist/hsm/generate.js'))});
    const t = await Token.open({ module: ${JSON.stringify(MODULE)}, token: ${JSON.stringify(token.label)} }, async () => ${JSON.stringify(token.pin)}, true);
    for (let i = 0; i < ${aes}; i++) generateSecretKey(t, { label: 'k-' + i, id: i.toString(16).padStart(4, '0'), keyType: 'AES', bytes: 32, extractable: true });
    generateKeyPair(t, { label: 'rsa', id: 'ff01', keyType: 'RSA', bits: 2048, extractable: true });
    generateKeyPair(t, { label: 'ec', id: 'ff02', keyType: 'EC', extractable: true });
    t.close();`;
  execFileSync(process.execPath, ['--input-type=module', '-e', gen], {
    env: { ...runEnv(ws), SOFTHSM2_CONF: token.conf },
  });
}

/**
 * "Kind label id" of every object on the token as pkcs11-tool lists it, with how many times each
 * occurs (an outside view: custos is not asked).
 */
export function objectTally(ws: Workspace, token: TokenRef): Map<string, number> {
  const tally = new Map<string, number>();
  for (const o of listObjects(ws, token)) {
    const k = `${o.kind} ${o.label} ${o.id}`;
    tally.set(k, (tally.get(k) ?? 0) + 1);
  }
  return tally;
}

/** Entries of the tally that occur more than once. */
export function duplicates(tally: Map<string, number>): string[] {
  return [...tally].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
}

/** A small seeded generator (mulberry32), so that a failing run's kill points can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type KillPoint = { afterMs: number } | { afterObjects: number; token: string };

export function describeKillPoint(p: KillPoint): string {
  return 'afterMs' in p
    ? `${p.afterMs} ms after start`
    : `once ${p.afterObjects} objects are on token "${p.token}"`;
}

/**
 * Starts custos and kills it with SIGKILL at the kill point (or lets it finish, if it ends first).
 * Returns whether it was killed, and its result.
 */
export async function runAndKill(
  ws: Workspace,
  args: string[],
  point: KillPoint,
): Promise<{ killed: boolean; run: AsyncRun }> {
  const before = 'afterMs' in point ? 0 : tokenObjectFiles(ws, point.token);
  const { child, done } = start(ws, args);
  let finished = false;
  void done.then(() => (finished = true));
  const began = Date.now();
  for (;;) {
    if (finished) break;
    if ('afterMs' in point) {
      if (Date.now() - began >= point.afterMs) break;
    } else if (tokenObjectFiles(ws, point.token) - before >= point.afterObjects) break;
    if (Date.now() - began > 60_000) break;
    await new Promise((r) => setTimeout(r, 'afterMs' in point ? 2 : 5));
  }
  if (!finished) child.kill('SIGKILL');
  const run = await done;
  return { killed: run.signal === 'SIGKILL', run };
}
