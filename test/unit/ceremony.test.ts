/**
 * The ceremony file (`custos-ceremony/1`) and the submission (`custos-submission/1`), pure:
 * round trips, signatures checked with a key built outside ed25519.ts (node:crypto from a JWK),
 * every single-byte edit of a signed ceremony file refused, the limits of --expires, expiry at
 * the exact instant, and the rejection of every malformed submission header and payload.
 */
import { describe, expect, test } from 'vitest';
import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { Decrypter, generateX25519Identity, identityToRecipient, armor } from 'age-encryption';
import {
  CEREMONY_FORMAT,
  ceremonySignedBytes,
  expired,
  parseCeremony,
  parseDuration,
  serialiseCeremony,
  type CeremonyBody,
} from '../../src/core/ceremony.js';
import {
  SUBMISSION_FORMAT,
  parsePayload,
  parseSubmission,
  payloadText,
  sameHeader,
  serialiseSubmission,
  type SubmissionHeader,
  type SubmissionPayload,
} from '../../src/core/submission.js';
import { CustosError } from '../../src/core/errors.js';
import { encryptToRecipient } from '../../src/crypto/age.js';
import { RECIPIENTS, catchCustos } from './helpers.js';
import { makeBackup } from './fixtures.js';

// ---------------------------------------------------------------- an outside signer and verifier

interface OutsideKey {
  raw: Buffer;
  privateKey: KeyObject;
}

function outsideKey(): OutsideKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return { raw, privateKey };
}

/** Ed25519 verification from a JWK, independently of src/crypto/ed25519.ts. */
function oracleVerify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
    return nodeVerify(null, data, key, signature);
  } catch {
    return false;
  }
}

const B = makeBackup({ threshold: 3, total: 5 });
/**
 * What a handover ceremony carries and no other does: its request's digest and what it releases.
 */
const HANDOVER = {
  request: 'ab'.repeat(32),
  handover: {
    matter: 'M-1',
    authority: 'NY DFS',
    basis: 'subpoena',
    keys: ['payments-kek-2026'],
    recipient: 'cd'.repeat(32),
    quorum: 4,
  },
} satisfies Partial<CeremonyBody>;
const HOST = outsideKey();
const NONCE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

/**
 * A body in the canonical key order (the order is part of what is signed), with fields overridden
 * in place.
 */
function bundleBody(over: Partial<CeremonyBody> = {}, key: OutsideKey = HOST): CeremonyBody {
  const base: CeremonyBody = {
    nonce: NONCE,
    purpose: 'restore',
    created: '2026-03-02T10:00:00.000Z',
    expires: '2026-03-05T10:00:00.000Z',
    openedBy: 'dr-lead',
    subject: {
      kind: 'bundle',
      file: 'primary.bundle',
      bundleId: B.body.bundleId,
      bundleDigest: B.digest,
      source: B.body.source,
      keys: [
        { class: 'secret', keyType: 'AES', label: 'payments-kek-2026', id: '01a2' },
        { class: 'private', keyType: 'RSA', label: 'clé-signature', id: 'beef' },
      ],
    },
    threshold: 3,
    total: 5,
    custodians: B.body.escrow.custodians,
    dealer: B.body.dealer.publicKey,
    recipient: RECIPIENTS[0],
    signingKey: key.raw.toString('base64'),
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) {
    out[k] = k in over ? over[k as keyof CeremonyBody] : v;
    if (k === 'subject' && over.request !== undefined) out.request = over.request;
  }
  // The handover summary is the last member of the table.
  if (over.handover !== undefined) out.handover = over.handover;
  return out as unknown as CeremonyBody;
}

/** A ceremony file written by hand from the documented layout (not by serialiseCeremony). */
function handWritten(body: CeremonyBody, key: OutsideKey = HOST): Buffer {
  const signed = `${CEREMONY_FORMAT}\n${JSON.stringify(body, null, 1)}\n`;
  const sig = nodeSign(null, Buffer.from(signed, 'utf8'), key.privateKey).toString('base64');
  return Buffer.from(`${signed}--- ed25519 ${sig}\n`, 'utf8');
}

