/**
 * The vectors of SPEC.md (spec/vectors, written by spec/vectors/make.mjs): every file in the
 * manifest goes through the reader of its format, and the outcome must be the one its rule calls
 * for. A vector with `known` is a divergence of today's code from the spec: its test pins what the
 * code gives now, so a fix shows up as a failure here (then drop `known` from make.mjs).
 */
import { describe, expect, test } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_MAC_PURPOSE, parseBundle, pinFromSecret } from '../../src/core/bundle.js';
import { parseShare } from '../../src/core/share.js';
import { expired, parseCeremony, type ParsedCeremony } from '../../src/core/ceremony.js';
import { parsePayload, parseSubmission, sameHeader } from '../../src/core/submission.js';
import { checkLog } from '../../src/core/audit/check.js';
import { evaluateRequest, parseRequest } from '../../src/core/handover.js';
import { isSelected, parsePolicy } from '../../src/core/policy.js';
import { evaluateShares, type Candidate } from '../../src/core/quorum.js';
import { CustosError, ERROR_CODES } from '../../src/core/errors.js';
import { aesKcv, equalBytes, hmacWithKek } from '../../src/crypto/aes.js';
import { verifyEd25519 } from '../../src/crypto/ed25519.js';
import { combineShares, shareIndex } from '../../src/crypto/shamir.js';
import { sha256Hex } from '../../src/crypto/check-values.js';
import { decryptWithAny } from '../../src/crypto/age.js';
import { requestRecipient } from '../../src/crypto/rsa-aes-wrap.js';
import { verifyPackage } from '../../src/ops/handover/verify.js';
import type { Context } from '../../src/ops/context.js';
import { tokenIdentityOutcome } from './token-identity-vectors.js';

const DIR = fileURLToPath(new URL('../../spec/vectors/', import.meta.url));

interface Vector {
  file: string;
  format: string;
  rule: string;
  expect: string;
  check?: 'mac' | 'judge' | 'log' | 'approvals' | 'verify';
  kek?: string;
  subject?: string;
  ceremony?: string;
  now?: string;
  openedWith?: string;
  after?: string[];
  reason?: string;
  problems?: string[];
  failing?: string[];
  withKey?: boolean;
  field?: string;
  known?: { got: string; note: string };
}

interface Outcome {
  code: string;
  /** The error's message, when there was one. */
  message?: string;
  reason?: string;
  problems?: string[];
  failing?: string[];
}

const MANIFEST = JSON.parse(readFileSync(join(DIR, 'MANIFEST.json'), 'utf8')) as {
  keys: Record<string, any>;
  vectors: Vector[];
};
const { keys, vectors } = MANIFEST;
const byFile = new Map(vectors.map((v) => [v.file, v]));
const read = (file: string) => readFileSync(join(DIR, file));
/** Share and payload plaintexts are read as custos reads them out of age: WHATWG UTF-8 decoding. */
const asText = (bytes: Buffer) => new TextDecoder().decode(bytes);

/** Runs a reader; a CustosError becomes its code, anything else is a test failure. */
async function codeOf<T>(
  run: () => T | Promise<T>,
): Promise<{ value?: T; code: string; message?: string }> {
  try {
    return { value: await run(), code: 'ok' };
  } catch (e) {
    if (e instanceof CustosError) return { code: e.code, message: e.message };
    throw e;
  }
}

// ---------------------------------------------------------------------------------- readers

async function bundleOutcome(v: Vector): Promise<Outcome> {
  const { value: parsed, code, message } = await codeOf(() => parseBundle(v.file, read(v.file)));
  if (!parsed || v.check !== 'mac') return { code, message };
  // What a restore does after the quorum: the reassembled secret's KCV, then the MAC (B3, B4).
  const kek = Buffer.from(keys[v.kek ?? 'kek'] as string, 'hex');
  if (aesKcv(kek) !== parsed.body.kek.kcv) return { code: 'E_KEK_MISMATCH' };
  if (!equalBytes(hmacWithKek(kek, BUNDLE_MAC_PURPOSE, parsed.authenticated), parsed.mac))
    return { code: 'E_BUNDLE_TAMPERED' };
  return { code: 'ok' };
}

