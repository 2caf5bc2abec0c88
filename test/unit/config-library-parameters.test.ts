// custos.yaml: a profile's library-parameters, the initialisation string a module such as NSS
// softoken needs (passed to C_Initialize as written).
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/core/config.js';
import { catchCustos, lineOf } from './helpers.js';

const NSS = "configdir='sql:/srv/nss/keys' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
const config = (value: string) => `hsms:
  nss:
    module: /usr/lib/x86_64-linux-gnu/libsoftokn3.so
    library-parameters: ${value}
    token: NSS Certificate DB
    pin: env:NSS_PIN
  soft:
    module: /usr/lib/softhsm/libsofthsm2.so
    token: lab
`;

describe('library-parameters', () => {
  test('is read as written (double-quoted, single quotes inside), and absent from profiles without it', () => {
    const c = parseConfig('custos.yaml', config(JSON.stringify(NSS)));
    expect(c.hsms.get('nss')?.libraryParameters).toBe(NSS);
    expect(c.hsms.get('soft')).not.toHaveProperty('libraryParameters');
  });

  test('several tokens in one module: the tokens=<…> form', () => {
    const many =
      "flags=noCertDB,noModDB tokens=<0x04=[configdir='sql:/a' tokenDescription='a'] 0x05=[configdir='sql:/b' tokenDescription='b']>";
    expect(
      parseConfig('custos.yaml', config(JSON.stringify(many))).hsms.get('nss')?.libraryParameters,
    ).toBe(many);
  });

  test('written with nothing after it, it counts as absent', () => {
    expect(parseConfig('custos.yaml', config('')).hsms.get('nss')).not.toHaveProperty(
      'libraryParameters',
    );
  });

  test('blank, or more than one line, is refused with its line', () => {
    for (const value of ['"  "', '"a\\nb"']) {
      const text = config(value);
      const err = catchCustos(() => parseConfig('custos.yaml', text), 'E_CONFIG');
      expect(err.message).toBe(
        `custos.yaml:${lineOf(text, 'library-parameters:')}: profile "nss" library-parameters must be one line of text (the module's initialisation string), or left out`,
      );
    }
  });

  test('a misspelt field is named, with library-parameters among those allowed', () => {
    const err = catchCustos(
      () =>
        parseConfig(
          'custos.yaml',
          config(JSON.stringify(NSS)).replace('library-parameters', 'library-parameter'),
        ),
      'E_CONFIG',
    );
    expect(err.message).toMatch(
      /unknown field "library-parameter" in profile "nss" \(allowed: module, token, pin, so-pin, library-parameters\)/,
    );
  });
});
