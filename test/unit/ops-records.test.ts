// Which keys a backup takes and why it skips the others (selectKeys and labelFilter in
// src/ops/records.ts): only the choice is tested here, not the wording of the reasons.
import { describe, expect, test } from 'vitest';
import type { KeyObject } from '../../src/hsm/token.js';
import { labelFilter, selectKeys } from '../../src/ops/records.js';

function key(label: string, id: string, cls: KeyObject['class'], more: Partial<KeyObject> = {}) {
  return {
    handle: Buffer.alloc(8),
    label,
    id,
    class: cls,
    objectClass: 0,
    keyType: cls === 'secret' ? 'AES' : 'RSA',
    bits: 256,
    usage: {},
    private: true,
    sensitive: true,
    extractable: true,
    labelIsText: true,
    onToken: true,
    ...more,
  } as KeyObject;
}
const ALL = { include: ['*'], exclude: [] };

describe('selectKeys', () => {
  test('secret and private keys are taken, sorted by label then id; public keys are never taken or skipped', () => {
    const { chosen, skipped } = selectKeys(
      [
        key('b', '01', 'secret'),
        key('a', '02', 'private'),
        key('a', '02', 'public'),
        key('a', '01', 'secret'),
      ],
      ALL,
    );
    expect(chosen.map((k) => `${k.label}/${k.id}/${k.class}`)).toEqual([
      'a/01/secret',
      'a/02/private',
      'b/01/secret',
    ]);
    expect(skipped).toEqual([]);
  });

  test('not extractable, a label that is not text, or a second key of the same class, label and id: skipped, with a reason', () => {
    const { chosen, skipped } = selectKeys(
      [
        key('fixed', '01', 'secret', { extractable: false }),
        key('\ufffdraw', '02', 'secret', { labelIsText: false }),
        key('twin', '03', 'secret'),
        key('twin', '03', 'secret'),
        key('twin', '03', 'private'),
      ],
      ALL,
    );
    // same label and id: kept in the token's order
    expect(chosen.map((k) => `${k.label}/${k.class}`)).toEqual(['twin/secret', 'twin/private']);
    expect(skipped.map((s) => [s.label, s.id, s.class])).toEqual([
      ['fixed', '01', 'secret'],
      ['\ufffdraw', '02', 'secret'],
      ['twin', '03', 'secret'],
    ]);
    expect(skipped[0]?.reason).toMatch(/CKA_EXTRACTABLE/);
    for (const s of skipped) expect(s.reason.length).toBeGreaterThan(10);
  });

  test('keys outside the selection are neither taken nor reported as skipped', () => {
    const { chosen, skipped } = selectKeys(
      [
        key('prod-a', '01', 'secret'),
        key('prod-b', '02', 'secret', { extractable: false }),
        key('test-a', '03', 'secret', { extractable: false }),
        key('prod-old', '04', 'secret'),
      ],
      { include: ['prod-*'], exclude: ['*-old'] },
    );
    expect(chosen.map((k) => k.label)).toEqual(['prod-a']);
    expect(skipped.map((s) => s.label)).toEqual(['prod-b']);
  });
});

describe('labelFilter', () => {
  test('none when every label is taken anyway', () => {
    expect(labelFilter(ALL)).toBeUndefined();
    expect(labelFilter({ include: ['a', '*'], exclude: [] })).toBeUndefined();
  });

  test('otherwise the selection itself, glob by glob', () => {
    const f = labelFilter({ include: ['*'], exclude: ['tmp-?'] });
    expect(f?.('tmp-1')).toBe(false);
    expect(f?.('tmp-12')).toBe(true);
    const g = labelFilter({ include: ['pay*', 'k?'], exclude: [] });
    expect(['payments', 'pay', 'k1', 'k12', 'other'].filter((l) => g?.(l))).toEqual([
      'payments',
      'pay',
      'k1',
    ]);
  });
});