function rejectsCeremony(file: Buffer, pattern?: RegExp): CustosError {
  const e = catchCustos(() => parseCeremony('c.ceremony', file, oracleVerify), 'E_CEREMONY_FORMAT');
  expect(e.message).toMatch(/^c\.ceremony/);
  if (pattern) expect(e.message).toMatch(pattern);
  return e;
}

// ---------------------------------------------------------------- ceremony file

describe('ceremony file: round trip', () => {
  test('serialiseCeremony writes exactly the documented layout, and parseCeremony gives the body back', () => {
    const body = bundleBody();
    const signed = ceremonySignedBytes(body);
    const signature = nodeSign(null, signed, HOST.privateKey);
    const file = serialiseCeremony(signed, signature);
    expect(file.equals(handWritten(body))).toBe(true);
    expect(file.toString('utf8').split('\n')[0]).toBe('custos-ceremony/1');
    expect(file.toString('utf8')).toMatch(/\n--- ed25519 [A-Za-z0-9+/]{86}==\n$/);
    const parsed = parseCeremony('c.ceremony', file, oracleVerify);
    expect(parsed.body).toEqual(body);
    expect(parsed.signed.equals(signed)).toBe(true);
    expect(parsed.signature.equals(signature)).toBe(true);
    // parse → serialise gives the same bytes
    expect(serialiseCeremony(ceremonySignedBytes(parsed.body), parsed.signature).equals(file)).toBe(
      true,
    );
  });

  test('a PIN-escrow subject, a handover request and every purpose round-trip', () => {
    for (const purpose of ['restore', 'drill', 'handover'] as const) {
      const body = bundleBody({ purpose, ...(purpose === 'handover' ? HANDOVER : {}) });
      expect(parseCeremony('c.ceremony', handWritten(body), oracleVerify).body).toEqual(body);
    }
    const pin = bundleBody({
      purpose: 'drill',
      subject: {
        kind: 'pin-escrow',
        file: 'escrow/pin-escrow.bundle',
        bundleId: B.body.bundleId,
        bundleDigest: B.digest,
        token: { label: 'backup', serial: '0123abcd' },
      },
    });
    const parsed = parseCeremony('c.ceremony', handWritten(pin), oracleVerify);
    expect(parsed.body).toEqual(pin);
    expect('request' in parsed.body).toBe(false);
  });

  test("the verifier is given the body's own signing key, the signed bytes and the signature", () => {
    const file = handWritten(bundleBody());
    const calls: [Buffer, Buffer, Buffer][] = [];
    parseCeremony('c.ceremony', file, (k, d, s) => {
      calls.push([Buffer.from(k), Buffer.from(d), Buffer.from(s)]);
      return oracleVerify(k, d, s);
    });
    expect(calls).toHaveLength(1);
    const [k, d, s] = calls[0] as [Buffer, Buffer, Buffer];
    expect(k.equals(HOST.raw)).toBe(true);
    expect(d.equals(file.subarray(0, file.lastIndexOf('--- ed25519 ')))).toBe(true);
    expect(s).toHaveLength(64);
    // a verifier that says no is obeyed
    const e = catchCustos(
      () => parseCeremony('c.ceremony', file, () => false),
      'E_CEREMONY_FORMAT',
    );
    expect(e.message).toMatch(/fails its signature/);
  });
});

