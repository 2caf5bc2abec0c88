import { describe, expect, test } from 'vitest';
import { parseConfig, parsePinSource } from '../../src/core/config.js';
import { catchCustos, lineOf } from './helpers.js';

describe('parsePinSource', () => {
  test.each([
    ['prompt', { kind: 'prompt' }],
    ['escrow:/var/custos/backup-pin', { kind: 'escrow', dir: '/var/custos/backup-pin' }],
    ['file:/run/secrets/hsm-pin', { kind: 'file', path: '/run/secrets/hsm-pin' }],
    ['file:pin.txt', { kind: 'file', path: 'pin.txt' }],
    ['file:C:\\pins\\a b.txt', { kind: 'file', path: 'C:\\pins\\a b.txt' }],
    ['env:HSM_PIN', { kind: 'env', name: 'HSM_PIN' }],
    ['env:_x9', { kind: 'env', name: '_x9' }],
  ])('%j', (text, expected) => {
    expect(parsePinSource(text)).toEqual(expected);
  });

  test.each([
    '1234',
    'hunter2',
    '',
    'file:',
    'env:',
    'env:9LIVES',
    'env:HSM-PIN',
    'env:HSM PIN',
    'Prompt',
    'prompt ',
    ' env:X',
    'ENV:X',
    'FILE:/x',
  ])('%j is not a pin source', (text) => {
    expect(parsePinSource(text)).toBeNull();
  });
});

const CONFIG = `# custos configuration
hsms:
  primary:
    module: /usr/lib/softhsm/libsofthsm2.so
    token: prod
    pin: env:PRIMARY_PIN
  backup:
    module: /opt/hsm/lib.so
    token: "backup token"
    pin: file:/etc/custos/backup.pin
  lab:
    module: /usr/lib/softhsm/libsofthsm2.so
    token: lab
`;

