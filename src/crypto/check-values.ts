/** Check values that are computed on the host from public data only. */
import { createHash } from 'node:crypto';
import { ecSpki, rsaSpki } from '../core/der.js';

export const SPKI_CHECK_BYTES = 8;

export function spkiCheckValue(spki: Buffer): string {
  return createHash('sha256').update(spki).digest().subarray(0, SPKI_CHECK_BYTES).toString('hex');
}

/** The SPKI of an asymmetric key from its recorded public parts, or null if they are missing. */
export function spkiOf(k: {
  modulus?: string;
  publicExponent?: string;
  ecParams?: string;
  ecPoint?: string;
}): Buffer | null {
  if (k.modulus && k.publicExponent)
    return rsaSpki(Buffer.from(k.modulus, 'hex'), Buffer.from(k.publicExponent, 'hex'));
  if (k.ecParams && k.ecPoint)
    return ecSpki(Buffer.from(k.ecParams, 'hex'), Buffer.from(k.ecPoint, 'hex'));
  return null;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
