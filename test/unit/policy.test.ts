import { describe, expect, test } from 'vitest';
import { isSelected, parseKeySelection, parsePolicy } from '../../src/core/policy.js';
import { catchCustos, lineOf, RECIPIENTS } from './helpers.js';

const [R1, R2, R3, R4] = RECIPIENTS;

const VALID = `version: 1
name: treasury keys
description: production signing keys
threshold: 2
custodians:
  - id: alice
    name: Alice & Co LLP
    recipient: ${R1}
    organisation: Alice & Co
    contact: alice@example.org
  - id: bob.b
    recipient: ${R2}
  - id: carol_c-3
    recipient: ${R3}
keys:
  include: ["prod-*", "shared-??"]
  exclude: ["*-test"]
`;

/**
 * Parses `text` as policy "p.yaml", expects E_POLICY, and checks the message starts with
 * p.yaml:LINE:.
 */
function policyError(text: string, line: number, fragment: string | RegExp): string {
  const err = catchCustos(() => parsePolicy('p.yaml', text), 'E_POLICY');
  expect(err.message).toMatch(new RegExp(`^p\\.yaml:${line}: `));
  if (typeof fragment === 'string') expect(err.message).toContain(fragment);
  else expect(err.message).toMatch(fragment);
  expect(err.hint).toBeTruthy();
  return err.message;
}

describe('parsePolicy: a valid policy', () => {
  test('reads threshold, custodians in order, names defaulting to the id, and key globs', () => {
    const p = parsePolicy('p.yaml', VALID);
    expect(p.threshold).toBe(2);
    expect(p.custodians).toEqual([
      { id: 'alice', name: 'Alice & Co LLP', recipient: R1 },
      { id: 'bob.b', name: 'bob.b', recipient: R2 },
      { id: 'carol_c-3', name: 'carol_c-3', recipient: R3 },
    ]);
    expect(p.keys).toEqual({ include: ['prod-*', 'shared-??'], exclude: ['*-test'] });
  });

  test('without a keys section every key is included and none excluded', () => {
    const p = parsePolicy(
      'p.yaml',
      `threshold: 3\ncustodians:\n  - id: a\n    recipient: ${R1}\n  - id: b\n    recipient: ${R2}\n  - id: c\n    recipient: ${R3}\n`,
    );
    expect(p.threshold).toBe(3);
    expect(p.keys).toEqual({ include: ['*'], exclude: [] });
    expect(p.custodians.map((c) => c.id)).toEqual(['a', 'b', 'c']);
  });
});

describe('parsePolicy: errors name the file and line', () => {
  test('missing threshold', () => {
    const text = VALID.replace('threshold: 2\n', '');
    policyError(text, 1, 'missing "threshold"');
  });

  test('threshold above the number of custodians', () => {
    const text = VALID.replace('threshold: 2', 'threshold: 4');
    policyError(text, lineOf(text, 'threshold: 4'), /threshold must be between 2 and 3, not 4/);
  });

  test('threshold of 1 (no split at all)', () => {
    const text = VALID.replace('threshold: 2', 'threshold: 1');
    policyError(text, lineOf(text, 'threshold: 1'), /threshold must be between 2 and 3, not 1/);
  });

  test('threshold that is not a whole number', () => {
    const text = VALID.replace('threshold: 2', 'threshold: two');
    policyError(text, lineOf(text, 'threshold: two'), 'threshold must be a whole number');
    const frac = VALID.replace('threshold: 2', 'threshold: 2.5');
    policyError(frac, lineOf(frac, 'threshold: 2.5'), 'threshold must be a whole number');
  });

  test('duplicate custodian id, naming the first occurrence', () => {
    const text = VALID.replace('- id: carol_c-3', '- id: alice');
    const lines = text.split('\n').flatMap((l, i) => (l.includes('- id: alice') ? [i + 1] : []));
    expect(lines).toHaveLength(2);
    policyError(
      text,
      lines[1] as number,
      `custodian id "alice" is used twice (first at line ${lines[0]})`,
    );
  });

  test('duplicate recipient', () => {
    const text = VALID.replace(`recipient: ${R3}`, `recipient: ${R1}`);
    const msg = policyError(text, lineOf(text, '- id: carol_c-3'), 'same recipient');
    expect(msg).toContain(`line ${lineOf(text, '- id: alice')}`);
  });

  test('bad recipient (not an age X25519 recipient)', () => {
    for (const bad of [
      'age1notarecipient',
      R2.toUpperCase(),
      `${R2}x`,
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5',
    ]) {
      const text = VALID.replace(`recipient: ${R2}`, `recipient: ${bad}`);
      policyError(
        text,
        lineOf(text, `recipient: ${bad}`),
        /recipient of "bob\.b" must be an age X25519 recipient/,
      );
    }
  });

  test('missing recipient points at the custodian', () => {
    const text = VALID.replace(`    recipient: ${R2}\n`, '');
    policyError(text, lineOf(text, '- id: bob.b'), 'custodian "bob.b" is missing "recipient"');
  });

  test('bad custodian id', () => {
    for (const bad of ['Bob', '-bob', 'bob/../x', '"bob b"', 'a'.repeat(65)]) {
      const text = VALID.replace('- id: bob.b', `- id: ${bad}`);
      policyError(text, lineOf(text, `- id: ${bad}`), 'custodian id must be lower-case');
    }
  });

  test('unknown field (typo) in a custodian', () => {
    const text = VALID.replace(`    recipient: ${R2}`, `    recepient: ${R2}`);
    policyError(text, lineOf(text, 'recepient'), 'unknown field "recepient" in a custodian');
  });

  test('unknown field (typo) at the top level', () => {
    const text = VALID.replace('threshold: 2', 'treshold: 2');
    policyError(text, lineOf(text, 'treshold'), 'unknown field "treshold" in the policy');
  });

  test('unknown field in keys', () => {
    const text = VALID.replace('  exclude:', '  exclud:');
    policyError(text, lineOf(text, 'exclud:'), 'unknown field "exclud" in keys');
  });

  test('fewer than two custodians', () => {
    const text = `threshold: 2\ncustodians:\n  - id: alice\n    recipient: ${R1}\n`;
    const err = catchCustos(() => parsePolicy('p.yaml', text), 'E_POLICY');
    // The line of the list (its first item) or of the key that holds it.
    expect(err.message).toMatch(/^p\.yaml:[23]: at least two custodians are needed$/);
    const empty = 'threshold: 2\nname: x\ncustodians: []\n';
    policyError(empty, 3, 'at least two custodians are needed');
  });

  test('a key given twice is named, at its second line', () => {
    const text = `${VALID}threshold: 3\n`;
    policyError(text, text.split('\n').length - 1, '"threshold" appears twice in the policy');
  });

  test('invalid YAML: tab indentation', () => {
    const text = VALID.replace('    recipient: ' + R2, '\trecipient: ' + R2);
    policyError(text, lineOf(text, '\trecipient'), 'not valid YAML');
  });

  test('not a mapping at all', () => {
    policyError('- just\n- a list\n', 1, 'the policy must be a mapping');
  });

  test('wrong version', () => {
    const text = VALID.replace('version: 1', 'version: 2');
    policyError(text, 1, 'version must be between 1 and 1');
  });

  test('keys.include that selects nothing', () => {
    const text = VALID.replace('include: ["prod-*", "shared-??"]', 'include: []');
    policyError(text, lineOf(text, 'include: []'), 'keys.include selects nothing');
  });

  test('a custodian that is not a mapping', () => {
    const text = VALID.replace(`  - id: bob.b\n    recipient: ${R2}\n`, '  - bob\n');
    policyError(text, lineOf(text, '  - bob'), 'a custodian must be a mapping');
  });

  test('four custodians with threshold 4 is fine; a fifth with the same id as the second is not', () => {
    const base = `threshold: 4\ncustodians:\n  - id: a\n    recipient: ${R1}\n  - id: b\n    recipient: ${R2}\n  - id: c\n    recipient: ${R3}\n  - id: d\n    recipient: ${R4}\n`;
    expect(parsePolicy('p.yaml', base).threshold).toBe(4);
    const dup = `${base}  - id: b\n    recipient: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n`;
    policyError(dup, 11, 'custodian id "b" is used twice (first at line 5)');
  });
});

