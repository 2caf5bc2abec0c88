/**
 * The envelope every signed or MACed custos file shares (src/core/envelope.ts): format line,
 * canonical JSON body, `--- TAG VALUE` trailers. Tested here on its own, with rules made for the
 * test, so a regression shows up here and not only through one of the four formats built on it.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { CustosError } from '../../src/core/errors.js';
import {
  MAX_JSON_DEPTH,
  canonicalBase64,
  envelopeBytes,
  isCanonical,
  jsonDepth,
  openEnvelope,
  parseBoundedJson,
  strictUtf8,
  withTrailers,
  type EnvelopeRules,
  type Trailer,
} from '../../src/core/envelope.js';
import {
  REQUEST_FORMAT,
  parseRequest,
  requestSignedBytes,
  serialiseRequest,
  type RequestBody,
} from '../../src/core/handover.js';
import {
  packageSignedBytes,
  parsePackage,
  serialisePackage,
  type PackageBody,
} from '../../src/core/handover-package.js';
import { catchCustos } from './helpers.js';

const FORMAT = 'custos-bundle/1';

/** A MAC-style file: the last trailer must be `mac`. */
const MACED: EnvelopeRules = {
  formats: [FORMAT],
  what: 'bundle',
  formatCode: 'E_BUNDLE_FORMAT',
  damagedCode: 'E_BUNDLE_TAMPERED',
  hint: 'use an intact copy',
  requiredTrailer: { tag: 'mac', name: 'MAC' },
};

/** A request-style file: any number of trailers, none required. */
const OPEN: EnvelopeRules = { ...MACED, requiredTrailer: undefined };

const BODY = {
  id: 'b'.repeat(32),
  label: 'clé-€-𝄞 “quoted” \\ "x"',
  n: 3,
  list: [1, { deep: [true, null] }],
  empty: {},
};
const MAC = Buffer.alloc(32, 0xa5).toString('base64');

/** The layout written out by hand, as docs describe it (not by envelopeBytes/withTrailers). */
function handWritten(body: unknown, trailers: string[]): Buffer {
  return Buffer.from(
    `${FORMAT}\n${JSON.stringify(body, null, 1)}\n${trailers.map((t) => `--- ${t}\n`).join('')}`,
    'utf8',
  );
}

const good = handWritten(BODY, [`mac ${MAC}`]);

function refused(
  file: Buffer,
  rules: EnvelopeRules,
  code: 'E_BUNDLE_FORMAT' | 'E_BUNDLE_TAMPERED',
  pattern: RegExp,
): CustosError {
  const e = catchCustos(() => openEnvelope('b.bundle', file, rules), code);
  expect(e.message).toMatch(/^b\.bundle/);
  expect(e.message).toMatch(pattern);
  expect(e.hint).toBe(rules.hint);
  return e;
}

/** Replaces the first occurrence of `marker` (ASCII) in `file` with `bytes`. */
function splice(file: Buffer, marker: string, bytes: number[]): Buffer {
  const at = file.indexOf(marker);
  expect(at, `fixture: ${marker}`).toBeGreaterThan(0);
  return Buffer.concat([
    file.subarray(0, at),
    Buffer.from(bytes),
    file.subarray(at + Buffer.byteLength(marker)),
  ]);
}

