/**
 * Loading PKCS#11 modules, once per process each, with their initialisation parameters. What a
 * loaded module hands out is guarded (call.ts): every C_* call's failure is a custos error.
 */
import { existsSync, realpathSync } from 'node:fs';
import { CustosError } from '../core/errors.js';
import { onFinalize } from './lifecycle.js';
import { P, ckrName, guard, pkcs11Code, type Pkcs11 } from './call.js';

export { P, hsmError, pkcs11Code, type Handle, type Pkcs11 } from './call.js';

interface Loaded {
  /** The guarded module: what the rest of custos calls. */
  lib: Pkcs11;
  /** The unguarded one, for C_Finalize and close only. */
  raw: Pkcs11;
  libraryParameters?: string;
  /** The path first used to load it (messages). */
  path: string;
}

/** By the module's real path: two names of one library are one library in this process. */
const loaded = new Map<string, Loaded>();

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Loads and initialises a module. `libraryParameters` go to C_Initialize (pReserved, as NSS
 * softoken reads them). A module can be initialised once per process, so a second profile naming
 * the same library must give the same parameters.
 */
export function loadModule(path: string, libraryParameters?: string): Pkcs11 {
  const key = realPath(path);
  const existing = loaded.get(key);
  if (existing) {
    if ((existing.libraryParameters ?? '') !== (libraryParameters ?? '')) {
      throw new CustosError(
        'E_CONFIG',
        `PKCS#11 module ${path} is already in use in this run with other library-parameters`,
        'a module is initialised once per process: give every profile that names this module the same library-parameters (for NSS, list all its tokens in one tokens=<…>; docs/configuration.md)',
      );
    }
    return existing.lib;
  }
  if (!existsSync(path)) {
    throw new CustosError(
      'E_HSM_MODULE',
      `PKCS#11 module ${path} does not exist`,
      'check the module path in custos.yaml (for SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so, from apt-get install softhsm2)',
    );
  }
  const raw = new P.PKCS11();
  try {
    raw.load(path);
  } catch {
    throw new CustosError(
      'E_HSM_MODULE',
      `cannot load PKCS#11 module ${path}`,
      'check that it is a PKCS#11 library built for this machine',
    );
  }
  try {
    raw.C_Initialize(
      libraryParameters !== undefined
        ? { libraryParameters, flags: P.CKF_OS_LOCKING_OK }
        : { flags: P.CKF_OS_LOCKING_OK },
    );
  } catch (e) {
    const code = pkcs11Code(e);
    if (code !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      try {
        raw.close();
      } catch {
        // the module never started: nothing to release
      }
      throw initialiseError(path, code, libraryParameters);
    }
  }
  if (loaded.size === 0) onFinalize(finalizeAll);
  const lib = guard(raw);
  loaded.set(key, { lib, raw, libraryParameters, path });
  return lib;
}

/**
 * Why C_Initialize failed, in the words of what the user can change: the profile's module and
 * parameters.
 */
function initialiseError(
  path: string,
  code: number | undefined,
  libraryParameters: string | undefined,
): CustosError {
  const name = code === undefined ? 'no return code' : ckrName(code);
  if (
    libraryParameters === undefined &&
    (code === P.CKR_ARGUMENTS_BAD || (code !== undefined && code >= 0x80000000))
  ) {
    return new CustosError(
      'E_HSM_MODULE',
      `PKCS#11 module ${path} would not initialise without parameters (${name})`,
      "this module needs initialisation parameters: give them as library-parameters in its custos.yaml profile (NSS softoken: configdir='sql:DIR' …; docs/configuration.md)",
    );
  }
  if (libraryParameters !== undefined) {
    return new CustosError(
      'E_HSM_MODULE',
      `PKCS#11 module ${path} refused the library-parameters of its profile (${name})`,
      "check library-parameters in custos.yaml: the syntax is the module's own (for NSS, that configdir names an existing database directory: certutil -N -d sql:DIR makes one)",
    );
  }
  return new CustosError(
    'E_HSM_MODULE',
    `PKCS#11 module ${path} failed to initialise (${name})`,
    "check the module's own configuration and log",
  );
}

/**
 * Finalises a loaded module and initialises it again with the same parameters, so that it reads
 * its tokens afresh (quirk `store-read-at-initialise`). Every session it had is gone after this.
 */
export function reinitialise(lib: Pkcs11): void {
  const entry = [...loaded.entries()].find(([, l]) => l.lib === lib);
  if (!entry) return;
  const [key, m] = entry;
  m.raw.C_Finalize();
  try {
    m.lib.C_Initialize(
      m.libraryParameters !== undefined
        ? { libraryParameters: m.libraryParameters, flags: P.CKF_OS_LOCKING_OK }
        : { flags: P.CKF_OS_LOCKING_OK },
    );
  } catch (e) {
    // Not initialised now: the next loadModule starts it from nothing.
    loaded.delete(key);
    m.raw.close();
    throw e;
  }
}

export function isLoaded(path: string): boolean {
  return loaded.has(realPath(path));
}

/** Finalises every loaded module; pkcs11js's close() alone would not call C_Finalize. */
export function finalizeAll(): void {
  for (const m of loaded.values()) {
    try {
      m.raw.C_Finalize();
      m.raw.close();
    } catch {
      // the process is ending; nothing useful can be done with a failure here
    }
  }
  loaded.clear();
}