describe('ceremony file: any edit is refused', () => {
  const file = handWritten(bundleBody());

  test('the unedited file parses (so the edits below are what is refused)', () => {
    expect(parseCeremony('c.ceremony', file, oracleVerify).body.nonce).toBe(NONCE);
  });

  test('every single-byte change, at every offset, is refused with E_CEREMONY_FORMAT', () => {
    const accepted: number[] = [];
    const messages = new Set<string>();
    for (let i = 0; i < file.length; i++) {
      for (const flip of [0x01, 0x20]) {
        const edited = Buffer.from(file);
        edited[i] = (edited[i] as number) ^ flip;
        try {
          parseCeremony('c.ceremony', edited, oracleVerify);
          accepted.push(i);
        } catch (e) {
          expect(e, `offset ${i}`).toBeInstanceOf(CustosError);
          expect((e as CustosError).code, `offset ${i}`).toBe('E_CEREMONY_FORMAT');
          messages.add(
            (e as CustosError).message.replace(/^c\.ceremony:? /, '').split(':')[0] as string,
          );
        }
      }
    }
    expect(accepted).toEqual([]);
    expect(file.length).toBeGreaterThan(1500);
    // the reasons are named, not one catch-all
    expect([...messages].some((m) => /fails its signature/.test(m))).toBe(true);
  });

  test('deleting any single byte, or inserting a space anywhere, is refused', () => {
    const accepted: string[] = [];
    for (let i = 0; i < file.length; i++) {
      const cut = Buffer.concat([file.subarray(0, i), file.subarray(i + 1)]);
      const grown = Buffer.concat([file.subarray(0, i), Buffer.from(' '), file.subarray(i)]);
      for (const [what, edited] of [
        ['delete', cut],
        ['insert', grown],
      ] as const) {
        try {
          parseCeremony('c.ceremony', edited, oracleVerify);
          accepted.push(`${what}@${i}`);
        } catch (e) {
          expect((e as CustosError).code).toBe('E_CEREMONY_FORMAT');
        }
      }
    }
    expect(accepted).toEqual([]);
  });

  test('a body edited and re-signed by another key, keeping the original signingKey, fails its signature', () => {
    const other = outsideKey();
    const body = bundleBody({ purpose: 'handover', ...HANDOVER });
    rejectsCeremony(
      handWritten(body, other),
      /fails its signature: the file was edited after the ceremony was opened/,
    );
  });

  test('a field that the format does not have fails, even when signed by the right key', () => {
    const withExtra = {
      ...bundleBody(),
      note: 'also release the audit keys',
    } as unknown as CeremonyBody;
    rejectsCeremony(handWritten(withExtra), /fails its signature/);
  });

  test('the same body re-ordered or re-indented, signed by the right key, fails: only the canonical form is signed', () => {
    const body = bundleBody();
    const text = `${CEREMONY_FORMAT}\n${JSON.stringify(body, null, 2)}\n`;
    const sig = nodeSign(null, Buffer.from(text), HOST.privateKey).toString('base64');
    rejectsCeremony(Buffer.from(`${text}--- ed25519 ${sig}\n`), /fails its signature/);
  });
});