describe('round trip', () => {
  test('envelopeBytes + withTrailers write exactly the documented layout, and openEnvelope gives everything back', () => {
    const authenticated = envelopeBytes(FORMAT, BODY);
    const file = withTrailers(authenticated, [{ tag: 'mac', value: MAC }]);
    expect(file.equals(good)).toBe(true);
    const opened = openEnvelope('b.bundle', file, MACED);
    expect(opened.format).toBe(FORMAT);
    expect(opened.json).toEqual(BODY);
    expect(opened.trailers).toEqual([{ tag: 'mac', value: MAC }]);
    expect(opened.authenticated.equals(authenticated)).toBe(true);
    expect(opened.authenticated.equals(file.subarray(0, file.indexOf('--- mac ')))).toBe(true);
    expect(isCanonical(opened, opened.json)).toBe(true);
  });

  test('several trailers keep their order and their spaces; no trailer at all is fine when none is required', () => {
    const trailers: Trailer[] = [
      { tag: 'approval', value: '{"role": "gc", "a": "b c"}' },
      { tag: 'approval', value: '' },
      { tag: 'x', value: '  two leading spaces and é' },
    ];
    const file = withTrailers(envelopeBytes(FORMAT, BODY), trailers);
    expect(
      file.equals(
        handWritten(BODY, [
          'approval {"role": "gc", "a": "b c"}',
          'approval ',
          'x   two leading spaces and é',
        ]),
      ),
    ).toBe(true);
    expect(openEnvelope('b.bundle', file, OPEN).trailers).toEqual(trailers);
    const bare = openEnvelope('b.bundle', envelopeBytes(FORMAT, BODY), OPEN);
    expect(bare.trailers).toEqual([]);
    expect(bare.json).toEqual(BODY);
    expect(bare.authenticated.equals(envelopeBytes(FORMAT, BODY))).toBe(true);
  });

  test("authenticated is the file's own bytes, multi-byte characters counted as bytes", () => {
    const body = { s: '😀'.repeat(50) };
    const file = handWritten(body, [`mac ${MAC}`]);
    const opened = openEnvelope('b.bundle', file, MACED);
    expect(opened.authenticated.length).toBe(file.length - Buffer.byteLength(`--- mac ${MAC}\n`));
    expect(opened.authenticated.equals(file.subarray(0, opened.authenticated.length))).toBe(true);
  });

  test('a second accepted format is recognised and returned', () => {
    const rules = { ...MACED, formats: [FORMAT, 'custos-bundle/2'] };
    const file = Buffer.from(good.toString('utf8').replace(FORMAT, 'custos-bundle/2'));
    expect(openEnvelope('b.bundle', file, rules).format).toBe('custos-bundle/2');
  });
});

describe('strict UTF-8', () => {
  test('an invalid byte in the body is refused as damage, where a lenient decoder would have replaced it', () => {
    const file = splice(good, 'clé', [0x63, 0x6c, 0xff]);
    expect(file.toString('utf8')).toContain('cl\uFFFD');
    refused(
      file,
      MACED,
      'E_BUNDLE_TAMPERED',
      /^b\.bundle is not valid UTF-8 text: the file was changed or damaged$/,
    );
  });

  test('an overlong encoding ("/" as C0 AF, and as E0 80 AF) and an encoded surrogate are refused', () => {
    for (const bytes of [
      [0xc0, 0xaf],
      [0xe0, 0x80, 0xaf],
      [0xed, 0xa0, 0x80],
    ]) {
      refused(splice(good, 'clé', bytes), MACED, 'E_BUNDLE_TAMPERED', /is not valid UTF-8 text/);
      expect(strictUtf8(Buffer.from(bytes))).toBeNull();
    }
  });

  test('invalid UTF-8 in a trailer is refused too', () => {
    refused(
      Buffer.concat([
        envelopeBytes(FORMAT, BODY),
        Buffer.from('--- mac '),
        Buffer.from([0x80]),
        Buffer.from('\n'),
      ]),
      MACED,
      'E_BUNDLE_TAMPERED',
      /not valid UTF-8/,
    );
  });

  test('strictUtf8 decodes every valid sequence and keeps a byte-order mark', () => {
    expect(strictUtf8(Buffer.from('a é € 𝄞', 'utf8'))).toBe('a é € 𝄞');
    expect(strictUtf8(Buffer.from('\uFEFFx', 'utf8'))).toBe('\uFEFFx');
    expect(strictUtf8(Buffer.from([0xe2, 0x82]))).toBeNull(); // cut in the middle of a character
  });
});

