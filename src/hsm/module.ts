/** Loading PKCS#11 modules (once per process each) and turning their errors into custos errors. */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import type * as Pkcs11Types from 'pkcs11js';
import { CustosError } from '../core/errors.js';
import { onFinalize } from './lifecycle.js';

const require = createRequire(import.meta.url);
export const P: typeof Pkcs11Types = require('pkcs11js');
export type Pkcs11 = Pkcs11Types.PKCS11;
export type Handle = Buffer;

const loaded = new Map<string, Pkcs11>();

export function loadModule(path: string): Pkcs11 {
  const existing = loaded.get(path);
  if (existing) return existing;
  if (!existsSync(path)) {
    throw new CustosError('E_HSM_MODULE', `PKCS#11 module ${path} does not exist`,
      'check the module path in custos.yaml (for SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so, from apt-get install softhsm2)');
  }
  const lib = new P.PKCS11();
  try {
    lib.load(path);
  } catch {
    throw new CustosError('E_HSM_MODULE', `cannot load PKCS#11 module ${path}`, 'check that it is a PKCS#11 library built for this machine');
  }
  try {
    lib.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (pkcs11Code(e) !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw hsmError(e, `initialise ${path}`);
  }
  if (loaded.size === 0) onFinalize(finalizeAll);
  loaded.set(path, lib);
  return lib;
}

export function isLoaded(path: string): boolean {
  return loaded.has(path);
}

/** Finalises every loaded module; pkcs11js's close() alone would not call C_Finalize. */
export function finalizeAll(): void {
  for (const lib of loaded.values()) {
    try {
      lib.C_Finalize();
      lib.close();
    } catch {
      // the process is ending; nothing useful can be done with a failure here
    }
  }
  loaded.clear();
}

export function pkcs11Code(e: unknown): number | undefined {
  if (e instanceof P.Pkcs11Error) return e.code;
  // Some pkcs11js calls (C_CreateObject among them) throw a plain Error("CKR_NAME:code").
  const m = e instanceof Error ? /^CKR_[A-Z_]+:(\d+)/.exec(e.message) : null;
  return m ? Number(m[1]) : undefined;
}

function ckrName(code: number): string {
  for (const [name, value] of Object.entries(P)) {
    if (name.startsWith('CKR_') && value === code) return name;
  }
  return `CKR 0x${code.toString(16)}`;
}

/** Maps a PKCS#11 failure during `doing` (e.g. "log in to token x") to a typed error. */
export function hsmError(e: unknown, doing: string): CustosError {
  if (e instanceof CustosError) return e;
  const code = pkcs11Code(e);
  if (code === undefined) {
    return new CustosError('E_HSM', `the PKCS#11 module failed to ${doing}`, 'see the module\'s own log for the cause');
  }
  const name = ckrName(code);
  switch (code) {
    case P.CKR_PIN_INCORRECT:
      return new CustosError('E_PIN_INCORRECT', `the PIN was not accepted (${doing})`, 'check the PIN source; a few more wrong tries lock the token');
    case P.CKR_PIN_LOCKED:
      return new CustosError('E_PIN_LOCKED', `the token's PIN is locked (${doing})`, 'the security officer must unlock it before custos can use the token');
    case P.CKR_MECHANISM_INVALID:
    case P.CKR_MECHANISM_PARAM_INVALID:
      return new CustosError('E_MECHANISM', `the token does not support the mechanism needed to ${doing} (${name})`, 'use a token that supports AES key wrap with padding (RFC 5649)');
    case P.CKR_DEVICE_MEMORY:
    case P.CKR_HOST_MEMORY:
      return new CustosError('E_HSM', `the token ran out of memory or space while trying to ${doing} (${name})`, 'free space on the token, then run the command again');
    default:
      return new CustosError('E_HSM', `the token refused to ${doing} (${name})`, 'check the key attributes and the token; docs/errors.md lists common causes');
  }
}
