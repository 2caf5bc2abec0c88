/**
 * AES helpers done in software: only ever on a KEK (the split secret), never on a backed-up key.
 */
import { createCipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { wipe } from './wipe.js';

/**
 * Key check value: the first three bytes of AES-ECB over a zero block (the PKCS#11 CKA_CHECK_VALUE
 * rule).
 */
export function aesKcv(key: Uint8Array): string {
  const cipher = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  cipher.setAutoPadding(false);
  return cipher.update(Buffer.alloc(16)).subarray(0, 3).toString('hex');
}

export function freshKek(): Buffer {
  return randomBytes(32);
}

function macKey(kek: Uint8Array, purpose: string): Buffer {
  // A view of the bytes hkdfSync returns, so that wiping it wipes the only copy custos holds.
  return Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), `custos ${purpose}`, 32));
}

export function hmacWithKek(kek: Uint8Array, purpose: string, data: Uint8Array): Buffer {
  const key = macKey(kek, purpose);
  try {
    return createHmac('sha256', key).update(data).digest();
  } finally {
    wipe(key);
  }
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