describe('ceremony file: malformed input is named', () => {
  const good = handWritten(bundleBody()).toString('utf8');

  test('another format or version, or no header at all', () => {
    rejectsCeremony(
      Buffer.from(good.replace('custos-ceremony/1', 'custos-ceremony/2')),
      /is a custos-ceremony\/2 ceremony file; this custos reads custos-ceremony\/1/,
    );
    rejectsCeremony(
      Buffer.from(good.replace('custos-ceremony/1', 'custos-bundle/1')),
      /is not a custos ceremony file \(no "custos-ceremony\/1" header\)/,
    );
    rejectsCeremony(Buffer.from(''), /not a custos ceremony file/);
    rejectsCeremony(Buffer.from(`\uFEFF${good}`), /not a custos ceremony file/);
  });

  test('a truncated file: no signature line, or no final newline', () => {
    rejectsCeremony(
      Buffer.from(good.slice(0, good.indexOf('--- ed25519'))),
      /has no signature line: the file is truncated/,
    );
    rejectsCeremony(Buffer.from(good.slice(0, -1)), /truncated/);
    rejectsCeremony(Buffer.from(good.slice(0, 200)), /truncated/);
  });

  test('a malformed signature line: short, not base64, non-canonical padding', () => {
    const at = good.lastIndexOf('--- ed25519 ');
    const sig = good.slice(at + 12, -1);
    const withSig = (s: string) => Buffer.from(`${good.slice(0, at)}--- ed25519 ${s}\n`);
    rejectsCeremony(withSig(sig.slice(0, 40)), /malformed signature line/);
    rejectsCeremony(withSig(`${sig.slice(0, 10)}!${sig.slice(11)}`), /malformed signature line/);
    rejectsCeremony(withSig(sig.replace(/=+$/, '')), /malformed signature line/);
    rejectsCeremony(withSig(` ${sig}`), /malformed signature line/);
    // the last base64 character carries 2 unused bits: a non-canonical spelling of the same bytes
    const last = sig.at(-3) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const twin = alphabet[alphabet.indexOf(last) ^ 1] as string;
    const nonCanonical = `${sig.slice(0, -3)}${twin}==`;
    expect(Buffer.from(nonCanonical, 'base64').equals(Buffer.from(sig, 'base64'))).toBe(true);
    rejectsCeremony(withSig(nonCanonical), /malformed signature line/);
  });

  test('a body that is not JSON, or lacks a field, or has a field of the wrong shape', () => {
    const signedFor = (bodyText: string) => {
      const text = `${CEREMONY_FORMAT}\n${bodyText}\n`;
      return Buffer.from(
        `${text}--- ed25519 ${nodeSign(null, Buffer.from(text), HOST.privateKey).toString('base64')}\n`,
      );
    };
    rejectsCeremony(signedFor('{"nonce": '), /the ceremony body is not valid JSON/);
    rejectsCeremony(signedFor('[]'), /body must be an object/);
    const body = bundleBody() as unknown as Record<string, unknown>;
    const without = (k: string) =>
      Object.fromEntries(Object.entries(body).filter(([key]) => key !== k));
    rejectsCeremony(
      signedFor(JSON.stringify(without('nonce'), null, 1)),
      /body\.nonce must be a string/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, nonce: NONCE.toUpperCase() }, null, 1)),
      /body\.nonce has an invalid format/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, purpose: 'exfiltrate' }, null, 1)),
      /body\.purpose must be one of restore, drill, handover/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, threshold: 6 }, null, 1)),
      /body\.threshold must be a whole number from 2 to 5/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, threshold: 1 }, null, 1)),
      /body\.threshold/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, total: 4 }, null, 1)),
      /custodians lists 5 custodians but total is 4/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, expires: 'next tuesday' }, null, 1)),
      /body\.expires must be a UTC time as custos writes it/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, recipient: 'age1notarecipient' }, null, 1)),
      /body\.recipient has an invalid format/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, request: 'xyz' }, null, 1)),
      /body\.request has an invalid format/,
    );
    const subject = body.subject as Record<string, unknown>;
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, subject: { ...subject, kind: 'disk' } }, null, 1)),
      /subject\.kind must be one of bundle, pin-escrow/,
    );
    rejectsCeremony(
      signedFor(JSON.stringify({ ...body, subject: { ...subject, bundleDigest: 'ab' } }, null, 1)),
      /subject\.bundleDigest has an invalid format/,
    );
    const custodians = body.custodians as Record<string, unknown>[];
    rejectsCeremony(
      signedFor(
        JSON.stringify(
          { ...body, custodians: [{ ...custodians[0], id: 'Bad Id' }, ...custodians.slice(1)] },
          null,
          1,
        ),
      ),
      /custodians\[0\]\.id has an invalid format/,
    );
  });
});