function shareCandidate(file: string): Candidate {
  const v = byFile.get(file) as Vector;
  return {
    source: file,
    opened: { share: parseShare(file, asText(read(file))), recipient: v.openedWith as string },
  };
}

async function shareOutcome(v: Vector): Promise<Outcome> {
  const { code } = await codeOf(() => parseShare(v.file, asText(read(v.file))));
  if (code !== 'ok' || v.check !== 'judge') return { code };
  const subject = parseBundle(v.subject as string, read(v.subject as string));
  const candidates = [...(v.after ?? []).map(shareCandidate), shareCandidate(v.file)];
  const state = evaluateShares(
    { body: subject.body, digest: sha256Hex(subject.authenticated) },
    candidates,
    verifyEd25519,
    shareIndex,
  );
  const rejected = state.rejected.find((r) => r.source === v.file);
  return rejected ? { code: 'E_SHARE_REJECTED', reason: rejected.reason } : { code: 'ok' };
}

async function ceremonyOutcome(v: Vector): Promise<Outcome> {
  return codeOf(() => parseCeremony(v.file, read(v.file), verifyEd25519));
}

/**
 * SPEC.md M1-M11: a submission as the ceremony host opens it, then the share inside as J1-J7 judge
 * it.
 */
async function openSubmission(
  source: string,
  bytes: Buffer,
  c: ParsedCeremony,
  digest: string,
  now: Date,
): Promise<{ candidate: Candidate } | { reason: string }> {
  const parsed = await codeOf(() => parseSubmission(source, bytes.toString('utf8')));
  if (!parsed.value) return { reason: 'malformed' };
  const { header, sealed } = parsed.value;
  if (header.ceremony !== c.body.nonce) return { reason: 'wrong-ceremony' };
  if (expired(c.body, now)) return { reason: 'expired' };
  if (header.ceremonyDigest !== digest) return { reason: 'ceremony-changed' };
  const host = {
    source: 'host.key',
    secret: keys.restoreCeremony.ageIdentity as string,
    recipient: keys.restoreCeremony.ageRecipient as string,
  };
  const opened = await decryptWithAny(Buffer.from(sealed, 'utf8'), [host]);
  if ('failure' in opened) return { reason: 'unopened' };
  const payload = await codeOf(() => parsePayload(source, opened.plaintext));
  if (!payload.value) return { reason: 'malformed' };
  if (!sameHeader(payload.value, header)) return { reason: 'edited' };
  const share = await codeOf(() => parseShare(source, payload.value?.share as string));
  if (!share.value) return { reason: 'malformed' };
  if (share.value.doc.custodian !== header.custodian) return { reason: 'edited' };
  return {
    candidate: { source, opened: { share: share.value, recipient: payload.value.openedWith } },
  };
}

async function submissionOutcome(v: Vector): Promise<Outcome> {
  if (v.format === 'custos-submission-payload/1')
    return { code: (await codeOf(() => parsePayload(v.file, asText(read(v.file))))).code };
  const file = read(v.ceremony as string);
  const c = parseCeremony(v.ceremony as string, file, verifyEd25519);
  const now = new Date(v.now as string);
  const candidates: Candidate[] = [];
  for (const f of v.after ?? []) {
    const r = await openSubmission(f, read(f), c, sha256Hex(file), now);
    if (!('candidate' in r)) throw new Error(`${f} should open`);
    candidates.push(r.candidate);
  }
  const r = await openSubmission(v.file, read(v.file), c, sha256Hex(file), now);
  if ('reason' in r) return { code: 'E_SUBMISSION_REJECTED', reason: r.reason };
  const b = c.body;
  const subject = {
    body: {
      bundleId: b.subject.bundleId,
      dealer: { algorithm: 'Ed25519' as const, publicKey: b.dealer },
      escrow: {
        scheme: 'shamir-gf256' as const,
        threshold: b.threshold,
        total: b.total,
        custodians: b.custodians,
      },
    },
    digest: b.subject.bundleDigest,
  };
  const state = evaluateShares(subject, [...candidates, r.candidate], verifyEd25519, shareIndex);
  const rejected = state.rejected.find((x) => x.source === v.file);
  return rejected ? { code: 'E_SUBMISSION_REJECTED', reason: rejected.reason } : { code: 'ok' };
}

