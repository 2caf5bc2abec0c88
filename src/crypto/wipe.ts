/**
 * Wiping secrets: the one way custos overwrites a secret it no longer needs. It reaches byte
 * buffers only; what it cannot reach (strings, copies inside libraries and OpenSSL) is listed in
 * docs/security-model.md, under Limits.
 */

/** Overwrites each buffer with zeros; absent ones (not made yet when a step failed) are skipped. */
export function wipe(...secrets: (Uint8Array | null | undefined)[]): void {
  for (const secret of secrets) secret?.fill(0);
}