describe('isSelected', () => {
  const sel = { include: ['prod-*', 'shared-??'], exclude: ['*-test', 'prod-legacy'] };
  test.each([
    ['prod-signing', true],
    ['prod-', true],
    ['prod-signing-test', false],
    ['prod-legacy', false],
    ['prod-legacy2', true],
    ['shared-01', true],
    ['shared-1', false],
    ['shared-001', false],
    ['shared-ab-test', false],
    ['dev-signing', false],
    ['Prod-signing', false],
    ['xprod-signing', false],
    ['', false],
  ])('%j → %s', (label, expected) => {
    expect(isSelected(label, sel)).toBe(expected);
  });

  test('the default selection takes everything, including the empty label', () => {
    for (const label of ['', 'a', 'weird label*?', 'line\nbreak'])
      expect(isSelected(label, { include: ['*'], exclude: [] })).toBe(true);
  });

  test('exclude wins over include', () => {
    expect(isSelected('k1', { include: ['*'], exclude: ['*'] })).toBe(false);
    expect(isSelected('k1', { include: ['k1'], exclude: ['k?'] })).toBe(false);
  });
});

describe('parsePolicy: an empty keys section', () => {
  test('"keys:" with nothing under it is the same as leaving keys out (policy.ts means to accept it)', () => {
    // policy.ts skips the keys section when its node is null, but the yaml library gives a
    // Scalar(null) node for "keys:" with nothing under it, so that branch is never taken.
    const text = VALID.replace(
      'keys:\n  include: ["prod-*", "shared-??"]\n  exclude: ["*-test"]\n',
      'keys:\n',
    );
    expect(text).toMatch(/keys:\n$/);
    expect(parsePolicy('p.yaml', text).keys).toEqual({ include: ['*'], exclude: [] });
  });
});

describe('parseKeySelection (copies: only the keys section counts)', () => {
  test('a keys-only file is enough, and a full policy gives its keys', () => {
    expect(
      parseKeySelection('k.yaml', 'keys:\n  include: ["pay-*"]\n  exclude: ["pay-old"]\n'),
    ).toEqual({ include: ['pay-*'], exclude: ['pay-old'] });
    expect(parseKeySelection('k.yaml', '')).toEqual({ include: ['*'], exclude: [] });
    expect(parseKeySelection('k.yaml', 'threshold: 2\nkeys:\n  include: ["a"]\n')).toEqual({
      include: ['a'],
      exclude: [],
    });
  });

  test('typos and empty selections are still refused with their line', () => {
    expect(
      catchCustos(() => parseKeySelection('k.yaml', 'keys:\n  inclde: ["a"]\n'), 'E_POLICY')
        .message,
    ).toMatch(/^k\.yaml:2: unknown field "inclde"/);
    expect(
      catchCustos(() => parseKeySelection('k.yaml', 'key:\n  include: ["a"]\n'), 'E_POLICY')
        .message,
    ).toMatch(/^k\.yaml:1: unknown field "key"/);
    expect(
      catchCustos(() => parseKeySelection('k.yaml', 'keys:\n  include: []\n'), 'E_POLICY').message,
    ).toMatch(/^k\.yaml:2: keys\.include selects nothing/);
  });
});
