// The return codes the documentation says let custos try another way, read from the documents
// themselves, against what the code does with every return code pkcs11js knows: a documented code
// is passed over, any other stops the command. A change to either side without the other fails.
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CustosError } from '../../src/core/errors.js';
import { P, type Pkcs11 } from '../../src/hsm/call.js';
import { negotiateTransport } from '../../src/hsm/transport.js';
import { secretCheckValue } from '../../src/hsm/proofs.js';
import { rewrapKey } from '../../src/hsm/wrapping.js';
import type { Token } from '../../src/hsm/token.js';
import type { KeyObject } from '../../src/hsm/objects.js';
import { FakeModule, fakeSession, handle, pkcs11Error } from './hsm-fake.js';

const doc = (name: string) =>
  readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8').replace(/\s+/g, ' ');

/** The CKR_ names between two phrases of a document. */
function codesBetween(text: string, from: string, to: string): string[] {
  const start = text.indexOf(from);
  const end = text.indexOf(to, start);
  expect(start, `"${from}" in the document`).toBeGreaterThanOrEqual(0);
  expect(end, `"${to}" after it`).toBeGreaterThan(start);
  return [...new Set(text.slice(start, end).match(/CKR_[A-Z_]+/g) ?? [])].sort();
}

const ALL_CKR: [string, number][] = Object.entries(P as unknown as Record<string, unknown>)
  .filter(([n, v]) => n.startsWith('CKR_') && n !== 'CKR_OK' && typeof v === 'number')
  .map(([n, v]) => [n, v as number]);

/** What a code that is not passed over becomes (hsmError: the PIN codes keep their own). */
const stopsAs = (name: string) =>
  name === 'CKR_PIN_INCORRECT'
    ? 'E_PIN_INCORRECT'
    : name === 'CKR_PIN_LOCKED'
      ? 'E_PIN_LOCKED'
      : name === 'CKR_MECHANISM_INVALID' ||
          name === 'CKR_MECHANISM_PARAM_INVALID' ||
          name === 'CKR_FUNCTION_NOT_SUPPORTED'
        ? 'E_MECHANISM'
        : 'E_HSM';