describe('ceremony file: what a signature cannot vouch for is refused too', () => {
  /** A body signed by its own key, so only the rule under test is broken. */
  const signed = (over: Partial<CeremonyBody>) => handWritten(bundleBody(over));
  const custodians = B.body.escrow.custodians;

  test('times: exactly as toISOString writes them, for a real instant', () => {
    for (const t of [
      '2026-03-02T10:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
    ]) {
      expect(parseCeremony('c.ceremony', signed({ created: t }), oracleVerify).body.created).toBe(
        t,
      );
    }
    for (const t of [
      '2026-03-02T10:00:00Z',
      '2026-03-02T11:00:00.000+01:00',
      '2026-03-02T10:00:00.0000Z',
      '2026-03-02',
      '2026-02-30T10:00:00.000Z',
      '2026-03-02T24:00:00.000Z',
      '2026-03-02t10:00:00.000z',
      '+002026-03-02T10:00:00.000Z',
      'Mon, 02 Mar 2026 10:00:00 GMT',
      ' 2026-03-02T10:00:00.000Z',
    ]) {
      rejectsCeremony(
        signed({ created: t }),
        /body\.created must be a UTC time as custos writes it/,
      );
      rejectsCeremony(
        signed({ expires: t }),
        /body\.expires must be a UTC time as custos writes it/,
      );
    }
  });

  test('a custodian id or a share index twice is refused, as in a bundle', () => {
    const twiceId = custodians.map((c, i) =>
      i === 1 ? { ...c, id: custodians[0]?.id as string } : c,
    );
    rejectsCeremony(
      signed({ custodians: twiceId }),
      /custodians repeats a custodian id or share index/,
    );
    const twiceIndex = custodians.map((c, i) =>
      i === 1 ? { ...c, index: custodians[0]?.index as number } : c,
    );
    rejectsCeremony(
      signed({ custodians: twiceIndex }),
      /custodians repeats a custodian id or share index/,
    );
  });

  test('dealer and signingKey: a raw 32-byte Ed25519 key in canonical base64', () => {
    const raw = Buffer.from(B.body.dealer.publicKey, 'base64');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const text = raw.toString('base64');
    const twin = `${text.slice(0, 42)}${alphabet[alphabet.indexOf(text[42] as string) ^ 1]}=`;
    expect(Buffer.from(twin, 'base64').equals(raw)).toBe(true);
    for (const bad of [
      twin,
      raw.subarray(1).toString('base64'),
      Buffer.concat([raw, raw]).toString('base64'),
      text.slice(0, 43),
      '',
    ]) {
      rejectsCeremony(
        signed({ dealer: bad }),
        /body\.dealer must be canonical base64 of a raw Ed25519 public key \(32 bytes\)/,
      );
    }
    // The signing key's twin spells the same key, so the signature would verify: the spelling alone
    // is refused.
    const key = HOST.raw.toString('base64');
    const keyTwin = `${key.slice(0, 42)}${alphabet[alphabet.indexOf(key[42] as string) ^ 1]}=`;
    rejectsCeremony(signed({ signingKey: keyTwin }), /body\.signingKey must be canonical base64/);
  });

  test('request and handover: both in a handover ceremony, neither in any other', () => {
    rejectsCeremony(
      signed({ purpose: 'handover', handover: HANDOVER.handover }),
      /body\.request is missing/,
    );
    rejectsCeremony(
      signed({ purpose: 'handover', request: HANDOVER.request }),
      /body\.handover is missing/,
    );
    for (const purpose of ['restore', 'drill', 'rotate'] as const) {
      rejectsCeremony(
        signed({ purpose, request: HANDOVER.request }),
        new RegExp(`body\\.request belongs only to a handover ceremony, not a ${purpose}`),
      );
      rejectsCeremony(
        signed({ purpose, handover: HANDOVER.handover }),
        /body\.handover belongs only to a handover ceremony/,
      );
    }
  });

  test('handover.quorum: from the threshold to the number of custodians', () => {
    const at = (quorum: number) =>
      signed({ purpose: 'handover', ...HANDOVER, handover: { ...HANDOVER.handover, quorum } });
    for (const quorum of [3, 4, 5])
      expect(parseCeremony('c.ceremony', at(quorum), oracleVerify).body.handover?.quorum).toBe(
        quorum,
      );
    for (const quorum of [2, 6])
      rejectsCeremony(at(quorum), /handover\.quorum must be a whole number from 3 to 5/);
  });
});