describe('truncated and malformed files', () => {
  test('a missing final newline', () => {
    refused(
      good.subarray(0, -1),
      MACED,
      'E_BUNDLE_FORMAT',
      /^b\.bundle has no MAC line: the file is truncated$/,
    );
    refused(
      envelopeBytes(FORMAT, BODY).subarray(0, -1),
      OPEN,
      'E_BUNDLE_FORMAT',
      /^b\.bundle has no final newline: the file is truncated$/,
    );
    refused(
      withTrailers(envelopeBytes(FORMAT, BODY), [{ tag: 'approval', value: '{}' }]).subarray(0, -1),
      OPEN,
      'E_BUNDLE_FORMAT',
      /has no final newline/,
    );
  });

  test('a missing required trailer, or one that is not last', () => {
    refused(
      envelopeBytes(FORMAT, BODY),
      MACED,
      'E_BUNDLE_FORMAT',
      /^b\.bundle has no MAC line: the file is truncated$/,
    );
    refused(
      handWritten(BODY, ['sig AAAA']),
      MACED,
      'E_BUNDLE_FORMAT',
      /^b\.bundle does not end with its MAC line: the file is truncated or was edited$/,
    );
    refused(
      handWritten(BODY, [`mac ${MAC}`, 'note extra']),
      MACED,
      'E_BUNDLE_FORMAT',
      /does not end with its MAC line/,
    );
    // the same files are fine where no trailer is required
    expect(openEnvelope('b.bundle', handWritten(BODY, ['sig AAAA']), OPEN).trailers).toEqual([
      { tag: 'sig', value: 'AAAA' },
    ]);
  });

  test('a malformed trailer line: not starting with "--- ", no space after the tag, or blank', () => {
    const text = good.toString('utf8');
    refused(
      Buffer.from(`${text}trailing junk\n`),
      MACED,
      'E_BUNDLE_FORMAT',
      /^b\.bundle has a malformed line after its body: "trailing junk"$/,
    );
    refused(
      handWritten(BODY, ['mac']),
      MACED,
      'E_BUNDLE_FORMAT',
      /has a malformed line after its body: "--- mac"/,
    );
    refused(
      Buffer.from(`${text}\n`),
      OPEN,
      'E_BUNDLE_FORMAT',
      /has a malformed line after its body: ""/,
    );
    refused(
      Buffer.from(text.replace('\n--- mac', '\n---mac')),
      MACED,
      'E_BUNDLE_FORMAT',
      /has no MAC line: the file is truncated/,
    );
    // a long line is quoted only in part
    const e = refused(
      Buffer.from(`${text}${'x'.repeat(500)}\n`),
      MACED,
      'E_BUNDLE_FORMAT',
      /malformed line/,
    );
    expect(e.message.length).toBeLessThan(120);
  });

  test("a body that is not JSON is damage, named with the body's name", () => {
    const broken = Buffer.from(`${FORMAT}\n{"id": \n--- mac ${MAC}\n`);
    refused(
      broken,
      MACED,
      'E_BUNDLE_TAMPERED',
      /^b\.bundle: the bundle body is not valid JSON: the file was changed or damaged$/,
    );
    refused(
      broken,
      { ...MACED, body: 'ceremony body' },
      'E_BUNDLE_TAMPERED',
      /^b\.bundle: the ceremony body is not valid JSON/,
    );
  });
});

describe('format line', () => {
  test('another version of the same format names the version', () => {
    const file = Buffer.from(good.toString('utf8').replace(FORMAT, 'custos-bundle/9'));
    refused(
      file,
      MACED,
      'E_BUNDLE_FORMAT',
      /^b\.bundle is a custos-bundle\/9 bundle; this custos reads custos-bundle\/1$/,
    );
  });

  test('an unknown header, no header, an empty file, a byte-order mark, a header with trailing space', () => {
    const text = good.toString('utf8');
    const notOurs = /^b\.bundle is not a custos bundle \(no "custos-bundle\/1" header\)$/;
    refused(Buffer.from(text.replace(FORMAT, 'custos-share/1')), MACED, 'E_BUNDLE_FORMAT', notOurs);
    refused(
      Buffer.from(text.replace(FORMAT, 'custos-bundle/1x')),
      MACED,
      'E_BUNDLE_FORMAT',
      notOurs,
    );
    refused(Buffer.from(text.replace(FORMAT, `${FORMAT} `)), MACED, 'E_BUNDLE_FORMAT', notOurs);
    refused(Buffer.from(text.slice(FORMAT.length + 1)), MACED, 'E_BUNDLE_FORMAT', notOurs);
    refused(Buffer.alloc(0), MACED, 'E_BUNDLE_FORMAT', notOurs);
    refused(Buffer.from(`\uFEFF${text}`), MACED, 'E_BUNDLE_FORMAT', notOurs);
    refused(Buffer.from('x'.repeat(10_000)), MACED, 'E_BUNDLE_FORMAT', notOurs);
  });
});

