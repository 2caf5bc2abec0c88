/** Shared fixtures for the unit tests. Public age recipients only (made with age-keygen). */
import { expect } from 'vitest';
import { createDecipheriv } from 'node:crypto';
import { CustosError, type ErrorCode } from '../../src/core/errors.js';

export const RECIPIENTS = [
  'age15t0q0url8pammfmzpxs2xdjkcad6tmp4ct5r5jdhr7n7qd9tavhq63ur4r',
  'age1m2ze8pkgrnllwddqlldu4r9xfv7pv8uqvvd55f6enl34mxs5nq5qdjttxn',
  'age1teu7pya84tudd86zppl9s8wkswl3cpxrphge53qltr6uw7tjrcmsca084u',
  'age1hsppzl39sr7f93t5zsvqnrjcpl55vktd7vee8zu8ep6uc6v3x3kqsfhqja',
] as const;

/** Runs `fn`, asserts it throws a CustosError with `code`, and returns that error. */
export function catchCustos(fn: () => unknown, code: ErrorCode): CustosError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  return expectCustosError(thrown, code);
}

export async function catchCustosAsync(
  fn: () => Promise<unknown>,
  code: ErrorCode,
): Promise<CustosError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  return expectCustosError(thrown, code);
}

function expectCustosError(thrown: unknown, code: ErrorCode): CustosError {
  expect(thrown, 'expected a CustosError to be thrown').toBeInstanceOf(CustosError);
  const err = thrown as CustosError;
  expect(err.code).toBe(code);
  return err;
}

/** 1-based number of the only line of `text` that contains `marker`. */
export function lineOf(text: string, marker: string): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(marker) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`fixture: "${marker}" occurs on ${hits.length} lines`);
  return hits[0] as number;
}

/** Every subset of `items` (as arrays, in order), including the empty one. */
export function subsets<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 0; mask < 1 << items.length; mask++)
    out.push(items.filter((_, i) => mask & (1 << i)));
  return out;
}

/**
 * RFC 5649 AES key wrap with padding through OpenSSL (id-aesNNN-wrap-pad): the oracle the e2e tests
 * rely on.
 */
export function kwpUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  const d = createDecipheriv(
    `id-aes${kek.length * 8}-wrap-pad`,
    kek,
    Buffer.from('a65959a6', 'hex'),
  );
  return Buffer.concat([d.update(wrapped), d.final()]);
}
