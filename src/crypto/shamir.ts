/**
 * Shamir m-of-n over GF(2^8), through secrets.js-grempe. Its combine() returns *something* for any
 * input, so callers must authenticate shares before combining and check the result afterwards.
 */
import secrets from 'secrets.js-grempe';
import { CustosError } from '../core/errors.js';

secrets.init(8, 'nodeCryptoRandomBytes');

export function splitSecret(secret: Uint8Array, total: number, threshold: number): string[] {
  if (threshold < 2 || threshold > total || total > 255) {
    throw new CustosError(
      'E_POLICY',
      `cannot split into ${threshold}-of-${total}`,
      'use 2 ≤ threshold ≤ custodians ≤ 255',
    );
  }
  // Hex straight from the caller's bytes: a Buffer copy here would be a second copy never wiped.
  // The hex strings themselves cannot be wiped (docs/security-model.md, Limits).
  return secrets.share(
    Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength).toString('hex'),
    total,
    threshold,
  );
}

/**
 * Combines shares into a secret of `length` bytes; a result of any other length means garbage in.
 */
export function combineShares(shares: readonly string[], length: number): Buffer | null {
  const hex = secrets.combine([...shares]);
  if (hex.length !== length * 2 || !/^[0-9a-f]*$/.test(hex)) return null;
  return Buffer.from(hex, 'hex');
}

/** The 1-based x coordinate a share string carries, or null if it is not a share string. */
export function shareIndex(share: string): number | null {
  try {
    const { id, bits } = secrets.extractShareComponents(share);
    return bits === 8 && Number.isInteger(id) && id >= 1 && id <= 255 ? id : null;
  } catch {
    return null;
  }
}
