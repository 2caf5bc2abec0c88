import { describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import {
  BUNDLE_FORMAT,
  BUNDLE_MAC_PURPOSE,
  bundleAuthenticatedBytes,
  parseBundle,
  serialiseBundle,
  type BundleBody,
} from '../../src/core/bundle.js';
import { CustosError } from '../../src/core/errors.js';
import { equalBytes, hmacWithKek } from '../../src/crypto/aes.js';
import { kwpUnwrap } from './helpers.js';
import { catchCustos } from './helpers.js';
import { makeBackup } from './fixtures.js';

const B = makeBackup();

/** What a restore does with a bundle before touching an HSM: parse it, then check its MAC. */
function accepted(file: Buffer, kek = B.kek): boolean {
  let parsed;
  try {
    parsed = parseBundle('b.bundle', file);
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    expect(['E_BUNDLE_FORMAT', 'E_BUNDLE_TAMPERED']).toContain((e as CustosError).code);
    return false;
  }
  return equalBytes(hmacWithKek(kek, BUNDLE_MAC_PURPOSE, parsed.authenticated), parsed.mac);
}

/** A bundle file for `body` with a correct MAC, so only the parser's field checks can reject it. */
function withValidMac(body: unknown): Buffer {
  const authenticated = Buffer.from(`${BUNDLE_FORMAT}\n${JSON.stringify(body, null, 1)}\n`, 'utf8');
  return serialiseBundle(authenticated, hmacWithKek(B.kek, BUNDLE_MAC_PURPOSE, authenticated));
}

function edited(mutate: (b: any) => void): Buffer {
  const body = structuredClone(B.body) as any;
  mutate(body);
  return withValidMac(body);
}

describe('bundle round trip', () => {
  test('the file is the header, the pretty JSON body, and one MAC line', () => {
    const text = B.file.toString('utf8');
    const lines = text.split('\n');
    expect(lines[0]).toBe('custos-bundle/1');
    expect(lines.at(-1)).toBe('');
    expect(lines.at(-2)).toBe(`--- hmac-sha256 ${B.mac.toString('base64')}`);
    expect(JSON.parse(lines.slice(1, -2).join('\n'))).toEqual(B.body);
    expect(B.mac).toHaveLength(32);
  });

  test('parse gives back the body, the exact authenticated bytes and the MAC', () => {
    const p = parseBundle('b.bundle', B.file);
    expect(p.body).toEqual(B.body);
    expect(p.authenticated.equals(B.authenticated)).toBe(true);
    expect(p.authenticated.equals(B.file.subarray(0, B.file.lastIndexOf('--- hmac-sha256 ')))).toBe(
      true,
    );
    expect(p.mac.equals(B.mac)).toBe(true);
    expect(equalBytes(hmacWithKek(B.kek, BUNDLE_MAC_PURPOSE, p.authenticated), p.mac)).toBe(true);
  });

  test('serialise(parse(file)) is byte-identical to the file', () => {
    const p = parseBundle('b.bundle', B.file);
    const again = serialiseBundle(bundleAuthenticatedBytes(p.body), p.mac);
    expect(again.equals(B.file)).toBe(true);
    expect(serialiseBundle(p.authenticated, p.mac).equals(B.file)).toBe(true);
  });

  test('optional fields that are absent stay absent', () => {
    const p = parseBundle('b.bundle', B.file);
    const secret = p.body.keys[0]!;
    expect('publicKey' in secret && secret.publicKey !== undefined).toBe(false);
    expect(JSON.stringify(p.body.keys[0])).not.toContain('modulus');
  });

  test('wrapped keys in the parsed bundle unwrap under the KEK (RFC 5649)', () => {
    const p = parseBundle('b.bundle', B.file);
    for (const k of p.body.keys) {
      const raw = kwpUnwrap(B.kek, Buffer.from(k.wrapped, 'base64'));
      expect(raw.length).toBeGreaterThanOrEqual(32);
    }
  });

  test('the share digest is the SHA-256 of the authenticated bytes', () => {
    expect(B.digest).toBe(
      createHash('sha256')
        .update(B.file.subarray(0, B.file.lastIndexOf('--- hmac-sha256 ')))
        .digest('hex'),
    );
  });
});

describe('every changed byte is detected', () => {
  const bodyEnd = B.authenticated.length;

  test('the bundle under test is realistic (non-ASCII, escapes, several keys)', () => {
    expect(bodyEnd).toBeGreaterThan(2500);
    expect(B.file.toString('utf8')).toContain('clé-signature');
    expect(B.file.toString('utf8')).toContain('\\n01');
  });

  test('changing one byte anywhere in the header or body fails parse or the MAC', () => {
    const mutations = [
      (b: number) => b ^ 0x01,
      (b: number) => b ^ 0x20,
      (b: number) => b ^ 0x80,
      (b: number) => b ^ 0x04,
      () => 0x20,
      () => 0x30,
      () => 0x22,
      () => 0x0a,
    ];
    const survivors: string[] = [];
    let tried = 0;
    for (let pos = 0; pos < bodyEnd; pos++) {
      for (const m of mutations) {
        const copy = Buffer.from(B.file);
        copy[pos] = m(copy[pos] as number) & 0xff;
        if (copy.equals(B.file)) continue;
        tried++;
        if (accepted(copy)) survivors.push(`byte ${pos}: ${B.file[pos]} -> ${copy[pos]}`);
      }
    }
    expect(tried).toBeGreaterThan(bodyEnd * 6);
    expect(survivors).toEqual([]);
  });

  test('deleting any one byte of the header or body, or inserting a space anywhere in the file, is detected', () => {
    const survivors: number[] = [];
    for (let pos = 0; pos <= B.file.length; pos++) {
      const inserted = Buffer.concat([
        B.file.subarray(0, pos),
        Buffer.from(' '),
        B.file.subarray(pos),
      ]);
      if (accepted(inserted)) survivors.push(pos);
    }
    // (Deleting bytes of the MAC line is covered by the MAC-line test below.)
    for (let pos = 0; pos < bodyEnd; pos++) {
      const deleted = Buffer.concat([B.file.subarray(0, pos), B.file.subarray(pos + 1)]);
      if (accepted(deleted)) survivors.push(pos);
    }
    expect(survivors).toEqual([]);
  });

  test('every truncation is rejected by the parser itself', () => {
    for (let len = 0; len < B.file.length; len++) {
      expect(() => parseBundle('b.bundle', B.file.subarray(0, len)), `length ${len}`).toThrow(
        CustosError,
      );
    }
  });

  test('anything appended after the MAC line is rejected', () => {
    for (const tail of ['\n', 'x', 'x\n', '--- hmac-sha256 AAAA\n', '\r\n', ' ']) {
      expect(accepted(Buffer.concat([B.file, Buffer.from(tail)])), JSON.stringify(tail)).toBe(
        false,
      );
    }
  });

  test('a bundle MAC from another KEK is rejected', () => {
    const other = makeBackup();
    expect(accepted(B.file, other.kek)).toBe(false);
    // Splicing the other bundle's MAC line onto this body does not help either.
    const spliced = Buffer.concat([
      B.authenticated,
      other.file.subarray(other.authenticated.length),
    ]);
    expect(accepted(spliced)).toBe(false);
    expect(accepted(spliced, other.kek)).toBe(false);
  });

  test('changing any byte of the MAC line is detected (no second spelling of the same MAC)', () => {
    // A different file must not pass as the original. base64 has spare bits in its last
    // character and padding that Buffer.from ignores, so check every byte value everywhere.
    const survivors: string[] = [];
    for (let pos = bodyEnd; pos < B.file.length; pos++) {
      for (let v = 0; v < 256; v++) {
        if (v === B.file[pos]) continue;
        const copy = Buffer.from(B.file);
        copy[pos] = v;
        if (accepted(copy))
          survivors.push(
            `byte ${pos - bodyEnd} of the MAC line: ${JSON.stringify(String.fromCharCode(B.file[pos] as number))} -> ${JSON.stringify(String.fromCharCode(v))}`,
          );
      }
    }
    for (let pos = bodyEnd; pos < B.file.length; pos++) {
      if (accepted(Buffer.concat([B.file.subarray(0, pos), B.file.subarray(pos + 1)])))
        survivors.push(`byte ${pos - bodyEnd} of the MAC line deleted`);
    }
    const macLine = B.file.subarray(bodyEnd).toString('utf8');
    const unpadded = Buffer.concat([B.authenticated, Buffer.from(macLine.replace('=\n', '\n'))]);
    if (accepted(unpadded)) survivors.push('MAC line without its "=" padding');
    expect(survivors).toEqual([]);
  });

  test('a bundle whose body differs only in invalid UTF-8 is not accepted as the original', () => {
    // A label holding U+FFFD (what a Latin-1 HSM label becomes after toString("utf8")).
    const b = makeBackup({ label: 'schl\uFFFDssel' });
    expect(accepted(b.file, b.kek)).toBe(true);
    const at = b.file.indexOf(Buffer.from('efbfbd', 'hex'));
    expect(at).toBeGreaterThan(0);
    // Replace the three bytes EF BF BD with the single invalid byte FF: a different file.
    const forged = Buffer.concat([
      b.file.subarray(0, at),
      Buffer.from([0xff]),
      b.file.subarray(at + 3),
    ]);
    expect(forged.equals(b.file)).toBe(false);
    expect(accepted(forged, b.kek)).toBe(false);
  });
});

describe('rejected files name the problem', () => {
  test('wrong header version', () => {
    const v3 = Buffer.from(
      B.file.toString('utf8').replace('custos-bundle/1\n', 'custos-bundle/3\n'),
    );
    const err = catchCustos(() => parseBundle('b.bundle', v3), 'E_BUNDLE_FORMAT');
    expect(err.message).toBe(
      'b.bundle is a custos-bundle/3 bundle; this custos reads custos-bundle/1 and custos-bundle/2',
    );
  });

  test('no header at all, or an empty file', () => {
    for (const f of [
      Buffer.alloc(0),
      Buffer.from('{"bundleId":"x"}\n'),
      Buffer.from(`custos-bundle/1\r\n{}`),
      B.file.subarray(1),
    ]) {
      const err = catchCustos(() => parseBundle('b.bundle', f), 'E_BUNDLE_FORMAT');
      expect(err.message).toContain('is not a custos bundle');
    }
  });

  test('missing MAC line', () => {
    const err = catchCustos(() => parseBundle('b.bundle', B.authenticated), 'E_BUNDLE_FORMAT');
    expect(err.message).toBe('b.bundle has no MAC line: the file is truncated');
    const noNewline = B.file.subarray(0, B.file.length - 1);
    expect(
      catchCustos(() => parseBundle('b.bundle', noNewline), 'E_BUNDLE_FORMAT').message,
    ).toContain('no MAC line');
  });

  test('malformed MAC line', () => {
    const text = B.file.toString('utf8');
    const macLine = `--- hmac-sha256 ${B.mac.toString('base64')}\n`;
    for (const bad of [
      '--- hmac-sha256 \n',
      `--- hmac-sha256 ${B.mac.subarray(0, 31).toString('base64')}\n`,
      `--- hmac-sha256 ${Buffer.concat([B.mac, Buffer.from([0])]).toString('base64')}\n`,
      `--- hmac-sha256 ${B.mac.toString('hex')}\n`,
      `--- hmac-sha256 ${B.mac.toString('base64')} \n`,
    ]) {
      const f = Buffer.from(text.replace(macLine, bad));
      expect(catchCustos(() => parseBundle('b.bundle', f), 'E_BUNDLE_FORMAT').message).toBe(
        'b.bundle has a malformed MAC line',
      );
    }
  });

  test('a body that is not JSON is reported as tampered', () => {
    const f = Buffer.from(B.file.toString('utf8').replace('"bundleId"', '"bundleId" :: '));
    const err = catchCustos(() => parseBundle('b.bundle', f), 'E_BUNDLE_TAMPERED');
    expect(err.message).toContain('not valid JSON');
  });

  // Each of these is a well-formed, correctly MACed bundle with one field wrong: the parser
  // must refuse it and name the field.
  const fieldCases: [string, (b: any) => void][] = [
    [
      'body.bundleId',
      (b) => {
        b.bundleId = b.bundleId.toUpperCase();
      },
    ],
    [
      'body.bundleId',
      (b) => {
        b.bundleId = b.bundleId.slice(2);
      },
    ],
    [
      'body.created',
      (b) => {
        b.created = 17;
      },
    ],
    [
      'source.serial',
      (b) => {
        delete b.source.serial;
      },
    ],
    [
      'kek.algorithm',
      (b) => {
        b.kek.algorithm = 'AES-128';
      },
    ],
    [
      'kek.kcv',
      (b) => {
        b.kek.kcv = '0A1B2C';
      },
    ],
    [
      'kek.kcv',
      (b) => {
        b.kek.kcv = '0a1b2c3d';
      },
    ],
    [
      'wrap.mechanism',
      (b) => {
        b.wrap.mechanism = 'AES-KEY-WRAP';
      },
    ],
    [
      'wrap.standard',
      (b) => {
        b.wrap.standard = 'RFC 3394';
      },
    ],
    [
      'escrow.scheme',
      (b) => {
        b.escrow.scheme = 'shamir';
      },
    ],
    [
      'escrow.threshold',
      (b) => {
        b.escrow.threshold = 5;
      },
    ],
    [
      'escrow.threshold',
      (b) => {
        b.escrow.threshold = 1;
      },
    ],
    [
      'escrow.threshold',
      (b) => {
        b.escrow.threshold = '3';
      },
    ],
    [
      'escrow.total',
      (b) => {
        b.escrow.total = 1;
      },
    ],
    [
      'escrow.custodians',
      (b) => {
        b.escrow.custodians.pop();
      },
    ],
    [
      'escrow.custodians[1].id',
      (b) => {
        b.escrow.custodians[1].id = 'Bad Id';
      },
    ],
    [
      'escrow.custodians[2].recipient',
      (b) => {
        b.escrow.custodians[2].recipient = 'age1xyz';
      },
    ],
    [
      'escrow.custodians[0].index',
      (b) => {
        b.escrow.custodians[0].index = 0;
      },
    ],
    [
      'escrow.custodians[0].index',
      (b) => {
        b.escrow.custodians[0].index = 1.5;
      },
    ],
    [
      'dealer.algorithm',
      (b) => {
        b.dealer.algorithm = 'Ed448';
      },
    ],
    [
      'dealer.publicKey',
      (b) => {
        b.dealer.publicKey = 'not base64!';
      },
    ],
    [
      'keys',
      (b) => {
        b.keys = {};
      },
    ],
    [
      'keys[0].class',
      (b) => {
        b.keys[0].class = 'public';
      },
    ],
    [
      'keys[0].id',
      (b) => {
        b.keys[0].id = 'abc';
      },
    ],
    [
      'keys[0].bits',
      (b) => {
        b.keys[0].bits = -1;
      },
    ],
    [
      'keys[0].usage.encrypt',
      (b) => {
        b.keys[0].usage.encrypt = 'yes';
      },
    ],
    [
      'keys[0].usage.launch',
      (b) => {
        b.keys[0].usage.launch = true;
      },
    ],
    [
      'keys[0].sensitive',
      (b) => {
        delete b.keys[0].sensitive;
      },
    ],
    [
      'keys[0].checkValue.method',
      (b) => {
        b.keys[0].checkValue.method = 'md5';
      },
    ],
    [
      'keys[0].checkValue',
      (b) => {
        delete b.keys[0].checkValue;
      },
    ],
    [
      'keys[0].wrapped',
      (b) => {
        b.keys[0].wrapped = 'ab$d';
      },
    ],
    [
      'keys[1].publicKey.modulus',
      (b) => {
        b.keys[1].publicKey.modulus = 'xyz';
      },
    ],
    [
      'keys[1].certificates[0].value',
      (b) => {
        b.keys[1].certificates[0].value = '***';
      },
    ],
    [
      'keys[1].certificates',
      (b) => {
        delete b.keys[1].certificates;
      },
    ],
    [
      'keys[2].ecParams',
      (b) => {
        b.keys[2].ecParams = 42;
      },
    ],
    [
      'skipped[0].class',
      (b) => {
        b.skipped[0].class = 'certificate';
      },
    ],
    [
      'skipped[1].reason',
      (b) => {
        delete b.skipped[1].reason;
      },
    ],
    [
      'skipped',
      (b) => {
        delete b.skipped;
      },
    ],
  ];
  test.each(fieldCases)('a bad %s is refused by name', (path, mutate) => {
    const err = catchCustos(() => parseBundle('b.bundle', edited(mutate)), 'E_BUNDLE_FORMAT');
    expect(err.message.startsWith(`b.bundle: ${path} `)).toBe(true);
  });

  test('the same edits through withValidMac without a change are accepted (the cases test one field each)', () => {
    expect(accepted(edited(() => {}))).toBe(true);
  });

  test('a body that is a JSON array or string is refused', () => {
    for (const body of [[], 'bundle', null, 3]) {
      expect(
        catchCustos(() => parseBundle('b.bundle', withValidMac(body)), 'E_BUNDLE_FORMAT').message,
      ).toBe('b.bundle: body must be an object');
    }
  });

  test('parsed bodies keep only known fields (a smuggled field does not survive)', () => {
    const p = parseBundle(
      'b.bundle',
      edited((b) => {
        b.keys[0].trusted = true;
        b.extra = 1;
      }),
    );
    expect((p.body.keys[0] as unknown as Record<string, unknown>).trusted).toBeUndefined();
    expect((p.body as unknown as Record<string, unknown>).extra).toBeUndefined();
  });

  test('fixture sanity: the body type matches what the parser returns', () => {
    const p: BundleBody = parseBundle('b.bundle', B.file).body;
    expect(p.escrow.custodians.map((c) => c.index)).toEqual([1, 2, 3, 4]);
  });
});
