/**
 * NSS softoken (libsoftokn3, Debian libnss3) as a second PKCS#11 module for the end-to-end tests.
 * Each token is an NSS database in the workspace, made with the real `certutil -N` and a password
 * (its user PIN). All of a workspace's NSS tokens are opened through one set of library
 * parameters (`tokens=<0x04=[…] 0x05=[…]>`): NSS is initialised once per process, so every profile
 * naming the module gives the same parameters. Keys are made, used and inspected with
 * nss-tool.mjs (raw pkcs11js, none of custos's code), as pkcs11-tool does for SoftHSM2.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, mustRun, newPin, type KeySpec, type Profile, type Workspace } from './helpers.js';

const CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/libsoftokn3.so',
  '/usr/lib/aarch64-linux-gnu/libsoftokn3.so',
  '/usr/lib/libsoftokn3.so',
];
export const NSS_MODULE = CANDIDATES.find((p) => existsSync(p)) ?? (CANDIDATES[0] as string);
const TOOL = join(ROOT, 'test', 'e2e', 'nss-tool.mjs');

export interface NssToken {
  label: string;
  pin: string;
  /** The database directory (configdir sql:DIR). */
  dir: string;
}

/** A fresh NSS database labelled `label`, its password (the user PIN) set with certutil -N. */
export function makeNssToken(ws: Workspace, label: string): NssToken {
  const dir = join(ws.dir, 'nss', label);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pin = newPin(ws);
  const pwfile = join(ws.dir, `nss-${label}.pw`);
  writeFileSync(pwfile, `${pin}\n`, { mode: 0o600 });
  try {
    mustRun('certutil', ['-N', '-d', `sql:${dir}`, '-f', pwfile], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir },
      cwd: ws.dir,
    });
  } finally {
    rmSync(pwfile, { force: true });
  }
  return { label, pin, dir };
}

/** The library parameters that open every one of these databases as a token labelled as given. */
export function nssParameters(tokens: readonly NssToken[]): string {
  const slots = tokens.map(
    (t, i) =>
      `0x${(4 + i).toString(16).padStart(2, '0')}=[configdir='sql:${t.dir}' tokenDescription='${t.label}']`,
  );
  return `flags=noCertDB,noModDB tokens=<${slots.join(' ')}>`;
}

/** Adds a profile for an NSS token (PIN in an env var of this workspace). */
export function nssProfile(
  ws: Workspace,
  profiles: Profile[],
  token: NssToken,
  params: string,
  name = token.label,
): Profile {
  const pinVar = `PIN_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  ws.env[pinVar] = token.pin;
  const p: Profile = {
    name,
    token: token.label,
    pinVar,
    module: NSS_MODULE,
    libraryParameters: params,
  };
  profiles.push(p);
  return p;
}

/** Runs one nss-tool operation on the token and returns its JSON answer. */
export function nssTool<T = unknown>(
  ws: Workspace,
  token: NssToken,
  params: string,
  op: string,
  args: Record<string, unknown> = {},
  pin = token.pin,
): T {
  const r = spawnSync(
    process.execPath,
    [TOOL, JSON.stringify({ module: NSS_MODULE, params, token: token.label, pin, op, ...args })],
    {
      cwd: ws.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir },
      encoding: 'utf8',
    },
  );
  if (r.status !== 0)
    throw new Error(`nss-tool ${op} on ${token.label} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * Makes keys as the e2e key specs say (AES-256, 32-byte generic secret, RSA-2048, EC P-256;
 * sensitive, extractable unless false).
 */
export function makeNssKeys(
  ws: Workspace,
  token: NssToken,
  params: string,
  keys: readonly KeySpec[],
): void {
  nssTool(ws, token, params, 'keygen', { keys });
}

/** Every token object as class/label/id (an outside view of the token). */
export function nssObjects(ws: Workspace, token: NssToken, params: string): string[] {
  return nssTool<string[]>(ws, token, params, 'objects');
}

export function nssLogsIn(ws: Workspace, token: NssToken, params: string, pin: string): boolean {
  return nssTool<boolean>(ws, token, params, 'login', {}, pin);
}