async function auditOutcome(v: Vector): Promise<Outcome> {
  const log = checkLog(read(v.file), verifyEd25519, sha256Hex);
  const problems = [...new Set(log.problems.map((p) => p.kind))].sort();
  return { code: problems.length ? 'E_AUDIT_TAMPERED' : 'ok', problems };
}

/**
 * SPEC.md R1-R7: parse, then what the request carries (policy digest, recipient, policy), then each
 * approval.
 */
async function requestOutcome(v: Vector): Promise<Outcome> {
  const parsed = await codeOf(() => parseRequest(v.file, read(v.file)));
  if (!parsed.value || v.check !== 'approvals') return parsed;
  const req = parsed.value;
  if (sha256Hex(Buffer.from(req.body.policy.text, 'utf8')) !== req.body.policy.sha256)
    return { code: 'E_HANDOVER_FORMAT' };
  const recipient = await codeOf(() => requestRecipient(v.file, req.body.recipient));
  if (recipient.code !== 'ok') return { code: recipient.code };
  const policy = await codeOf(() => parsePolicy(req.body.policy.name, req.body.policy.text));
  if (!policy.value) return { code: policy.code };
  const p = policy.value;
  const rows = evaluateRequest(
    req,
    p,
    sha256Hex(req.signed),
    verifyEd25519,
    new Date(req.body.created),
    (l) => !!p.handover && isSelected(l, p.handover.keys),
  );
  const failing = rows
    .filter((r) => r.rule.startsWith('approval by ') && !r.met)
    .map((r) => r.rule.slice('approval by '.length))
    .sort();
  return { code: failing.length ? 'E_HANDOVER_REFUSED' : 'ok', failing };
}

let keyFile: string | undefined;
function recipientKeyFile(): string {
  if (!keyFile) {
    const dir = mkdtempSync(join(tmpdir(), 'custos-spec-'));
    keyFile = join(dir, 'recipient.pem');
    writeFileSync(keyFile, keys.recipientPrivateKeyPem as string, { mode: 0o600 });
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return keyFile;
}

/** K1-K15: the recipient's whole check, as `custos handover verify` runs it. */
async function packageOutcome(v: Vector): Promise<Outcome> {
  const ctx = { cwd: DIR } as Context;
  return codeOf(() => verifyPackage(ctx, v.file, v.withKey ? recipientKeyFile() : undefined));
}

const READERS: Record<string, (v: Vector) => Promise<Outcome>> = {
  'custos-bundle/1': bundleOutcome,
  'custos-share/1': shareOutcome,
  'custos-ceremony/1': ceremonyOutcome,
  'custos-submission/1': submissionOutcome,
  'custos-submission-payload/1': submissionOutcome,
  'custos-audit/1': auditOutcome,
  'custos-handover-request/1': requestOutcome,
  'custos-handover/1': packageOutcome,
  'custos-token-identity/1': tokenIdentityOutcome,
};

// ------------------------------------------------------------------------------------ tests

describe('spec vectors: the manifest', () => {
  test('every file under spec/vectors is in the manifest, and every manifest entry exists', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(relative(DIR, p).split('\\').join('/'));
      }
    };
    walk(DIR);
    const listed = new Set(vectors.map((v) => v.file));
    expect(
      files.filter((f) => f !== 'make.mjs' && f !== 'MANIFEST.json' && !listed.has(f)),
    ).toEqual([]);
    expect([...listed].filter((f) => !files.includes(f))).toEqual([]);
    expect(listed.size).toBe(vectors.length);
  });

  test('every expected outcome is "ok" or an error code custos has, and every vector names a rule', () => {
    for (const v of vectors) {
      expect(v.expect === 'ok' || v.expect in ERROR_CODES, v.file).toBe(true);
      expect(v.rule === 'valid' ? v.expect : 'bad', v.file).toBe(v.rule === 'valid' ? 'ok' : 'bad');
      if (v.format !== 'shamir-gf256')
        expect(
          v.file
            .split('/')
            .pop()
            ?.startsWith(v.rule === 'valid' ? 'ok-' : 'bad-'),
          v.file,
        ).toBe(true);
      if (v.known) expect(v.known.got, v.file).not.toBe(v.expect);
    }
  });
});