// ---------------------------------------------------------------- durations and expiry

describe('parseDuration: --expires', () => {
  test('minutes, hours and days, up to and including 30 days', () => {
    expect(parseDuration('1m')).toBe(60_000);
    expect(parseDuration('90m')).toBe(90 * 60_000);
    expect(parseDuration('72h')).toBe(72 * 3_600_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('30d')).toBe(30 * 86_400_000);
    expect(parseDuration('720h')).toBe(30 * 86_400_000);
    expect(parseDuration('43200m')).toBe(30 * 86_400_000);
  });

  test.each([
    '31d',
    '721h',
    '43201m',
    '99999d',
    '100000m',
    '0m',
    '0h',
    '01h',
    '1s',
    '1w',
    '1',
    'h',
    '',
    ' 1h',
    '1h ',
    '1.5h',
    '-1h',
    '+1h',
    '1H',
    '1 h',
    '1h30m',
    'Infinity',
    '72h\n',
  ])('%j is refused with E_USAGE naming the value and the 30-day limit', (text) => {
    const e = catchCustos(() => parseDuration(text), 'E_USAGE');
    expect(e.message).toBe(`--expires ${text} is not a duration of up to 30 days`);
    expect(e.hint).toMatch(/90m, 72h, 7d/);
  });
});

describe('expired()', () => {
  const body = bundleBody({ expires: '2026-03-05T10:00:00.000Z' });
  const at = Date.parse('2026-03-05T10:00:00.000Z');

  test('open before the instant, expired at it and after it', () => {
    expect(expired(body, new Date(at - 60_000))).toBe(false);
    expect(expired(body, new Date(at - 1))).toBe(false);
    expect(expired(body, new Date(at))).toBe(true);
    expect(expired(body, new Date(at + 1))).toBe(true);
    expect(expired(body, new Date(at + 30 * 86_400_000))).toBe(true);
    expect(expired(body, new Date(0))).toBe(false);
  });

  test('an expiry written with another offset means the same instant', () => {
    const shifted = bundleBody({ expires: '2026-03-05T12:00:00+02:00' });
    expect(expired(shifted, new Date(at - 1))).toBe(false);
    expect(expired(shifted, new Date(at))).toBe(true);
  });

  test('a ceremony opened for 1m is open 59 s later and expired 60 s later (the e2e tests cannot move the clock)', () => {
    const created = Date.parse('2026-03-02T10:00:00.000Z');
    const b = bundleBody({
      created: new Date(created).toISOString(),
      expires: new Date(created + parseDuration('1m')).toISOString(),
    });
    expect(expired(b, new Date(created + 59_999))).toBe(false);
    expect(expired(b, new Date(created + 60_000))).toBe(true);
  });
});

// ---------------------------------------------------------------- submissions

const HEADER: SubmissionHeader = {
  ceremony: NONCE,
  ceremonyDigest: 'e3'.repeat(32),
  custodian: 'c2-llp',
  submitted: '2026-03-03T08:15:00.000Z',
};
const SHARE_TEXT = B.shareTexts[1] as string;
const SEALED =
  '-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n-----END AGE ENCRYPTED FILE-----\n';

function rejectsSubmission(fn: () => unknown, pattern: RegExp): CustosError {
  const e = catchCustos(fn, 'E_SUBMISSION_REJECTED');
  expect(e.message).toMatch(/^s\.submission: /);
  expect(e.message).toMatch(pattern);
  expect(e.hint).toMatch(/custos share submit/);
  return e;
}

