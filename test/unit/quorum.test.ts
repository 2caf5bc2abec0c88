import { describe, expect, test } from 'vitest';
import { evaluateShares, type Candidate, type QuorumState } from '../../src/core/quorum.js';
import { parseShare, serialiseShare, type ShareDocument } from '../../src/core/share.js';
import { freshSigner, verifyEd25519 } from '../../src/crypto/ed25519.js';
import { combineShares, shareIndex, splitSecret } from '../../src/crypto/shamir.js';
import { sha256Hex } from '../../src/crypto/check-values.js';
import { makeBackup, signedShare, signShare } from './fixtures.js';

// A 3-of-5 backup with custodians c1-llp..c5-llp at indexes 1..5.
const B = makeBackup({ threshold: 3, total: 5 });
const custodians = B.body.escrow.custodians;

function docOf(i: number): ShareDocument {
  return parseShare('x', B.shareTexts[i] as string).doc;
}

/** An authentic share of custodian i (0-based), opened with that custodian's own identity. */
function good(i: number, source = `${custodians[i]!.id}.share`): Candidate {
  return {
    source,
    opened: {
      share: parseShare(source, B.shareTexts[i] as string),
      recipient: custodians[i]!.recipient,
    },
  };
}

/** A share the dealer really signed, with some fields changed before signing. */
function dealerSigned(i: number, change: Partial<ShareDocument>, source = 'odd.share'): Candidate {
  return {
    source,
    opened: {
      share: signedShare(B.dealer, { ...docOf(i), ...change }),
      recipient: custodians[i]!.recipient,
    },
  };
}

function evaluate(candidates: Candidate[]): QuorumState {
  return evaluateShares({ body: B.body, digest: B.digest }, candidates, verifyEd25519, shareIndex);
}

function onlyRejection(state: QuorumState) {
  expect(state.rejected).toHaveLength(1);
  return state.rejected[0]!;
}

describe('evaluateShares: accepting', () => {
  test('a threshold of authentic shares is a quorum, and they combine to the KEK', () => {
    const state = evaluate([good(4), good(0), good(2)]);
    expect(state.threshold).toBe(3);
    expect(state.rejected).toEqual([]);
    expect(state.missing).toBe(0);
    expect(state.bundleChanged).toBe(false);
    expect(state.accepted).toEqual([
      { source: 'c5-llp.share', custodian: 'c5-llp', index: 5, share: B.shares[4] },
      { source: 'c1-llp.share', custodian: 'c1-llp', index: 1, share: B.shares[0] },
      { source: 'c3-llp.share', custodian: 'c3-llp', index: 3, share: B.shares[2] },
    ]);
    expect(
      combineShares(
        state.accepted.map((a) => a.share),
        32,
      )?.equals(B.kek),
    ).toBe(true);
  });

  test('missing counts down to zero and never below', () => {
    expect(evaluate([]).missing).toBe(3);
    expect(evaluate([good(1)]).missing).toBe(2);
    expect(evaluate([good(1), good(3)]).missing).toBe(1);
    expect(evaluate([good(1), good(3), good(0)]).missing).toBe(0);
    const all = evaluate([0, 1, 2, 3, 4].map((i) => good(i)));
    expect(all.missing).toBe(0);
    expect(all.accepted.map((a) => a.index)).toEqual([1, 2, 3, 4, 5]);
  });

  test('rejected shares do not count towards the quorum', () => {
    const state = evaluate([
      good(0),
      good(0, 'copy.share'),
      good(1),
      { source: 'x', opened: { failure: 'unopened', detail: 'nope' } },
    ]);
    expect(state.accepted).toHaveLength(2);
    expect(state.rejected).toHaveLength(2);
    expect(state.missing).toBe(1);
  });
});

