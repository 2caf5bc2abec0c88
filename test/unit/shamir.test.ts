import { describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { combineShares, shareIndex, splitSecret } from '../../src/crypto/shamir.js';
import { catchCustos, subsets } from './helpers.js';

describe.each([
  [2, 3],
  [3, 5],
  [4, 7],
  [2, 2],
  [5, 5],
])('%i-of-%i', (threshold, total) => {
  const secret = randomBytes(32);
  const shares = splitSecret(secret, total, threshold);

  test('makes one share per custodian, numbered 1..n in order, in the share-document syntax', () => {
    expect(shares).toHaveLength(total);
    expect(shares.map(shareIndex)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const s of shares) expect(s).toMatch(/^8[0-9a-f]{2}[0-9a-f]+$/);
    expect(new Set(shares).size).toBe(total);
  });

  test('every subset of at least the threshold recovers the secret, in any order', () => {
    const big = subsets(shares).filter((s) => s.length >= threshold);
    expect(big.length).toBeGreaterThan(0);
    for (const subset of big) {
      expect(combineShares(subset, 32)?.equals(secret), `subset of ${subset.length}`).toBe(true);
      expect(combineShares([...subset].reverse(), 32)?.equals(secret)).toBe(true);
    }
  });

  test('no non-empty subset smaller than the threshold recovers it', () => {
    const small = subsets(shares).filter((s) => s.length > 0 && s.length < threshold);
    expect(small.length).toBeGreaterThan(0);
    for (const subset of small) {
      const got = combineShares(subset, 32);
      expect(got === null || !got.equals(secret), `subset of ${subset.length}`).toBe(true);
    }
  });
});

describe('splitSecret', () => {
  test('secrets with leading or trailing zero bytes come back at full length', () => {
    for (const hex of [
      '00'.repeat(32),
      `0000${'ab'.repeat(30)}`,
      `${'ff'.repeat(31)}00`,
      `01${'00'.repeat(31)}`,
    ]) {
      const secret = Buffer.from(hex, 'hex');
      const shares = splitSecret(secret, 3, 2);
      expect(combineShares(shares.slice(1), 32)?.toString('hex')).toBe(hex);
    }
  });

  test('other secret lengths work too', () => {
    for (const n of [1, 16, 24, 33, 64]) {
      const secret = randomBytes(n);
      const shares = splitSecret(secret, 4, 3);
      expect(combineShares([shares[3]!, shares[0]!, shares[2]!], n)?.equals(secret)).toBe(true);
    }
  });

  test('the same secret split twice gives different shares (fresh randomness)', () => {
    const secret = randomBytes(32);
    const a = splitSecret(secret, 3, 2);
    const b = splitSecret(secret, 3, 2);
    expect(a[0]).not.toBe(b[0]);
    // Shares from two different splits do not combine to the secret.
    const mixed = combineShares([a[0]!, b[1]!], 32);
    expect(mixed === null || !mixed.equals(secret)).toBe(true);
  });

  test('255 custodians is the maximum', () => {
    const secret = randomBytes(32);
    const shares = splitSecret(secret, 255, 2);
    expect(shareIndex(shares[254]!)).toBe(255);
    expect(combineShares([shares[254]!, shares[100]!], 32)?.equals(secret)).toBe(true);
  });

  test.each([
    [3, 1],
    [3, 0],
    [3, 4],
    [256, 2],
  ])('total %i threshold %i is refused', (total, threshold) => {
    const err = catchCustos(() => splitSecret(randomBytes(32), total, threshold), 'E_POLICY');
    expect(err.message).toBe(`cannot split into ${threshold}-of-${total}`);
  });
});

describe('combineShares', () => {
  test('a result of the wrong length is null', () => {
    const secret = randomBytes(32);
    const shares = splitSecret(secret, 3, 2);
    expect(combineShares(shares.slice(0, 2), 31)).toBeNull();
    expect(combineShares(shares.slice(0, 2), 33)).toBeNull();
    expect(combineShares(shares.slice(0, 2), 32)?.equals(secret)).toBe(true);
  });

  test('a share from another secret spoils the result', () => {
    const secret = randomBytes(32);
    const shares = splitSecret(secret, 3, 2);
    const foreign = splitSecret(randomBytes(32), 3, 2);
    const got = combineShares([shares[0]!, foreign[1]!], 32);
    expect(got === null || !got.equals(secret)).toBe(true);
  });
});

describe('shareIndex', () => {
  test('reads the x coordinate of real shares', () => {
    const shares = splitSecret(randomBytes(16), 12, 2);
    expect(shares.map(shareIndex)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  test('reads the id from the share text itself (8, two hex digits, data)', () => {
    expect(shareIndex('801abcd')).toBe(1);
    expect(shareIndex('80aabcd')).toBe(10);
    expect(shareIndex('8ffabcd')).toBe(255);
  });

  test.each(['', 'xyz', '800abcd', '3012345', 'z01abcd', '8'])('%j is not a share', (text) => {
    expect(shareIndex(text)).toBeNull();
  });
});