describe('parseConfig', () => {
  test('reads every profile, defaulting the pin to a prompt', () => {
    const c = parseConfig('custos.yaml', CONFIG);
    expect([...c.hsms.keys()]).toEqual(['primary', 'backup', 'lab']);
    const prompt = { kind: 'prompt' };
    expect(c.hsms.get('primary')).toEqual({
      name: 'primary',
      module: '/usr/lib/softhsm/libsofthsm2.so',
      token: 'prod',
      pin: { kind: 'env', name: 'PRIMARY_PIN' },
      soPin: prompt,
    });
    expect(c.hsms.get('backup')).toEqual({
      name: 'backup',
      module: '/opt/hsm/lib.so',
      token: 'backup token',
      pin: { kind: 'file', path: '/etc/custos/backup.pin' },
      soPin: prompt,
    });
    expect(c.hsms.get('lab')?.pin).toEqual({ kind: 'prompt' });
  });

  test('empty file and empty hsms give no profiles', () => {
    expect(parseConfig('c.yaml', '').hsms.size).toBe(0);
    expect(parseConfig('c.yaml', '# nothing\n').hsms.size).toBe(0);
  });

  test('an empty "hsms:" section gives no profiles (the code means to accept it)', () => {
    // config.ts returns early when the hsms node is null, but the yaml library gives a
    // Scalar(null) node for "hsms:" with nothing under it, so that branch is never taken.
    expect(parseConfig('c.yaml', 'hsms:\n').hsms.size).toBe(0);
  });

  test('a literal PIN is rejected with its line, and the PIN is not echoed', () => {
    for (const pin of ['"84736251"', 'hunter2', 'correct horse']) {
      const text = CONFIG.replace('pin: file:/etc/custos/backup.pin', `pin: ${pin}`);
      const err = catchCustos(() => parseConfig('custos.yaml', text), 'E_CONFIG');
      expect(err.message).toMatch(
        new RegExp(
          `^custos\\.yaml:${lineOf(text, `pin: ${pin}`)}: profile "backup" pin must be file:PATH, env:VARNAME, escrow:DIR or prompt`,
        ),
      );
      const bare = pin.replace(/"/g, '');
      expect(err.message).not.toContain(bare);
      expect(err.hint ?? '').not.toContain(bare);
    }
  });

  test('a numeric PIN (a YAML number) is rejected with its line and not echoed', () => {
    const text = CONFIG.replace('pin: env:PRIMARY_PIN', 'pin: 918273');
    const err = catchCustos(() => parseConfig('custos.yaml', text), 'E_CONFIG');
    expect(err.message).toMatch(new RegExp(`^custos\\.yaml:${lineOf(text, 'pin: 918273')}: `));
    expect(err.message).not.toContain('918273');
  });

  test('a PIN in a broken YAML file is not echoed in the YAML error', () => {
    const text = CONFIG.replace('pin: env:PRIMARY_PIN', 'pin: "55501234');
    const err = catchCustos(() => parseConfig('custos.yaml', text), 'E_CONFIG');
    expect(err.message).toMatch(/^custos\.yaml:\d+: not valid YAML/);
    expect(err.message).not.toContain('55501234');
  });

  test('missing module or token names the profile and its line', () => {
    const noToken = CONFIG.replace('    token: lab\n', '');
    const e1 = catchCustos(() => parseConfig('custos.yaml', noToken), 'E_CONFIG');
    // The line of the profile: its name, or the first field of its mapping.
    const labLine = lineOf(noToken, '  lab:');
    expect(e1.message).toMatch(
      new RegExp(`^custos\\.yaml:(${labLine}|${labLine + 1}): profile "lab" is missing "token"$`),
    );
    const noModule = CONFIG.replace('    module: /opt/hsm/lib.so\n', '');
    const e2 = catchCustos(() => parseConfig('custos.yaml', noModule), 'E_CONFIG');
    const backupLine = lineOf(noModule, '  backup:');
    expect(e2.message).toMatch(
      new RegExp(
        `^custos\\.yaml:(${backupLine}|${backupLine + 1}): profile "backup" is missing "module"$`,
      ),
    );
  });

  test('unknown fields are reported at their line', () => {
    const typo = CONFIG.replace('    token: prod', '    tokne: prod');
    const e1 = catchCustos(() => parseConfig('custos.yaml', typo), 'E_CONFIG');
    expect(e1.message).toMatch(
      new RegExp(
        `^custos\\.yaml:${lineOf(typo, 'tokne')}: unknown field "tokne" in profile "primary"`,
      ),
    );
    const top = `${CONFIG}hsm:\n  x: 1\n`;
    const e2 = catchCustos(() => parseConfig('custos.yaml', top), 'E_CONFIG');
    expect(e2.message).toMatch(
      new RegExp(`^custos\\.yaml:${top.split('\n').indexOf('hsm:') + 1}: unknown field "hsm"`),
    );
  });

  test('invalid YAML names its line', () => {
    const text = CONFIG.replace('    token: prod', '\ttoken: prod');
    const err = catchCustos(() => parseConfig('custos.yaml', text), 'E_CONFIG');
    expect(err.message).toMatch(
      new RegExp(`^custos\\.yaml:${lineOf(text, '\ttoken')}: not valid YAML`),
    );
  });

  test('a profile name given twice is an error', () => {
    const text = `${CONFIG}  lab:\n    module: /x.so\n    token: t\n`;
    const err = catchCustos(() => parseConfig('custos.yaml', text), 'E_CONFIG');
    expect(err.message).toMatch(
      new RegExp(`^custos\\.yaml:${text.split('\n').lastIndexOf('  lab:') + 1}: `),
    );
  });

  test('hsms must be a mapping', () => {
    const err = catchCustos(() => parseConfig('custos.yaml', 'hsms:\n  - primary\n'), 'E_CONFIG');
    expect(err.message).toBe('custos.yaml:2: hsms must be a mapping');
  });
});