describe('limits', () => {
  test('a body nested 10,000 deep is refused by its depth, without a stack overflow', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const file = Buffer.from(`${FORMAT}\n${deep}\n--- mac ${MAC}\n`);
    refused(
      file,
      MACED,
      'E_BUNDLE_TAMPERED',
      new RegExp(
        `^b\\.bundle: the bundle body nests deeper than ${MAX_JSON_DEPTH} levels: the file was changed or damaged$`,
      ),
    );
    expect(jsonDepth(deep)).toBe(10_000);
  });

  test('MAX_JSON_DEPTH levels are read; one more is refused', () => {
    const nested = (n: number) => `${'{"a":['.repeat(n / 2)}0${']}'.repeat(n / 2)}`;
    expect(MAX_JSON_DEPTH % 2).toBe(0);
    expect(jsonDepth(nested(MAX_JSON_DEPTH))).toBe(MAX_JSON_DEPTH);
    expect(
      openEnvelope(
        'b.bundle',
        Buffer.from(`${FORMAT}\n${nested(MAX_JSON_DEPTH)}\n--- mac ${MAC}\n`),
        MACED,
      ).json,
    ).toBeTruthy();
    const over = `[${nested(MAX_JSON_DEPTH)}]`;
    refused(
      Buffer.from(`${FORMAT}\n${over}\n--- mac ${MAC}\n`),
      MACED,
      'E_BUNDLE_TAMPERED',
      /nests deeper than/,
    );
  });

  test('jsonDepth does not count brackets inside strings, escaped quotes included', () => {
    expect(jsonDepth('{"a": "[[[{{{\\"[[[", "b": ["]]]"]}')).toBe(2);
    expect(jsonDepth('"\\\\"')).toBe(0);
    expect(jsonDepth('[["\\\\", [1]]]')).toBe(3);
    expect(parseBoundedJson('[[1]]', 1)).toEqual({ problem: 'nests deeper than 1 levels' });
    expect(parseBoundedJson('[[1]]', 2)).toEqual({ value: [[1]] });
    expect(parseBoundedJson('{"a": }')).toEqual({ problem: 'is not valid JSON' });
  });

  test('a file over the size cap is refused before it is decoded; one at the cap is read', () => {
    const rules = { ...MACED, maxBytes: good.length };
    expect(openEnvelope('b.bundle', good, rules).json).toEqual(BODY);
    const over = Buffer.concat([good, Buffer.from([0xff])]);
    refused(
      over,
      rules,
      'E_BUNDLE_FORMAT',
      new RegExp(`^b\\.bundle is ${good.length + 1} bytes, more than a custos bundle can be$`),
    );
  });
});

describe('canonical base64', () => {
  test('the canonical spelling gives the bytes; a second spelling of the same bytes (nonzero last bits) is refused', () => {
    expect(canonicalBase64('AA==')).toEqual(Buffer.from([0]));
    expect(Buffer.from('AB==', 'base64')).toEqual(Buffer.from([0]));
    expect(canonicalBase64('AB==')).toBeNull();
    expect(canonicalBase64('AAA=')).toEqual(Buffer.from([0, 0]));
    expect(canonicalBase64('AAB=')).toBeNull();
    expect(canonicalBase64(MAC, 32)).toHaveLength(32);
  });

  test('missing padding, white space, characters outside the alphabet, base64url, a wrong length are refused', () => {
    for (const text of [
      'AA',
      'AA=',
      'AA===',
      ' AA==',
      'AA==\n',
      'A A=',
      'AA=A',
      '-_8=',
      'AA==AA==',
      '====',
    ]) {
      expect(canonicalBase64(text), JSON.stringify(text)).toBeNull();
    }
    expect(canonicalBase64('AAAA', 3)).toHaveLength(3);
    expect(canonicalBase64('AAAA', 4)).toBeNull();
    expect(canonicalBase64('', 0)).toHaveLength(0);
  });

  test('property: every byte string round-trips, and any text it accepts is its own canonical spelling', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const text = Buffer.from(bytes).toString('base64');
        expect(canonicalBase64(text, bytes.length)?.equals(Buffer.from(bytes))).toBe(true);
      }),
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'ABCDQRSTgw+/=AB'), maxLength: 12 }),
        (text) => {
          const bytes = canonicalBase64(text);
          if (bytes) expect(bytes.toString('base64')).toBe(text);
        },
      ),
    );
  });
});

