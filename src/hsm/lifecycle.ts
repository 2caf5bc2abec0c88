/**
 * Finalisers for loaded PKCS#11 modules, kept apart so the CLI can run them without loading
 * pkcs11js.
 */
const finalizers: (() => void)[] = [];

export function onFinalize(fn: () => void): void {
  finalizers.push(fn);
}

export function finalizeModules(): void {
  for (const fn of finalizers.splice(0)) fn();
}
