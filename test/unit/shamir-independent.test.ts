// custos's Shamir shares against vectors computed independently of secrets.js-grempe (and of
// spec/vectors/make.mjs): spec/shamir-independent.py works from SPEC.md alone, in Python. Both
// directions are checked: custos combines the Python shares, and custos's own shares interpolate,
// with the Python's Lagrange tables (lookups and XOR only, no field arithmetic here), to the padded
// secret SPEC.md describes, with polynomials of exactly the threshold's degree.
import { describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { combineShares, shareIndex, splitSecret } from '../../src/crypto/shamir.js';

const DIR = new URL('../../spec/vectors/', import.meta.url);
const read = (file: string) => JSON.parse(readFileSync(new URL(file, DIR), 'utf8'));

interface Vector {
  generator: string;
  secret: string;
  threshold: number;
  padded: string;
  shares: { x: number; share: string }[];
  lagrange?: { xs: number[]; at: number; multiply: number[][] }[];
}

const manifest = read('MANIFEST.json') as { vectors: { file: string; format: string }[] };
const FILES = manifest.vectors
  .filter((v) => v.file.startsWith('shamir/independent-'))
  .map((v) => v.file);
const vectors: [string, Vector][] = FILES.map((f) => [f, read(f) as Vector]);

/** SPEC.md: P = zero bytes || 0x01 || S, of 16·⌈(8n + 1)/128⌉ bytes. */
function padded(secret: Buffer): Buffer {
  const size = 16 * Math.ceil((8 * secret.length + 1) / 128);
  return Buffer.concat([Buffer.alloc(size - secret.length - 1), Buffer.from([1]), secret]);
}

/** A share as SPEC.md lays it out: "8", x in two hex digits, then one byte per padded byte. */
function parse(share: string): { x: number; ys: Buffer } {
  expect(share).toMatch(/^8[0-9a-f]{2}(?:[0-9a-f]{2})+$/);
  return { x: parseInt(share.slice(1, 3), 16), ys: Buffer.from(share.slice(3), 'hex') };
}

const first = vectors[0]?.[1] as Vector;
const TABLES = first.lagrange ?? [];

/** Interpolates each byte position at `table.at` from the shares numbered `table.xs`. */
function interpolate(table: (typeof TABLES)[number], byX: Map<number, Buffer>): Buffer {
  const rows = table.xs.map((x) => byX.get(x) as Buffer);
  const out = Buffer.alloc((rows[0] as Buffer).length);
  for (let k = 0; k < out.length; k++) {
    let y = 0;
    for (const [i, row] of rows.entries())
      y ^= (table.multiply[i] as number[])[row[k] as number] as number;
    out[k] = y;
  }
  return out;
}

describe('the independent vectors', () => {
  test('are listed in the manifest, were made by the Python generator, and follow SPEC.md', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(6);
    for (const [file, v] of vectors) {
      expect(v.generator, file).toMatch(/^spec\/shamir-independent\.py /);
      const secret = Buffer.from(v.secret, 'hex');
      expect(v.padded, file).toBe(padded(secret).toString('hex'));
      for (const s of v.shares) expect(parse(s.share).ys.length, file).toBe(v.padded.length / 2);
    }
    expect(TABLES.length).toBeGreaterThanOrEqual(8);
  });

  test('the Lagrange tables give back the padded secret of the vector they come with', () => {
    const byX = new Map(first.shares.map((s) => [s.x, parse(s.share).ys]));
    for (const table of TABLES.filter((t) => t.at === 0 && t.xs.length === first.threshold))
      expect(interpolate(table, byX).toString('hex')).toBe(first.padded);
  });
});

describe.each(vectors)('custos combines %s', (_file, v) => {
  const secret = Buffer.from(v.secret, 'hex');
  const shares = v.shares.map((s) => s.share);

  test('every threshold-sized subset, in any order, and all shares together', () => {
    expect(shares.map(shareIndex)).toEqual(v.shares.map((s) => s.x));
    const pick = (from: number, size: number): string[][] =>
      size === 0
        ? [[]]
        : shares
            .slice(from)
            .flatMap((s, i) => pick(from + i + 1, size - 1).map((rest) => [s, ...rest]));
    for (const subset of pick(0, v.threshold)) {
      expect(combineShares(subset, secret.length)?.toString('hex')).toBe(v.secret);
      expect(combineShares([...subset].reverse(), secret.length)?.toString('hex')).toBe(v.secret);
    }
    expect(combineShares(shares, secret.length)?.toString('hex')).toBe(v.secret);
  });

  test('one share fewer than the threshold does not give the secret', () => {
    const got = combineShares(shares.slice(0, v.threshold - 1), secret.length);
    expect(got === null || !got.equals(secret)).toBe(true);
  });

  test('an edited share gives another secret, not an error', () => {
    const edited = shares.slice(0, v.threshold);
    const last = edited[edited.length - 1] as string;
    edited[edited.length - 1] = `${last.slice(0, -2)}${last.endsWith('00') ? '01' : '00'}`;
    const got = combineShares(edited, secret.length);
    expect(got === null || !got.equals(secret)).toBe(true);
  });
});

describe('custos splits as SPEC.md says (checked with the Python Lagrange tables)', () => {
  const cases: [number, number, number][] = [
    // threshold, custodians, secret length
    [2, 3, 32],
    [2, 3, 1],
    [3, 5, 32],
    [3, 5, 15],
    [3, 5, 16],
    [3, 5, 47],
    [5, 5, 32],
    [5, 5, 64],
  ];

  test.each(cases)('%i-of-%i, a %i-byte secret', (threshold, total, length) => {
    const secret = randomBytes(length);
    const shares = splitSecret(secret, total, threshold);
    const parsed = shares.map(parse);
    expect(parsed.map((p) => p.x)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const p = padded(secret);
    for (const s of parsed) expect(s.ys.length).toBe(p.length);
    const byX = new Map(parsed.map((s) => [s.x, s.ys]));
    const usable = TABLES.filter((t) => t.xs.every((x) => x <= total));
    const full = usable.filter((t) => t.xs.length === threshold);
    expect(full.length).toBeGreaterThan(0);
    for (const table of full) {
      const got = interpolate(table, byX);
      // at 0: the padded secret; at another share's x: that share (degree threshold − 1 at most)
      expect(got.toString('hex'), `${table.xs} at ${table.at}`).toBe(
        table.at === 0 ? p.toString('hex') : byX.get(table.at)?.toString('hex'),
      );
    }
    // fewer shares than the threshold do not determine it (degree exactly threshold − 1)
    const fewer = usable.filter((t) => t.at === 0 && t.xs.length < threshold);
    expect(fewer.length).toBeGreaterThan(0);
    for (const table of fewer) expect(interpolate(table, byX).equals(p)).toBe(false);
  });
});