describe('isCanonical', () => {
  const opened = (text: string) =>
    openEnvelope('b.bundle', Buffer.from(`${FORMAT}\n${text}\n--- mac ${MAC}\n`), MACED);

  test('the canonical form is canonical', () => {
    expect(isCanonical(opened(JSON.stringify(BODY, null, 1)), BODY)).toBe(true);
  });

  test('reordered keys, extra spaces, another indent, an escaped spelling of the same string are not', () => {
    const { n, ...rest } = BODY;
    const reordered = { n, ...rest };
    expect(reordered).toEqual(BODY);
    expect(isCanonical(opened(JSON.stringify(reordered, null, 1)), BODY)).toBe(false);
    expect(
      isCanonical(opened(JSON.stringify(BODY, null, 1).replace('"n": 3', '"n":  3')), BODY),
    ).toBe(false);
    expect(isCanonical(opened(JSON.stringify(BODY, null, 1).replace('\n}', ' \n}')), BODY)).toBe(
      false,
    );
    expect(isCanonical(opened(JSON.stringify(BODY, null, 2)), BODY)).toBe(false);
    expect(isCanonical(opened(JSON.stringify(BODY)), BODY)).toBe(false);
    expect(
      isCanonical(opened(JSON.stringify(BODY, null, 1).replace('clé', 'cl\\u00e9')), BODY),
    ).toBe(false);
  });

  test('a field the reader did not keep makes the re-serialisation differ', () => {
    const withExtra = { ...BODY, note: 'x' };
    expect(isCanonical(opened(JSON.stringify(withExtra, null, 1)), BODY)).toBe(false);
  });
});

// ---------------------------------------------------------------- properties

/**
 * Tags are what a writer uses: no space, no line break. Values may hold anything but a line break.
 */
const tag = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 12 })
  .filter((s) => !/[ \n]/.test(s));
const value = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => !s.includes('\n'));
const trailers = fc.array(fc.record({ tag, value }), { maxLength: 4 });
const body = fc.jsonValue({ maxDepth: 6, stringUnit: 'binary' });