describe('evaluateShares: each reason for rejecting a share', () => {
  test('unopened and malformed are passed through with their detail', () => {
    const state = evaluate([
      {
        source: 'a.share',
        opened: { failure: 'unopened', detail: 'none of the identities given opens it' },
      },
      {
        source: 'b.share',
        opened: { failure: 'malformed', detail: '"index" must be a whole number from 1 to 255' },
      },
    ]);
    expect(state.rejected).toEqual([
      { source: 'a.share', reason: 'unopened', message: 'none of the identities given opens it' },
      {
        source: 'b.share',
        reason: 'malformed',
        message: '"index" must be a whole number from 1 to 255',
      },
    ]);
    expect(state.accepted).toEqual([]);
    expect(state.missing).toBe(3);
  });

  test('foreign-bundle: an authentic share of another backup', () => {
    const other = makeBackup({ threshold: 3, total: 5 });
    const c: Candidate = {
      source: 'old.share',
      opened: {
        share: parseShare('old.share', other.shareTexts[0] as string),
        recipient: custodians[0]!.recipient,
      },
    };
    const r = onlyRejection(evaluate([c]));
    expect(r.reason).toBe('foreign-bundle');
    expect(r.source).toBe('old.share');
    expect(r.message).toContain(other.body.bundleId);
    expect(r.message).toContain(B.body.bundleId);
  });

  test('bad-signature: a share of this bundle signed by someone else', () => {
    const mallory = freshSigner();
    const c: Candidate = {
      source: 'm.share',
      opened: { share: signedShare(mallory, docOf(1)), recipient: custodians[1]!.recipient },
    };
    expect(onlyRejection(evaluate([c])).reason).toBe('bad-signature');
  });

  test('bad-signature: an authentic share with a field edited after signing', () => {
    const edits: [string, string][] = [
      ['index: 2', 'index: 3'],
      ['threshold: 3', 'threshold: 2'],
      ['custodian: c2-llp', 'custodian: c3-llp'],
      [`share: ${B.shares[1]}`, `share: ${B.shares[2]}`],
      [`bundle-digest: ${B.digest}`, `bundle-digest: ${sha256Hex(Buffer.from('other'))}`],
    ];
    for (const [from, to] of edits) {
      const text = (B.shareTexts[1] as string).replace(from, to);
      expect(text).not.toBe(B.shareTexts[1]);
      const c: Candidate = {
        source: 'e.share',
        opened: { share: parseShare('e.share', text), recipient: custodians[1]!.recipient },
      };
      const state = evaluate([c]);
      expect(onlyRejection(state).reason, to).toBe('bad-signature');
      expect(state.bundleChanged).toBe(false);
    }
  });

  test('bad-signature: the signature of one share copied onto another', () => {
    const sig = parseShare('x', B.shareTexts[0] as string).signature;
    const s = parseShare('x', B.shareTexts[1] as string);
    const text = serialiseShare(s.signed, sig);
    const c: Candidate = {
      source: 'swap.share',
      opened: { share: parseShare('swap.share', text), recipient: custodians[1]!.recipient },
    };
    expect(onlyRejection(evaluate([c])).reason).toBe('bad-signature');
  });

  test('bundle-changed: an authentic share made for different bundle bytes', () => {
    const c = dealerSigned(0, {
      bundleDigest: sha256Hex(Buffer.concat([B.authenticated, Buffer.from(' ')])),
    });
    const state = evaluate([c, good(1), good(2), good(3)]);
    expect(onlyRejection(state).reason).toBe('bundle-changed');
    expect(state.bundleChanged).toBe(true);
    expect(state.accepted).toHaveLength(3);
  });

  test('unknown-custodian: an authentic share naming someone not in the bundle', () => {
    const state = evaluate([dealerSigned(2, { custodian: 'zed-partners' })]);
    const r = onlyRejection(state);
    expect(r.reason).toBe('unknown-custodian');
    expect(r.message).toContain('"zed-partners"');
  });

  test("wrong-custodian-file: a share opened with another custodian's identity", () => {
    const c: Candidate = {
      source: 'c3.share',
      opened: {
        share: parseShare('c3.share', B.shareTexts[2] as string),
        recipient: custodians[3]!.recipient,
      },
    };
    const r = onlyRejection(evaluate([c]));
    expect(r.reason).toBe('wrong-custodian-file');
    expect(r.message).toContain('c3-llp');
  });

  test('edited: authentic shares whose index or parameters do not match the bundle', () => {
    const cases: Partial<ShareDocument>[] = [
      { index: 4 }, // c1-llp's document claiming index 4
      { share: B.shares[3] }, // c1-llp's document carrying share #4
      { threshold: 2 },
      { threshold: 4 },
      { total: 6 },
      { share: `802${B.shares[0]!.slice(3)}` }, // share #1's data relabelled as x = 2
    ];
    for (const change of cases) {
      const state = evaluate([dealerSigned(0, change)]);
      expect(onlyRejection(state).reason, JSON.stringify(change)).toBe('edited');
      expect(state.accepted).toEqual([]);
    }
  });

  test("duplicate: the same custodian's share twice names the first copy", () => {
    const state = evaluate([good(0, 'first.share'), good(1), good(0, 'again.share')]);
    const r = onlyRejection(state);
    expect(r).toMatchObject({ source: 'again.share', reason: 'duplicate' });
    expect(r.message).toContain('first.share');
    expect(state.accepted.map((a) => a.source)).toEqual(['first.share', 'c2-llp.share']);
    expect(state.missing).toBe(1);
  });

  test('a mixed pile: each share gets its own reason, the good ones still make a quorum', () => {
    const other = makeBackup({ threshold: 3, total: 5 });
    const state = evaluate([
      { source: 'lost.share', opened: { failure: 'unopened', detail: 'no identity' } },
      good(0),
      {
        source: 'foreign.share',
        opened: {
          share: parseShare('f', other.shareTexts[1] as string),
          recipient: custodians[1]!.recipient,
        },
      },
      {
        source: 'forged.share',
        opened: {
          share: signedShare(freshSigner(), docOf(2)),
          recipient: custodians[2]!.recipient,
        },
      },
      good(3),
      good(0, 'dup.share'),
      good(4),
    ]);
    expect(state.rejected.map((r) => [r.source, r.reason])).toEqual([
      ['lost.share', 'unopened'],
      ['foreign.share', 'foreign-bundle'],
      ['forged.share', 'bad-signature'],
      ['dup.share', 'duplicate'],
    ]);
    expect(state.accepted.map((a) => a.custodian)).toEqual(['c1-llp', 'c4-llp', 'c5-llp']);
    expect(state.missing).toBe(0);
    expect(
      combineShares(
        state.accepted.map((a) => a.share),
        32,
      )?.equals(B.kek),
    ).toBe(true);
  });

  test('a share from a re-split of the same KEK (new dealer) is refused, so shares of two splits never mix', () => {
    const resplit = splitSecret(B.kek, 5, 3);
    const dealer2 = freshSigner();
    const text = signShare(dealer2, { ...docOf(1), share: resplit[1] as string });
    const c: Candidate = {
      source: 'r.share',
      opened: { share: parseShare('r.share', text), recipient: custodians[1]!.recipient },
    };
    expect(onlyRejection(evaluate([c])).reason).toBe('bad-signature');
  });
});
