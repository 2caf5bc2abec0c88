import { describe, expect, test } from 'vitest';
import { globToRegExp, matchesAny } from '../../src/core/glob.js';

describe('globToRegExp', () => {
  test.each([
    ['*', '', true],
    ['*', 'anything at all', true],
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['abc', 'xabc', false],
    ['abc', 'ABC', false],
    ['a*c', 'ac', true],
    ['a*c', 'abbbc', true],
    ['a*c', 'abbbcd', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['a?c', 'abbc', false],
    ['??', 'ab', true],
    ['??', 'a', false],
    ['*-?', 'key-1', true],
    ['*-?', 'key-12', false],
    ['**', 'x', true],
  ])('%j against %j → %s', (glob, label, expected) => {
    expect(globToRegExp(glob).test(label)).toBe(expected);
  });

  test('regular-expression characters in a glob are literal', () => {
    const specials = ['.', '+', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\'];
    for (const ch of specials) {
      const glob = `k${ch}1`;
      expect(globToRegExp(glob).test(`k${ch}1`), glob).toBe(true);
      // If the character were live regex syntax, some of these would match.
      for (const other of ['kx1', 'k1', 'k', 'kk1', 'k\\1', 'k11']) {
        if (other !== glob)
          expect(globToRegExp(glob).test(other), `${glob} vs ${other}`).toBe(false);
      }
    }
    expect(globToRegExp('a.c').test('abc')).toBe(false);
    expect(globToRegExp('a+').test('aa')).toBe(false);
    expect(globToRegExp('(a|b)').test('a')).toBe(false);
    expect(globToRegExp('[ab]').test('a')).toBe(false);
    expect(globToRegExp('x{2}').test('xx')).toBe(false);
    expect(globToRegExp('a\\d').test('a1')).toBe(false);
    expect(globToRegExp('a\\d').test('a\\d')).toBe(true);
  });

  test('* and ? match across newlines (labels are arbitrary bytes)', () => {
    expect(globToRegExp('a*b').test('a\nb')).toBe(true);
    expect(globToRegExp('a?b').test('a\nb')).toBe(true);
  });

  test('? is exactly one character, also for non-ASCII labels', () => {
    expect(globToRegExp('cl?').test('clé')).toBe(true);
    expect(globToRegExp('??').test('日本')).toBe(true);
    expect(globToRegExp('?').test('日本')).toBe(false);
  });

  test('? is exactly one character for a label with a character outside the BMP', () => {
    // PKCS#11 labels are UTF-8; "key-😀" has 5 characters, so "key-?" must select it
    // and "key-??" must not.
    expect(globToRegExp('key-?').test('key-😀')).toBe(true);
    expect(globToRegExp('key-??').test('key-😀')).toBe(false);
  });

  test('non-ASCII literal characters match themselves', () => {
    expect(globToRegExp('schlüssel-*').test('schlüssel-1')).toBe(true);
    expect(globToRegExp('schlüssel-*').test('schlussel-1')).toBe(false);
    expect(globToRegExp('😀*').test('😀 key')).toBe(true);
  });
});

describe('matchesAny', () => {
  test('true when any glob matches, false for none or an empty list', () => {
    expect(matchesAny('prod-1', ['dev-*', 'prod-*'])).toBe(true);
    expect(matchesAny('prod-1', ['dev-*', 'test-*'])).toBe(false);
    expect(matchesAny('prod-1', [])).toBe(false);
    expect(matchesAny('', ['*'])).toBe(true);
    expect(matchesAny('', ['?'])).toBe(false);
  });
});