describe('properties (fast-check)', () => {
  test('open(serialise(body, trailers)) gives body and trailers back, and the body is canonical', () => {
    fc.assert(
      fc.property(body, trailers, (b, ts) => {
        const authenticated = envelopeBytes(FORMAT, b);
        const opened = openEnvelope('b.bundle', withTrailers(authenticated, ts), OPEN);
        expect(opened.json).toEqual(JSON.parse(JSON.stringify(b)));
        expect(opened.trailers).toEqual(ts);
        expect(opened.authenticated.equals(authenticated)).toBe(true);
        expect(isCanonical(opened, opened.json)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('with a required trailer last, the same holds', () => {
    fc.assert(
      fc.property(body, trailers, value, (b, ts, mac) => {
        const all = [...ts, { tag: 'mac', value: mac }];
        const opened = openEnvelope('b.bundle', withTrailers(envelopeBytes(FORMAT, b), all), MACED);
        expect(opened.trailers).toEqual(all);
      }),
      { numRuns: 200 },
    );
  });

  test('flipping any byte of the authenticated part throws a CustosError or changes `authenticated`, never an untyped exception', () => {
    fc.assert(
      fc.property(
        body,
        trailers,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (b, ts, where, mask) => {
          const authenticated = envelopeBytes(FORMAT, b);
          const file = withTrailers(authenticated, [...ts, { tag: 'mac', value: MAC }]);
          const i = where % authenticated.length;
          const edited = Buffer.from(file);
          edited[i] = (edited[i] as number) ^ mask;
          let opened;
          try {
            opened = openEnvelope('b.bundle', edited, MACED);
          } catch (e) {
            expect(e).toBeInstanceOf(CustosError);
            expect(['E_BUNDLE_FORMAT', 'E_BUNDLE_TAMPERED']).toContain((e as CustosError).code);
            return;
          }
          expect(opened.authenticated.equals(authenticated)).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('any byte string at all is opened or refused with a CustosError', () => {
    const prefix = Buffer.from(`${FORMAT}\n`);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, withHeader) => {
        const file = withHeader ? Buffer.concat([prefix, bytes]) : Buffer.from(bytes);
        try {
          openEnvelope('b.bundle', file, OPEN);
        } catch (e) {
          expect(e).toBeInstanceOf(CustosError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------- the formats built on it

describe('the handover request and package on the envelope', () => {
  const request: RequestBody = {
    requestId: 'f'.repeat(32),
    created: '2026-03-01T10:00:00.000Z',
    requestedBy: 'gc',
    matter: 'Matter “Ü” 😀',
    authority: 'court',
    basis: 'subpoena',
    document: { name: 'doc.pdf', sha256: '1'.repeat(64) },
    bundle: { file: 'v.bundle', bundleId: 'b'.repeat(32), bundleDigest: 'c'.repeat(64) },
    scope: [
      {
        class: 'secret',
        keyType: 'AES',
        label: 'clé',
        id: '01',
        checkValue: { method: 'aes-ecb-zero', value: 'abcdef' },
      },
    ],
    recipient: { spki: 'AAAA', sha256: '2'.repeat(64), bits: 3072 },
    noticeGiven: '2026-03-01T10:00:00.000Z',
    policy: { name: 'p.yaml', sha256: '3'.repeat(64), text: 'handover: {}\n' },
  };
  const approval = {
    role: 'general-counsel',
    approver: 'gc',
    time: '2026-03-02T00:00:00.000Z',
    signature: Buffer.alloc(64, 1).toString('base64'),
  };
  const file = serialiseRequest(requestSignedBytes(request), [approval]);

  test("a request is the documented layout; its signed part is the file's own bytes", () => {
    expect(
      file.equals(
        Buffer.from(
          `${REQUEST_FORMAT}\n${JSON.stringify(request, null, 1)}\n--- approval ${JSON.stringify(approval)}\n`,
        ),
      ),
    ).toBe(true);
    const parsed = parseRequest('r', file);
    expect(parsed.body).toEqual(request);
    expect(parsed.approvals).toEqual([approval]);
    expect(parsed.signed.equals(file.subarray(0, file.indexOf('--- approval ')))).toBe(true);
    expect(parseRequest('r', requestSignedBytes(request)).approvals).toEqual([]);
  });

  test("a request with an invalid byte inside a string is refused, not read with U+FFFD (whose digest would not be the file's)", () => {
    const edited = splice(file, 'clé', [0x63, 0x6c, 0xc3]);
    expect(edited.toString('utf8')).toContain('cl\uFFFD');
    expect(catchCustos(() => parseRequest('r', edited), 'E_HANDOVER_FORMAT').message).toBe(
      'r is not valid UTF-8 text: the file was changed or damaged',
    );
  });

  test('approval lines: another tag, not JSON, nested too deep', () => {
    const signed = requestSignedBytes(request);
    const refuse = (line: string) =>
      catchCustos(
        () => parseRequest('r', Buffer.concat([signed, Buffer.from(`--- ${line}\n`)])),
        'E_HANDOVER_FORMAT',
      ).message;
    expect(refuse('approvals {}')).toBe('r: approval 1 is not an approval line');
    expect(refuse('approval {"role": ')).toBe('r: approval 1 is not valid JSON');
    expect(refuse(`approval ${'['.repeat(10_000)}${']'.repeat(10_000)}`)).toBe(
      `r: approval 1 nests deeper than ${MAX_JSON_DEPTH} levels`,
    );
  });

  test('a package with an invalid byte is refused with E_PACKAGE_INVALID', () => {
    const body: PackageBody = {
      created: '2026-03-05T00:00:00.000Z',
      request: file.toString('utf8'),
      requestDigest: '4'.repeat(64),
      ceremony: 'c',
      transcript: [],
      recipientSha256: '6'.repeat(64),
      oaep: { hash: 'SHA-256', mgf: 'MGF1-SHA-256', label: '' },
      keys: [],
    };
    const pkg = serialisePackage(packageSignedBytes(body), Buffer.alloc(64, 2));
    expect(parsePackage('p', pkg).body).toEqual(body);
    const e = catchCustos(
      () => parsePackage('p', splice(pkg, 'clé', [0x63, 0x6c, 0xe9])),
      'E_PACKAGE_INVALID',
    );
    expect(e.message).toBe('p is not valid UTF-8 text: the file was changed or damaged');
  });
});
