/**
 * Shared by the concurrency and crash tests: custos run as a child process that can be started
 * several at a time or killed, many keys made quickly inside a SoftHSM2 token, and an outside count
 * of a token's objects (pkcs11-tool).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN, MODULE, ROOT, listObjects, type TokenRef, type Workspace } from '../e2e/helpers.js';

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
): { child: ChildProcess; done: Promise<AsyncRun> } {
  const child = spawn(BIN, args, {
    cwd: ws.dir,
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
