import { describe, expect, test } from 'vitest';
import { createHmac, hkdfSync } from 'node:crypto';
import { wipe } from '../../src/crypto/wipe.js';
import { hmacWithKek } from '../../src/crypto/aes.js';
import { combineShares, splitSecret } from '../../src/crypto/shamir.js';

describe('wipe', () => {
  test('zeroes every buffer given, a view of a larger one only over its own bytes', () => {
    const a = Buffer.from('secret bytes');
    const whole = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const view = whole.subarray(2, 4);
    wipe(a, null, undefined, view);
    expect([...a].every((b) => b === 0)).toBe(true);
    expect([...whole]).toEqual([1, 2, 0, 0, 5, 6]);
  });

  test('the bundle MAC is still HMAC-SHA256 under the HKDF key, and the KEK is left as it was', () => {
    const kek = Buffer.alloc(32, 7);
    const data = Buffer.from('authenticated bytes');
    const key = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'custos bundle-mac', 32));
    expect(hmacWithKek(kek, 'bundle-mac', data)).toEqual(
      createHmac('sha256', key).update(data).digest(),
    );
    expect(kek).toEqual(Buffer.alloc(32, 7));
  });

  test('splitting reads the secret through a view: a secret inside a larger buffer splits right', () => {
    const backing = Buffer.alloc(48, 0xee);
    const secret = backing.subarray(8, 40).fill(0x5a);
    const shares = splitSecret(secret, 3, 2);
    expect(combineShares(shares.slice(1), 32)).toEqual(Buffer.alloc(32, 0x5a));
  });
});
