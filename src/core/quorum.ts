/**
 * Deciding which submitted shares count towards a quorum. Every share is authenticated against
 * the bundle before any Shamir arithmetic, because combining a foreign or edited share silently
 * yields a wrong secret.
 */
import type { BundleBody } from './bundle.js';
import type { SignedShare } from './share.js';

export type RejectReason =
  | 'unopened'
  | 'malformed'
  | 'foreign-bundle'
  | 'bad-signature'
  | 'bundle-changed'
  | 'unknown-custodian'
  | 'wrong-custodian-file'
  | 'edited'
  | 'duplicate'
  // a ceremony's own reasons, before a share is looked at
  | 'wrong-ceremony'
  | 'expired'
  | 'ceremony-changed';

export interface Candidate {
  /** Where the share came from (a path), for messages. */
  source: string;
  /** The share document, or why it could not be read. */
  opened:
    | { share: SignedShare; recipient: string }
    | { failure: 'unopened' | 'malformed'; detail: string };
}

export interface Accepted {
  source: string;
  custodian: string;
  index: number;
  share: string;
}

export interface Rejected {
  source: string;
  reason: RejectReason;
  message: string;
}

export interface QuorumState {
  threshold: number;
  accepted: Accepted[];
  rejected: Rejected[];
  /** Shares still needed; 0 when the quorum is met. */
  missing: number;
  /** True when an authentic share says the bundle's bytes are not the ones it was made for. */
  bundleChanged: boolean;
  /**
   * Set when a share signed by this bundle's own dealer key names another bundle id: the id the
   * backup was made with, which the bundle no longer carries (its id was changed).
   */
  originalId?: string;
  /**
   * True when two or more shares name this bundle and not one verifies under its dealer key: the
   * bundle's dealer key (or id) was edited, rather than every custodian's share.
   */
  dealerDisowned: boolean;
}

export type VerifySignature = (
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
) => boolean;

/**
 * What a quorum is judged against: a bundle, or a ceremony's record of one; or, with kind
 * "domain", an escrow domain's core (bundleId then holds the domain id, digest the core's).
 */
export interface QuorumSubject {
  kind?: 'domain';
  body: Pick<BundleBody, 'bundleId' | 'dealer' | 'escrow'>;
  digest: string;
  generation?: number;
}

export function evaluateShares(
  bundle: QuorumSubject,
  candidates: readonly Candidate[],
  verify: VerifySignature,
  shareIndexOf: (share: string) => number | null,
): QuorumState {
  const { body } = bundle;
  const dealer = Buffer.from(body.dealer.publicKey, 'base64');
  const accepted: Accepted[] = [];
  const rejected: Rejected[] = [];
  let bundleChanged = false;
  let originalId: string | undefined;

  for (const c of candidates) {
    const reject = (reason: RejectReason, message: string) =>
      rejected.push({ source: c.source, reason, message });
    if ('failure' in c.opened) {
      reject(c.opened.failure, c.opened.detail);
      continue;
    }
    const { share, recipient } = c.opened;
    const doc = share.doc;
    if (doc.kind !== bundle.kind) {
      reject(
        'foreign-bundle',
        doc.kind === 'domain'
          ? `is a share of escrow domain ${doc.bundleId}, and this bundle was made with its own shares`
          : `is a share of bundle ${doc.bundleId}, not of escrow domain ${body.bundleId}`,
      );
      continue;
    }
    if (doc.bundleId !== body.bundleId) {
      if (verify(dealer, share.signed, share.signature)) {
        // The dealer key is made for one backup and dropped once its shares are signed: a share it
        // signed belongs to this backup, so it is the bundle's id that was changed, not the share.
        bundleChanged = true;
        originalId ??= doc.bundleId;
        reject(
          'bundle-changed',
          bundle.kind === 'domain'
            ? `it was made by this domain for domain ${doc.bundleId}, but the file says ${body.bundleId}: the record of the domain in this file has been changed`
            : `it was made by this backup for bundle ${doc.bundleId}, but the bundle file says ${body.bundleId}: the bundle file has been changed`,
        );
      } else {
        reject(
          'foreign-bundle',
          bundle.kind === 'domain'
            ? `belongs to another escrow domain (domain ${doc.bundleId}, not ${body.bundleId})`
            : `belongs to another backup (bundle ${doc.bundleId}, not ${body.bundleId})`,
        );
      }
      continue;
    }
    if (!verify(dealer, share.signed, share.signature)) {
      if (bundle.kind === 'domain' && doc.bundleDigest !== bundle.digest) {
        // Each generation has its own dealer: a share of another one cannot verify here.
        reject(
          'foreign-bundle',
          `is a share of another generation of domain ${body.bundleId}, not of generation ${bundle.generation ?? '?'}: after a rotation, only the new shares open what was sealed since`,
        );
      } else {
        reject(
          'bad-signature',
          'its signature does not verify: the share was edited, or was not made by this backup',
        );
      }
      continue;
    }
    if (doc.bundleDigest !== bundle.digest) {
      bundleChanged = true;
      reject(
        'bundle-changed',
        bundle.kind === 'domain'
          ? 'it was made for a different copy of this domain: the record of the domain in this file has been changed'
          : 'it was made for a different copy of this bundle: the bundle file has been changed',
      );
      continue;
    }
    const custodian = body.escrow.custodians.find((x) => x.id === doc.custodian);
    if (!custodian) {
      reject('unknown-custodian', `names custodian "${doc.custodian}", who is not in this bundle`);
      continue;
    }
    if (custodian.recipient !== recipient) {
      reject(
        'wrong-custodian-file',
        `is ${custodian.id}'s share but was opened with a key that is not ${custodian.id}'s (wrong custodian file)`,
      );
      continue;
    }
    if (
      doc.index !== custodian.index ||
      shareIndexOf(doc.share) !== doc.index ||
      doc.threshold !== body.escrow.threshold ||
      doc.total !== body.escrow.total
    ) {
      reject('edited', 'its index or parameters do not match the bundle: the share was edited');
      continue;
    }
    const earlier = accepted.find((a) => a.index === doc.index);
    if (earlier) {
      reject(
        'duplicate',
        `is a duplicate: ${custodian.id}'s share was already given (${earlier.source})`,
      );
      continue;
    }
    accepted.push({
      source: c.source,
      custodian: custodian.id,
      index: doc.index,
      share: doc.share,
    });
  }
  const threshold = body.escrow.threshold;
  const unsigned = rejected.filter((r) => r.reason === 'bad-signature').length;
  const dealerDisowned = accepted.length === 0 && !bundleChanged && unsigned >= 2;
  return {
    threshold,
    accepted,
    rejected,
    missing: Math.max(0, threshold - accepted.length),
    bundleChanged,
    ...(originalId ? { originalId } : {}),
    dealerDisowned,
  };
}
