// Loading a PKCS#11 module once per process with its parameters (src/hsm/module.ts). The library
// files are temporary files; pkcs11js's PKCS11 class is swapped for a stand-in while each test
// runs, so that C_Initialize can answer what a module would, and is put back afterwards.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { P } from '../../src/hsm/call.js';
import { finalizeAll, isLoaded, loadModule } from '../../src/hsm/module.js';
import { finalizeModules } from '../../src/hsm/lifecycle.js';
import { pkcs11Error } from './hsm-fake.js';
import { catchCustos } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'custos-hsm-module-'));
let n = 0;
/** A new file standing for a library (loadModule checks that the path exists). */
function library(): string {
  const path = join(dir, `lib${++n}.so`);
  writeFileSync(path, 'not really a library');
  return path;
}

interface Behaviour {
  load?: Error;
  initialize?: number | Error;
}
const events: string[] = [];
let behaviour: Behaviour = {};
const Original = P.PKCS11;

class StandIn {
  load(path: string) {
    events.push(`load ${path}`);
    if (behaviour.load) throw behaviour.load;
  }
  C_Initialize(options: { libraryParameters?: string; flags?: number }) {
    events.push(`init ${options.libraryParameters ?? '-'} ${options.flags}`);
    const i = behaviour.initialize;
    if (typeof i === 'number') throw pkcs11Error(i, 'C_Initialize');
    if (i) throw i;
  }
  C_Finalize() {
    events.push('finalize');
  }
  close() {
    events.push('close');
  }
  C_GetSlotList() {
    throw pkcs11Error(P.CKR_DEVICE_REMOVED, 'C_GetSlotList');
  }
}

beforeEach(() => {
  (P as { PKCS11: unknown }).PKCS11 = StandIn;
  behaviour = {};
  events.length = 0;
});
afterEach(() => {
  finalizeAll();
  (P as { PKCS11: unknown }).PKCS11 = Original;
});
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

describe('loadModule', () => {
  test('loads and initialises once (OS locking), then hands out the same guarded module', () => {
    const path = library();
    const a = loadModule(path);
    const b = loadModule(path);
    expect(b).toBe(a);
    expect(events).toEqual([`load ${path}`, `init - ${P.CKF_OS_LOCKING_OK}`]);
    expect(isLoaded(path)).toBe(true);
    // what it hands out is guarded: a failure is a custos error
    catchCustos(() => a.C_GetSlotList(true), 'E_HSM');
  });

  test('two names of one library are one library; other parameters for it are refused', () => {
    const path = library();
    const alias = join(dir, `alias${n}.so`);
    symlinkSync(path, alias);
    const a = loadModule(path, "configdir='sql:/a'");
    expect(loadModule(alias, "configdir='sql:/a'")).toBe(a);
    const e = catchCustos(() => loadModule(alias, "configdir='sql:/b'"), 'E_CONFIG');
    expect(e.message).toBe(
      `PKCS#11 module ${alias} is already in use in this run with other library-parameters`,
    );
    catchCustos(() => loadModule(path), 'E_CONFIG');
    expect(events.filter((x) => x.startsWith('init'))).toHaveLength(1);
  });

  test('library parameters go to C_Initialize as written', () => {
    const params = "configdir='sql:/srv/nss' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
    loadModule(library(), params);
    expect(events[1]).toBe(`init ${params} ${P.CKF_OS_LOCKING_OK}`);
  });

  test('a path that does not exist, or a file that is not a PKCS#11 library', () => {
    const missing = catchCustos(() => loadModule(join(dir, 'nothing.so')), 'E_HSM_MODULE');
    expect(missing.message).toBe(`PKCS#11 module ${join(dir, 'nothing.so')} does not exist`);
    behaviour = { load: new Error('dlopen failed') };
    const path = library();
    const bad = catchCustos(() => loadModule(path), 'E_HSM_MODULE');
    expect(bad.message).toBe(`cannot load PKCS#11 module ${path}`);
    expect(isLoaded(path)).toBe(false);
  });

  test('a module already initialised in this process (by another library using it) is used', () => {
    behaviour = { initialize: P.CKR_CRYPTOKI_ALREADY_INITIALIZED };
    const path = library();
    expect(loadModule(path)).toBeDefined();
    expect(isLoaded(path)).toBe(true);
  });

  test.each([
    [
      'CKR_ARGUMENTS_BAD without parameters: it needs some',
      P.CKR_ARGUMENTS_BAD,
      undefined,
      /would not initialise without parameters \(CKR_ARGUMENTS_BAD\)$/,
      /give them as library-parameters/,
    ],
    [
      'a vendor code without parameters: it needs some',
      0x80000001,
      undefined,
      /would not initialise without parameters \(CKR_VENDOR_DEFINED\+0x1\)$/,
      /give them as library-parameters/,
    ],
    [
      'a failure with parameters: they are wrong',
      P.CKR_ARGUMENTS_BAD,
      "configdir='sql:/none'",
      /refused the library-parameters of its profile \(CKR_ARGUMENTS_BAD\)$/,
      /certutil -N -d sql:DIR/,
    ],
    [
      'any other failure',
      P.CKR_GENERAL_ERROR,
      undefined,
      /failed to initialise \(CKR_GENERAL_ERROR\)$/,
      /module's own configuration and log/,
    ],
  ])(
    'C_Initialize fails, %s; the library is closed and not kept',
    (_t, code, params, message, hint) => {
      behaviour = { initialize: code };
      const path = library();
      const e = catchCustos(() => loadModule(path, params), 'E_HSM_MODULE');
      expect(e.message).toMatch(message);
      expect(e.hint).toMatch(hint);
      expect(events.at(-1)).toBe('close');
      expect(isLoaded(path)).toBe(false);
    },
  );

  test('when the command ends, every loaded module is finalised and closed', () => {
    loadModule(library());
    loadModule(library());
    events.length = 0;
    finalizeModules();
    expect(events).toEqual(['finalize', 'close', 'finalize', 'close']);
  });
});