const FORMATS = [...new Set(vectors.map((v) => v.format))].filter((f) => f !== 'shamir-gf256');
for (const format of FORMATS) {
  describe(`spec vectors: ${format}`, () => {
    for (const v of vectors.filter((x) => x.format === format)) {
      const title = v.known
        ? `${v.file} (${v.rule}): spec says ${v.expect}; KNOWN DIVERGENCE, custos gives ${v.known.got}`
        : `${v.file} (${v.rule}): ${v.expect}`;
      test(title, async () => {
        const reader = READERS[v.format];
        if (!reader) throw new Error(`no reader for ${v.format}`);
        const out = await reader(v);
        expect(out.code).toBe(v.known ? v.known.got : v.expect);
        if (v.known) return;
        if (v.reason) expect(out.reason).toBe(v.reason);
        if (v.problems) expect(out.problems).toEqual([...v.problems].sort());
        if (v.failing) expect(out.failing).toEqual([...v.failing].sort());
        // A field rule must be broken by the field it names, not by some other fault of the file.
        if (v.field) {
          const path = v.field.replace(/[.*+?^${}()|\\]/g, '\\$&').replace(/\[\]/g, '\\[\\d+\\]');
          expect(out.message?.split(v.file).join('')).toMatch(
            new RegExp(`(?:^|\\s)(?:body\\.)?${path}(?![\\w])`),
          );
        }
      });
    }
  });
}

describe('spec vectors: Shamir shares made by hand (not by secrets.js-grempe)', () => {
  for (const v of vectors.filter((x) => x.format === 'shamir-gf256')) {
    test(`${v.file}: every threshold-sized subset reconstructs the secret`, () => {
      const doc = JSON.parse(read(v.file).toString('utf8')) as {
        secret: string;
        threshold: number;
        shares: { x: number; share: string }[];
      };
      const secret = Buffer.from(doc.secret, 'hex');
      for (const s of doc.shares) expect(shareIndex(s.share)).toBe(s.x);
      const subsets = (from: number, size: number): number[][] =>
        size === 0
          ? [[]]
          : Array.from({ length: doc.shares.length - from }, (_, i) => from + i).flatMap((i) =>
              subsets(i + 1, size - 1).map((rest) => [i, ...rest]),
            );
      for (const subset of subsets(0, doc.threshold)) {
        const got = combineShares(
          subset.map((i) => doc.shares[i]?.share as string),
          secret.length,
        );
        expect(
          got?.toString('hex'),
          `shares ${subset.map((i) => doc.shares[i]?.x).join(',')}`,
        ).toBe(doc.secret);
      }
    });
  }
});

describe('spec vectors: the files agree with each other', () => {
  test('the good shares of bundle/ok-keys.bundle reassemble its KEK, whose KCV and MAC the bundle records', () => {
    const bundle = parseBundle('ok-keys', read('bundle/ok-keys.bundle'));
    const shares = ['hale-llp', 'okafor-law', 'lindqvist'].map(
      (c) => parseShare(c, asText(read(`share/ok-${c}.share`))).doc.share,
    );
    for (const pair of [
      [0, 1],
      [0, 2],
      [1, 2],
    ]) {
      const kek = combineShares(
        pair.map((i) => shares[i] as string),
        32,
      ) as Buffer;
      expect(kek.toString('hex')).toBe(keys.kek);
      expect(aesKcv(kek)).toBe(bundle.body.kek.kcv);
      expect(
        equalBytes(hmacWithKek(kek, BUNDLE_MAC_PURPOSE, bundle.authenticated), bundle.mac),
      ).toBe(true);
    }
  });

  test('the PIN escrowed by bundle/ok-pin-escrow.bundle is the base32 of its secret, cut to pinLength', () => {
    const { body } = parseBundle('pin', read('bundle/ok-pin-escrow.bundle'));
    expect(
      pinFromSecret(
        Buffer.from(keys.pinSecret as string, 'hex'),
        body.escrowOf?.pinLength as number,
      ),
    ).toBe(keys.pin);
  });

  test('the sealed part of submission/ok-hale-llp.submission opens with the ceremony key to submission/ok-hale-llp.payload', async () => {
    const { sealed } = parseSubmission(
      's',
      read('submission/ok-hale-llp.submission').toString('utf8'),
    );
    const opened = await decryptWithAny(Buffer.from(sealed, 'utf8'), [
      {
        source: 'host.key',
        secret: keys.restoreCeremony.ageIdentity,
        recipient: keys.restoreCeremony.ageRecipient,
      },
    ]);
    expect('plaintext' in opened && opened.plaintext).toBe(
      read('submission/ok-hale-llp.payload').toString('utf8'),
    );
  });

  test('the ceremonies, the request and the package name the bundle by its digest', () => {
    const digest = sha256Hex(parseBundle('b', read('bundle/ok-keys.bundle')).authenticated);
    expect(
      parseCeremony('c', read('ceremony/ok-restore.ceremony'), verifyEd25519).body.subject
        .bundleDigest,
    ).toBe(digest);
    const request = parseRequest('r', read('handover-request/ok-three-approvals.request'));
    expect(request.body.bundle.bundleDigest).toBe(digest);
    const handover = parseCeremony('h', read('ceremony/ok-handover.ceremony'), verifyEd25519);
    expect(handover.body.request).toBe(sha256Hex(request.signed));
  });
});

