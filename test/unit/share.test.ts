import { describe, expect, test } from 'vitest';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import {
  parseShare,
  serialiseShare,
  shareSignedBytes,
  SHARE_FORMAT,
  type ShareDocument,
} from '../../src/core/share.js';
import { CustosError } from '../../src/core/errors.js';
import { freshSigner, verifyEd25519 } from '../../src/crypto/ed25519.js';
import { catchCustos } from './helpers.js';
import { makeBackup } from './fixtures.js';

const B = makeBackup({ threshold: 3, total: 5 });
const TEXT = B.shareTexts[1] as string;
const DOC: ShareDocument = {
  bundleId: B.body.bundleId,
  bundleDigest: B.digest,
  custodian: 'c2-llp',
  index: 2,
  threshold: 3,
  total: 5,
  share: B.shares[1] as string,
};

/** Verifies with a key built from a JWK, independently of ed25519.ts's SPKI prefix. */
function oracleVerify(publicKey: Buffer, data: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') },
    format: 'jwk',
  });
  return nodeVerify(null, data, key, signature);
}

function replaceLine(text: string, field: string, value: string): string {
  const re = new RegExp(`^${field}: .*$`, 'm');
  expect(text).toMatch(re);
  return text.replace(re, `${field}: ${value}`);
}

function shareError(text: string, fragment: string): CustosError {
  const err = catchCustos(() => parseShare('alice.share', text), 'E_SHARE_FORMAT');
  expect(err.message.startsWith('alice.share: ')).toBe(true);
  expect(err.message).toContain(fragment);
  return err;
}

/** What a restore does with a share it has opened: parse, then verify the dealer signature. */
function acceptedShare(text: string): boolean {
  try {
    const s = parseShare('s', text);
    return verifyEd25519(B.dealer.publicKey, s.signed, s.signature);
  } catch (e) {
    expect(e).toBeInstanceOf(CustosError);
    return false;
  }
}

describe('share document format', () => {
  test('the text is the header, seven fields in order, and the signature line', () => {
    const lines = TEXT.split('\n');
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('custos-share/1');
    expect(lines.slice(1, 8)).toEqual([
      `bundle: ${DOC.bundleId}`,
      `bundle-digest: ${DOC.bundleDigest}`,
      'custodian: c2-llp',
      'index: 2',
      'threshold: 3',
      'total: 5',
      `share: ${DOC.share}`,
    ]);
    expect(lines[8]).toMatch(/^signature: [A-Za-z0-9+/]{86}==$/);
    expect(lines[9]).toBe('');
    expect(SHARE_FORMAT).toBe('custos-share/1');
  });

  test('round trip: parse gives the document, and serialising again gives the same text', () => {
    const s = parseShare('alice.share', TEXT);
    expect(s.doc).toEqual(DOC);
    expect(serialiseShare(shareSignedBytes(s.doc), s.signature)).toBe(TEXT);
    expect(serialiseShare(s.signed, s.signature)).toBe(TEXT);
  });

  test('the signature covers exactly the bytes before the signature line', () => {
    const s = parseShare('alice.share', TEXT);
    const before = Buffer.from(TEXT.slice(0, TEXT.indexOf('signature: ')), 'utf8');
    expect(s.signed.equals(before)).toBe(true);
    expect(s.signed.equals(shareSignedBytes(DOC))).toBe(true);
    expect(s.signature).toHaveLength(64);
    expect(verifyEd25519(B.dealer.publicKey, s.signed, s.signature)).toBe(true);
    expect(oracleVerify(B.dealer.publicKey, before, s.signature)).toBe(true);
    // Not the whole text, not the body without the header.
    expect(oracleVerify(B.dealer.publicKey, Buffer.from(TEXT), s.signature)).toBe(false);
    expect(
      oracleVerify(B.dealer.publicKey, before.subarray(SHARE_FORMAT.length + 1), s.signature),
    ).toBe(false);
  });

  test('verifyEd25519 agrees with node:crypto and refuses other keys, data or sizes', () => {
    const s = parseShare('alice.share', TEXT);
    const other = freshSigner();
    expect(verifyEd25519(other.publicKey, s.signed, s.signature)).toBe(false);
    expect(
      verifyEd25519(B.dealer.publicKey, Buffer.concat([s.signed, Buffer.from('x')]), s.signature),
    ).toBe(false);
    expect(verifyEd25519(B.dealer.publicKey.subarray(1), s.signed, s.signature)).toBe(false);
    expect(verifyEd25519(B.dealer.publicKey, s.signed, s.signature.subarray(1))).toBe(false);
    expect(verifyEd25519(Buffer.alloc(32, 0xff), s.signed, s.signature)).toBe(false);
    const sig = other.sign(s.signed);
    expect(oracleVerify(other.publicKey, s.signed, sig)).toBe(true);
    expect(verifyEd25519(other.publicKey, s.signed, sig)).toBe(true);
  });

  test('every share the backup made parses and verifies', () => {
    B.shareTexts.forEach((t, i) => {
      const s = parseShare(`c${i + 1}.share`, t);
      expect(s.doc.index).toBe(i + 1);
      expect(s.doc.custodian).toBe(`c${i + 1}-llp`);
      expect(oracleVerify(B.dealer.publicKey, s.signed, s.signature)).toBe(true);
    });
  });
});