describe('submission: clear header and sealed part', () => {
  test('serialiseSubmission writes the documented layout; parseSubmission gives header and sealed part back', () => {
    const text = serialiseSubmission(HEADER, SEALED);
    expect(text).toBe(
      [
        'custos-submission/1',
        `ceremony: ${NONCE}`,
        `ceremony-digest: ${'e3'.repeat(32)}`,
        'custodian: c2-llp',
        'submitted: 2026-03-03T08:15:00.000Z',
        SEALED,
      ].join('\n'),
    );
    const parsed = parseSubmission('s.submission', text);
    expect(parsed.header).toEqual(HEADER);
    expect(parsed.sealed).toBe(SEALED);
    expect(serialiseSubmission(parsed.header, parsed.sealed)).toBe(text);
    // a sealed part without its final newline gets one
    expect(serialiseSubmission(HEADER, SEALED.slice(0, -1))).toBe(text);
  });

  test('every header field that differs makes sameHeader false', () => {
    expect(sameHeader(HEADER, { ...HEADER })).toBe(true);
    expect(sameHeader(HEADER, { ...HEADER, ceremony: 'f'.repeat(32) })).toBe(false);
    expect(sameHeader(HEADER, { ...HEADER, ceremonyDigest: 'f'.repeat(64) })).toBe(false);
    expect(sameHeader(HEADER, { ...HEADER, custodian: 'c3-llp' })).toBe(false);
    expect(sameHeader(HEADER, { ...HEADER, submitted: '2026-03-03T08:15:00.001Z' })).toBe(false);
  });

  test('malformed submissions are refused with E_SUBMISSION_REJECTED, naming the line or field', () => {
    const text = serialiseSubmission(HEADER, SEALED);
    const lines = text.split('\n');
    const withLine = (i: number, line: string | null) =>
      lines.flatMap((l, j) => (j === i ? (line === null ? [] : [line]) : [l])).join('\n');
    rejectsSubmission(() => parseSubmission('s.submission', ''), /not a custos submission/);
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(0, 'custos-submission/2')),
      /not a custos submission/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', text.replace(/\n/g, '\r\n')),
      /not a custos submission/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(1, null)),
      /line 2 should be "ceremony: …"/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(2, `ceremony-digest:${'e3'.repeat(32)}`)),
      /line 3 should be "ceremony-digest: …"/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(3, 'Custodian: c2-llp')),
      /line 4 should be "custodian: …"/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(4, null)),
      /line 5 should be "submitted: …"/,
    );
    // two fields swapped
    const swapped = [lines[0], lines[3], lines[2], lines[1], ...lines.slice(4)].join('\n');
    rejectsSubmission(
      () => parseSubmission('s.submission', swapped),
      /line 2 should be "ceremony: …"/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(1, `ceremony: ${NONCE.toUpperCase()}`)),
      /"ceremony" is not a ceremony nonce/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(1, `ceremony: ${NONCE.slice(1)}`)),
      /"ceremony" is not a ceremony nonce/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(1, `ceremony: ${NONCE} `)),
      /"ceremony" is not a ceremony nonce/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(2, `ceremony-digest: ${'e3'.repeat(31)}`)),
      /"ceremony-digest" is not a SHA-256 digest/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(3, 'custodian: ../../etc/passwd')),
      /"custodian" is not a custodian id/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(3, 'custodian: ')),
      /"custodian" is not a custodian id/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', withLine(4, 'submitted: yesterday')),
      /"submitted" is not a time/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', serialiseSubmission(HEADER, 'age-encryption.org/v1\n')),
      /the sealed share is missing/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', lines.slice(0, 5).join('\n')),
      /the sealed share is missing/,
    );
    rejectsSubmission(
      () => parseSubmission('s.submission', serialiseSubmission(HEADER, `\n${SEALED}`)),
      /the sealed share is missing/,
    );
  });
});