describe('spec vectors: handover verify names the part of a package that is at fault (K4, K6)', () => {
  /**
   * The refusal of a package vector: always E_PACKAGE_INVALID (exit 4), never the embedded part's
   * own code.
   */
  async function refusal(file: string): Promise<CustosError> {
    try {
      verifyPackage({ cwd: DIR } as Context, file);
    } catch (e) {
      if (e instanceof CustosError) {
        expect(e.code).toBe('E_PACKAGE_INVALID');
        expect(e.exitStatus).toBe(4);
        return e;
      }
      throw e;
    }
    throw new Error(`${file} was accepted`);
  }

  test('an edited ceremony inside: the ceremony is named, with its own message as the detail', async () => {
    const e = await refusal('handover-package/bad-ceremony-inside-edited.package');
    expect(e.message).toBe(
      'handover-package/bad-ceremony-inside-edited.package fails verification: its ceremony is not valid',
    );
    expect(e.details[0]).toBe(
      'handover-package/bad-ceremony-inside-edited.package (its ceremony) fails its signature: the file was edited after the ceremony was opened',
    );
  });

  test('a ceremony inside that repeats a share index: named, and why', async () => {
    const e = await refusal('handover-package/bad-ceremony-inside-repeats-an-index.package');
    expect(e.message).toMatch(/fails verification: its ceremony is not valid$/);
    expect(e.details[0]).toMatch(
      /\(its ceremony\): custodians repeats a custodian id or share index$/,
    );
  });

  test('a request inside not in canonical form: the request is named, with its own message as the detail', async () => {
    const e = await refusal('handover-package/bad-request-inside-not-canonical.package');
    expect(e.message).toBe(
      'handover-package/bad-request-inside-not-canonical.package fails verification: its request is not valid',
    );
    expect(e.details).toEqual([
      "handover-package/bad-request-inside-not-canonical.package (its request): the request body is not in custos's form (it was edited by hand)",
    ]);
  });

  test("a policy inside that is not a policy: named as the request's policy, with the line at fault", async () => {
    const e = await refusal('handover-package/bad-policy-inside-not-a-policy.package');
    expect(e.message).toMatch(/fails verification: the policy in its request is not valid$/);
    expect(e.details[0]).toMatch(
      /^handover-package\/bad-policy-inside-not-a-policy\.package \(its policy\):\d+: /,
    );
  });

  test('a request whose noticeGiven is not a time: refused at the field, and no NaN in any message', async () => {
    for (const name of ['not-a-time', 'no-milliseconds']) {
      const e = await refusal(`handover-package/bad-request-inside-notice-${name}.package`);
      expect(e.message).toMatch(/fails verification: its request is not valid$/);
      expect(e.details).toEqual([
        expect.stringMatching(
          /\(its request\): body\.noticeGiven must be a UTC time as custos writes it/,
        ),
      ]);
      expect([e.message, ...e.details].join('\n')).not.toMatch(/NaN|Invalid Date/);
    }
  });
});
