/**
 * What reaches a terminal from someone else's file: every control, bidi and separator mark shown,
 * not obeyed.
 */
import { describe, expect, test } from 'vitest';
import { hasUnsafeText, printable } from '../../src/core/text.js';

describe('printable', () => {
  test('escapes C0, DEL and C1 controls as \\xNN, and bidi marks and separators as \\u{NNNN}', () => {
    expect(printable('M-1\nfake: line\u001b[8m\u007f\u0085')).toBe(
      'M-1\\x0afake: line\\x1b[8m\\x7f\\x85',
    );
    expect(printable('abc\u202edcba\u2066x\u2069\u2028')).toBe(
      'abc\\u{202e}dcba\\u{2066}x\\u{2069}\\u{2028}',
    );
  });

  test('leaves ordinary text alone, accents and other scripts included', () => {
    for (const s of ['Lindqvist Advokatbyrå', 'payments-aes-01', 'Ōkafor & Co — 東京', ''])
      expect(printable(s)).toBe(s);
  });

  test('hasUnsafeText agrees with printable, and does not keep state between calls', () => {
    for (const s of ['ok', 'a\tb', 'x\u202ey', 'plain', 'tab\u0009', 'again']) {
      expect(hasUnsafeText(s)).toBe(printable(s) !== s);
      expect(hasUnsafeText(s)).toBe(printable(s) !== s);
    }
  });
});