describe('malformed shares are refused', () => {
  const cases: [string, string, string][] = [
    ['bundle', B.body.bundleId.toUpperCase(), '"bundle" is not a bundle id'],
    ['bundle', B.body.bundleId.slice(1), '"bundle" is not a bundle id'],
    ['bundle', `${B.body.bundleId} `, '"bundle" is not a bundle id'],
    ['bundle', '', '"bundle" is not a bundle id'],
    ['bundle-digest', B.digest.slice(2), '"bundle-digest" is not a SHA-256 digest'],
    ['bundle-digest', B.digest.toUpperCase(), '"bundle-digest" is not a SHA-256 digest'],
    ['bundle-digest', `sha256:${B.digest}`, '"bundle-digest" is not a SHA-256 digest'],
    ['custodian', 'C2-LLP', '"custodian" is not a custodian id'],
    ['custodian', '../c2', '"custodian" is not a custodian id'],
    ['custodian', '', '"custodian" is not a custodian id'],
    ['index', '0', '"index" must be a whole number from 1 to 255'],
    ['index', '256', '"index" must be a whole number from 1 to 255'],
    ['index', '02', '"index" must be a whole number from 1 to 255'],
    ['index', '+2', '"index" must be a whole number from 1 to 255'],
    ['index', '2.0', '"index" must be a whole number from 1 to 255'],
    ['index', ' 2', '"index" must be a whole number from 1 to 255'],
    ['index', '0x2', '"index" must be a whole number from 1 to 255'],
    ['index', '', '"index" must be a whole number from 1 to 255'],
    ['threshold', '1', '"threshold" must be a whole number from 2 to 5'],
    ['threshold', '6', '"threshold" must be a whole number from 2 to 5'],
    ['threshold', 'three', '"threshold" must be a whole number from 2 to 5'],
    ['total', '1', '"total" must be a whole number from 2 to 255'],
    ['total', '1000', '"total" must be a whole number from 2 to 255'],
    ['total', '5e0', '"total" must be a whole number from 2 to 255'],
    ['share', (B.shares[1] as string).slice(1), '"share" is not a share value'],
    ['share', (B.shares[1] as string).toUpperCase(), '"share" is not a share value'],
    ['share', `${B.shares[1]}z`, '"share" is not a share value'],
    ['share', '802', '"share" is not a share value'],
    ['signature', 'AAAA', '"signature" is not an Ed25519 signature'],
    ['signature', Buffer.alloc(63).toString('base64'), '"signature" is not an Ed25519 signature'],
    ['signature', Buffer.alloc(65).toString('base64'), '"signature" is not an Ed25519 signature'],
    [
      'signature',
      Buffer.alloc(64, 0xfb).toString('base64url'),
      '"signature" is not an Ed25519 signature',
    ],
    ['signature', Buffer.alloc(64).toString('hex'), '"signature" is not an Ed25519 signature'],
  ];
  test.each(cases)('%s: %j', (field, value, fragment) => {
    shareError(replaceLine(TEXT, field, value), fragment);
  });

  test('a field in the wrong place, renamed, or without its space', () => {
    const lines = TEXT.split('\n');
    const swapped = [lines[0], lines[2], lines[1], ...lines.slice(3)].join('\n');
    shareError(swapped, 'line 2 should be "bundle: …"');
    shareError(TEXT.replace('custodian: ', 'custodain: '), 'line 4 should be "custodian: …"');
    shareError(TEXT.replace('index: ', 'index:'), 'line 5 should be "index: …"');
    shareError(TEXT.replace('signature: ', 'sig: '), 'line 9 should be "signature: …"');
  });

  test('missing or extra lines', () => {
    const lines = TEXT.split('\n');
    for (let i = 1; i <= 8; i++)
      shareError([...lines.slice(0, i), ...lines.slice(i + 1)].join('\n'), 'wrong number of lines');
    shareError(`${TEXT}\n`, 'wrong number of lines');
    shareError(`${TEXT}comment: hi\n`, 'wrong number of lines');
    shareError(TEXT.replace('\nshare: ', '\nnote: x\nshare: '), 'wrong number of lines');
    shareError(TEXT.slice(0, -1), 'wrong number of lines');
    shareError(`${TEXT.slice(0, -1)}x`, 'wrong number of lines');
  });

  test('another header, another version, or no header', () => {
    shareError(
      TEXT.replace('custos-share/1', 'custos-share/2'),
      'is a custos-share/2 share; this custos reads custos-share/1',
    );
    shareError(TEXT.replace('custos-share/1\n', ''), 'not a custos share');
    shareError(`\n${TEXT}`, 'not a custos share');
    shareError('', 'not a custos share');
    shareError(B.file.toString('utf8'), 'not a custos share');
  });

  test('CRLF line endings are refused rather than silently read', () => {
    expect(() => parseShare('alice.share', TEXT.replace(/\n/g, '\r\n'))).toThrow(CustosError);
  });

  test('errors never quote the share value', () => {
    const secret = B.shares[1] as string;
    const texts = [
      replaceLine(TEXT, 'share', `${secret}Z`),
      replaceLine(TEXT, 'index', `${secret}`),
      TEXT.replace('custos-share/1', secret),
    ];
    for (const t of texts) {
      const err = catchCustos(() => parseShare('alice.share', t), 'E_SHARE_FORMAT');
      expect(err.message).not.toContain(secret.slice(3, 20));
      expect(err.hint ?? '').not.toContain(secret.slice(3, 20));
    }
  });
});