describe('HSM-to-HSM transport (docs/hsm-copy.md, "Mechanism negotiation")', () => {
  const documented = codesBetween(
    doc('hsm-copy.md'),
    'A candidate that either token refuses with',
    'is passed over',
  );

  test('the document names the four refusals', () => {
    expect(documented).toEqual([
      'CKR_ARGUMENTS_BAD',
      'CKR_FUNCTION_NOT_SUPPORTED',
      'CKR_MECHANISM_INVALID',
      'CKR_MECHANISM_PARAM_INVALID',
    ]);
  });

  function tokens(code: number) {
    const wraps: number[] = [];
    const source = {
      C_GetMechanismInfo: () => ({ flags: P.CKF_WRAP | P.CKF_UNWRAP }),
      C_WrapKey: (_s: Buffer, m: { parameter: { hashAlg: number } }) => {
        wraps.push(m.parameter.hashAlg);
        if (m.parameter.hashAlg === P.CKM_SHA256) throw pkcs11Error(code, 'C_WrapKey');
        return Buffer.from('blob');
      },
    };
    const target = {
      C_GetMechanismInfo: (_slot: Buffer, m: number) => {
        if (m !== P.CKM_RSA_PKCS_OAEP) throw pkcs11Error(P.CKR_MECHANISM_INVALID);
        return { flags: P.CKF_WRAP | P.CKF_UNWRAP };
      },
      C_UnwrapKey: () => handle(7),
    };
    const token = (lib: object, label: string) =>
      ({
        lib: lib as Pkcs11,
        session: handle(1),
        slot: handle(2),
        identity: { label },
      }) as unknown as Token;
    return { source: token(source, 'a'), target: token(target, 'b'), wraps };
  }

  test.each(ALL_CKR)('source answers %s to SHA-256', (name, code) => {
    const { source, target, wraps } = tokens(code);
    if (documented.includes(name)) {
      const n = negotiateTransport(source, target, handle(3), handle(4), handle(5));
      expect(n.mechanism.name).toBe('RSA-OAEP-SHA1 + AES-KWP');
      expect(wraps).toEqual([P.CKM_SHA256, P.CKM_SHA_1]);
    } else {
      let caught: unknown;
      try {
        negotiateTransport(source, target, handle(3), handle(4), handle(5));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(CustosError);
      expect((caught as CustosError).code).toBe(stopsAs(name));
      expect((caught as CustosError).message).toContain(name);
      expect(wraps).toEqual([P.CKM_SHA256]);
    }
  });
});

describe('check values (docs/configuration.md, "Check values")', () => {
  const documented = codesBetween(
    doc('configuration.md'),
    'A check value the module does not compute',
    'is no check value',
  );

  test('the document names six codes', () => {
    expect(documented).toEqual([
      'CKR_FUNCTION_NOT_SUPPORTED',
      'CKR_KEY_FUNCTION_NOT_PERMITTED',
      'CKR_KEY_SIZE_RANGE',
      'CKR_KEY_TYPE_INCONSISTENT',
      'CKR_MECHANISM_INVALID',
      'CKR_MECHANISM_PARAM_INVALID',
    ]);
  });

  test.each(ALL_CKR)('the token answers %s to AES-ECB', (name, code) => {
    const lib = new FakeModule({ fail: (fn) => (fn === 'C_EncryptInit' ? code : undefined) });
    const t = fakeSession(lib);
    const key = {
      handle: lib.add({ template: [], value: randomBytes(32) }),
      label: 'k',
      keyType: 'AES',
      usage: { encrypt: true },
    } as KeyObject;
    if (documented.includes(name)) {
      expect(secretCheckValue(t, key)).toEqual({ method: 'none', value: '' });
    } else {
      let caught: unknown;
      try {
        secretCheckValue(t, key);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(CustosError);
      expect((caught as CustosError).code).toBe(stopsAs(name));
    }
  });
});

describe('the re-wrap proof (docs/configuration.md, "Restore")', () => {
  const documented = codesBetween(doc('configuration.md'), 'or will not wrap the key (', ')');

  test('the document names the two codes of a key that may not leave, and "mechanism not supported"', () => {
    expect(documented).toEqual(['CKR_KEY_NOT_WRAPPABLE', 'CKR_KEY_UNEXTRACTABLE']);
    expect(doc('configuration.md')).toContain(
      'or will not wrap the key (`CKR_KEY_UNEXTRACTABLE`, `CKR_KEY_NOT_WRAPPABLE`, mechanism not supported)',
    );
  });

  // "mechanism not supported": the codes docs/configuration.md names as such for check values
  const NOT_SUPPORTED = [
    'CKR_MECHANISM_INVALID',
    'CKR_MECHANISM_PARAM_INVALID',
    'CKR_FUNCTION_NOT_SUPPORTED',
  ];

  test.each(ALL_CKR)('the token answers %s to the re-wrap', (name, code) => {
    let wraps = 0;
    const lib = new FakeModule({
      mechanisms: { [P.CKM_AES_KEY_WRAP_PAD]: P.CKF_WRAP | P.CKF_UNWRAP },
      wrapKinds: { [P.CKM_AES_KEY_WRAP_PAD]: 'rfc5649' },
      // the first wrap is the known-answer test
      fail: (fn) => (fn === 'C_WrapKey' && ++wraps > 1 ? code : undefined),
    });
    const t = fakeSession(lib);
    const kek = lib.add({ template: [], value: randomBytes(32) });
    const key = {
      handle: lib.add({ template: [], value: randomBytes(32) }),
      label: 'k',
      class: 'secret',
      bits: 256,
    } as KeyObject;
    if (documented.includes(name) || NOT_SUPPORTED.includes(name)) {
      expect(rewrapKey(t, kek, key)).toBeNull();
    } else if (name === 'CKR_BUFFER_TOO_SMALL') {
      // asked for a larger buffer until 1 MiB, then an error
      expect(() => rewrapKey(t, kek, key)).toThrow(CustosError);
    } else {
      let caught: unknown;
      try {
        rewrapKey(t, kek, key);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(CustosError);
      expect((caught as CustosError).code).toBe(stopsAs(name));
    }
  });
});