describe('submission payload: what is sealed', () => {
  const payload: SubmissionPayload = { ...HEADER, openedWith: RECIPIENTS[1], share: SHARE_TEXT };

  test('payloadText writes the documented layout; parsePayload gives it back, the share verbatim', () => {
    const text = payloadText(payload);
    expect(text.split('\n').slice(0, 7)).toEqual([
      'custos-submission-payload/1',
      `ceremony: ${NONCE}`,
      `ceremony-digest: ${'e3'.repeat(32)}`,
      'custodian: c2-llp',
      'submitted: 2026-03-03T08:15:00.000Z',
      `opened-with: ${RECIPIENTS[1]}`,
      'custos-share/1',
    ]);
    expect(text.endsWith(SHARE_TEXT)).toBe(true);
    const parsed = parsePayload('s.submission', text);
    expect(parsed).toEqual(payload);
    expect(parsed.share).toBe(SHARE_TEXT);
    expect(sameHeader(parsed, HEADER)).toBe(true);
  });

  test('sealed with age to a ceremony recipient, only that identity opens it, and the payload comes back whole', async () => {
    const host = await generateX25519Identity();
    const other = await generateX25519Identity();
    const sealed = await encryptToRecipient(await identityToRecipient(host), payloadText(payload));
    const file = serialiseSubmission(HEADER, sealed);
    // the clear part shows no share material
    expect(file).not.toContain(B.shares[1] as string);
    expect(file).not.toContain('custos-share/1');
    const { sealed: read } = parseSubmission('s.submission', file);
    const open = async (identity: string) => {
      const d = new Decrypter();
      d.addIdentity(identity);
      return d.decrypt(armor.decode(read), 'text');
    };
    expect(parsePayload('s.submission', await open(host))).toEqual(payload);
    await expect(open(other)).rejects.toThrow();
  });

  test('malformed payloads are refused with E_SUBMISSION_REJECTED', () => {
    const text = payloadText(payload);
    const lines = text.split('\n');
    const withLine = (i: number, line: string | null) =>
      lines.flatMap((l, j) => (j === i ? (line === null ? [] : [line]) : [l])).join('\n');
    rejectsSubmission(
      () => parsePayload('s.submission', SHARE_TEXT),
      /the sealed part is not a submission payload/,
    );
    rejectsSubmission(
      () => parsePayload('s.submission', withLine(0, 'custos-submission/1')),
      /the sealed part is not a submission payload/,
    );
    rejectsSubmission(
      () => parsePayload('s.submission', withLine(1, 'ceremony: 00')),
      /"ceremony" is not a ceremony nonce/,
    );
    rejectsSubmission(
      () => parsePayload('s.submission', withLine(4, null)),
      /line 5 should be "submitted: …"/,
    );
    rejectsSubmission(
      () => parsePayload('s.submission', withLine(5, null)),
      /the sealed part names no custodian key/,
    );
    rejectsSubmission(
      () => parsePayload('s.submission', withLine(5, 'opened-with: age1short')),
      /names no custodian key/,
    );
    rejectsSubmission(
      () => parsePayload('s.submission', withLine(5, `opened-with:${RECIPIENTS[1]}`)),
      /names no custodian key/,
    );
    rejectsSubmission(
      () =>
        parsePayload('s.submission', withLine(5, `opened-with: ${RECIPIENTS[1].toUpperCase()}`)),
      /names no custodian key/,
    );
  });

  test('random bytes never parse as a submission or a payload, and never throw anything but a CustosError', () => {
    for (let i = 0; i < 300; i++) {
      const junk = randomBytes(1 + (i % 200)).toString(i % 2 ? 'latin1' : 'base64');
      for (const parse of [parseSubmission, parsePayload]) {
        expect(() => parse('s.submission', junk)).toThrow(CustosError);
      }
    }
    expect(SUBMISSION_FORMAT).toBe('custos-submission/1');
  });
});