describe('every changed byte is detected', () => {
  test('changing any byte before the signature line fails parse or the signature', () => {
    const bytes = Buffer.from(TEXT, 'utf8');
    const end = TEXT.indexOf('signature: ');
    const survivors: string[] = [];
    for (let pos = 0; pos < end; pos++) {
      for (const m of [
        (b: number) => b ^ 0x01,
        (b: number) => b ^ 0x02,
        (b: number) => b ^ 0x20,
        () => 0x30,
        () => 0x31,
        () => 0x20,
      ]) {
        const copy = Buffer.from(bytes);
        copy[pos] = m(copy[pos] as number) & 0xff;
        if (copy.equals(bytes)) continue;
        if (acceptedShare(copy.toString('latin1')))
          survivors.push(`${pos}: ${bytes[pos]} -> ${copy[pos]}`);
      }
    }
    expect(survivors).toEqual([]);
  });

  test('changing any byte of the signature line is detected (no second spelling of the same signature)', () => {
    const start = TEXT.indexOf('signature: ');
    const survivors: string[] = [];
    for (let pos = start; pos < TEXT.length; pos++) {
      for (let v = 0x20; v < 0x7f; v++) {
        if (v === TEXT.charCodeAt(pos)) continue;
        const copy = TEXT.slice(0, pos) + String.fromCharCode(v) + TEXT.slice(pos + 1);
        if (acceptedShare(copy))
          survivors.push(
            `char ${pos - start} of the signature line: ${JSON.stringify(TEXT[pos])} -> ${JSON.stringify(String.fromCharCode(v))}`,
          );
      }
    }
    expect(survivors).toEqual([]);
  });

  test('a share signed by another dealer does not verify against this bundle', () => {
    const other = freshSigner();
    const signed = shareSignedBytes(DOC);
    const forged = serialiseShare(signed, other.sign(signed));
    expect(parseShare('x', forged).doc).toEqual(DOC);
    expect(acceptedShare(forged)).toBe(false);
  });
});
