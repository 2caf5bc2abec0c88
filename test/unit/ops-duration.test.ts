// Durations as written on the command line and in policies (src/core/duration.ts): a whole number
// from 1 to 99999 and one allowed unit, nothing else.
import { describe, expect, test } from 'vitest';
import { durationMs } from '../../src/core/duration.js';

const ALL = ['m', 'h', 'd'] as const;

describe('durationMs', () => {
  test.each([
    ['1m', 60_000],
    ['90m', 5_400_000],
    ['72h', 259_200_000],
    ['14d', 1_209_600_000],
    ['99999d', 99_999 * 86_400_000],
  ])('%s is %i ms', (text, ms) => {
    expect(durationMs(text, ALL)).toBe(ms);
  });

  test.each([
    '',
    '0m',
    '0d',
    '007d',
    '100000d',
    '1.5h',
    '-1d',
    '+1d',
    ' 1d',
    '1d ',
    '1 d',
    '1D',
    '1s',
    '1w',
    '1dd',
    'd',
    '1',
    '1day',
    '１d',
    '1d\n',
  ])('%j is refused', (text) => {
    expect(durationMs(text, ALL)).toBeNull();
  });

  test('only the units the caller allows', () => {
    expect(durationMs('30m', ['h', 'd'])).toBeNull();
    expect(durationMs('30h', ['h', 'd'])).toBe(108_000_000);
    expect(durationMs('2d', [])).toBeNull();
  });
});
