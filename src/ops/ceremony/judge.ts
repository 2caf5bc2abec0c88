/**
 * Submissions judged at the ceremony host: each opened with the host key and judged on arrival
 * (wrong ceremony, expired, edited, foreign, duplicate…) together with those already accepted. Used
 * by every command that counts a ceremony's quorum.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { expired } from '../../core/ceremony.js';
import { parsePayload, parseSubmission, sameHeader } from '../../core/submission.js';
import { parseShare } from '../../core/share.js';
import { SHARE_FILE_SENT } from '../../core/advice.js';
import type { Candidate, QuorumState, Rejected } from '../../core/quorum.js';
import { decryptWithAny } from '../../crypto/age.js';
import { judgeShares } from '../shares.js';
import { acceptedPaths, quorumSubject, type Host, type LoadedCeremony } from './host.js';

export interface Incoming {
  /** Where it came from, for messages: a path, or who handed it in at the terminal. */
  source: string;
  bytes: Buffer;
}

export interface Judged {
  state: QuorumState;
  /** New submissions that count, with the custodian they are for. */
  fresh: { custodian: string; incoming: Incoming }[];
  /** Rejected new submissions, with the custodian their header names (if it could be read). */
  turnedAway: (Rejected & { custodian?: string })[];
}

/** An age file, armored or binary: what a share file is. */
function isAgeFile(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 64).toString('latin1');
  return (
    head.startsWith('-----BEGIN AGE ENCRYPTED FILE-----') || head.startsWith('age-encryption.org/')
  );
}

/** Opens one submission with the host key; a problem becomes a rejection with its reason. */
/** `now` is null for a submission accepted earlier: expiry does not undo it. */
async function candidateOf(
  c: LoadedCeremony,
  host: Host,
  incoming: Incoming,
  now: Date | null,
): Promise<{ candidate?: Candidate; custodian?: string; rejected?: Rejected }> {
  const { source } = incoming;
  const reject = (reason: string, message: string, custodian?: string) => ({
    custodian,
    rejected: { source, reason: reason as Rejected['reason'], message },
  });
  let parsed;
  try {
    parsed = parseSubmission(source, incoming.bytes.toString('utf8'));
  } catch (e) {
    // A custodian who sends their share file instead of a submission needs telling, by name.
    if (isAgeFile(incoming.bytes))
      return reject('malformed', `${SHARE_FILE_SENT} (custos share submit writes submissions)`);
    return reject(
      'malformed',
      e instanceof CustosError ? e.message.replace(`${source}: `, '') : 'not a submission',
    );
  }
  const { header } = parsed;
  if (header.ceremony !== c.body.nonce) {
    return reject(
      'wrong-ceremony',
      `was made for ceremony ${header.ceremony}, not this one (${c.body.nonce})`,
    );
  }
  if (now && expired(c.body, now))
    return reject('expired', `the ceremony expired at ${c.body.expires}`);
  if (header.ceremonyDigest !== c.digest) {
    return reject(
      'ceremony-changed',
      "names a different ceremony file digest: the file the custodian was sent was changed, or the submission's header was edited",
    );
  }
  const opened = await decryptWithAny(Buffer.from(parsed.sealed, 'utf8'), [host.identity]);
  if ('failure' in opened)
    return reject(
      'unopened',
      "it does not open with this ceremony's key: it was edited, or made for another ceremony",
    );
  let payload;
  try {
    payload = parsePayload(source, opened.plaintext);
  } catch {
    return reject('malformed', 'its sealed part is not a submission payload');
  }
  // Anyone can seal to the ceremony's public recipient: a rejection names a custodian only once a
  // share signed by the backup's dealer says who it is (see VERIFIED_REASONS below).
  if (!sameHeader(payload, header))
    return reject(
      'edited',
      'its clear header does not match the sealed one: the submission was edited',
    );
  let share;
  try {
    share = parseShare(source, payload.share);
  } catch (e) {
    return reject(
      'malformed',
      e instanceof CustosError ? e.message.replace(`${source}: `, '') : 'not a share',
    );
  }
  if (share.doc.custodian !== header.custodian) {
    return reject(
      'edited',
      `says it is from ${header.custodian} but carries ${share.doc.custodian}'s share`,
    );
  }
  return {
    custodian: header.custodian,
    candidate: { source, opened: { share, recipient: payload.openedWith } },
  };
}

/** Reasons given only after the share's signature verified: the custodian it names is real. */
export const VERIFIED_REASONS = new Set<Rejected['reason']>([
  'bundle-changed',
  'unknown-custodian',
  'wrong-custodian-file',
  'edited',
  'duplicate',
]);

/**
 * Judges the accepted submissions and the new ones together, so duplicates are caught across both.
 */
export async function judgeSubmissions(
  c: LoadedCeremony,
  host: Host,
  incoming: readonly Incoming[],
  now = new Date(),
): Promise<Judged> {
  const stored = acceptedPaths(host).map((p) => ({
    source: `${basename(p, '.submission')}'s accepted submission`,
    bytes: readFileSync(p),
  }));
  const candidates: Candidate[] = [];
  const early: (Rejected & { custodian?: string })[] = [];
  const custodianOf = new Map<string, string>();
  for (const s of stored) {
    // Stored submissions were judged when they came; expiry does not undo them, a changed file
    // does.
    const r = await candidateOf(c, host, s, null);
    if (!r.candidate)
      throw new CustosError(
        'E_CEREMONY',
        `${s.source} no longer opens or verifies: the ceremony's state on this host was changed`,
        'open a new ceremony',
      );
    candidates.push(r.candidate);
  }
  for (const s of incoming) {
    const r = await candidateOf(c, host, s, now);
    if (r.custodian) custodianOf.set(s.source, r.custodian);
    if (r.candidate) candidates.push(r.candidate);
    else if (r.rejected) early.push({ ...r.rejected, custodian: r.custodian });
  }
  const state = judgeShares(quorumSubject(c), candidates);
  const storedSources = new Set(stored.map((s) => s.source));
  const lost = state.rejected.filter((r) => storedSources.has(r.source));
  if (lost.length > 0)
    throw new CustosError(
      'E_CEREMONY',
      `${lost[0]?.source} is no longer accepted: ${lost[0]?.message}`,
      'open a new ceremony',
    );
  const fresh = state.accepted
    .filter((a) => !storedSources.has(a.source))
    .map((a) => ({
      custodian: a.custodian,
      incoming: incoming.find((i) => i.source === a.source) as Incoming,
    }));
  const turnedAway = [
    ...early,
    ...state.rejected.map((r) => ({
      ...r,
      custodian: VERIFIED_REASONS.has(r.reason) ? custodianOf.get(r.source) : undefined,
    })),
  ];
  state.rejected = turnedAway;
  state.missing = Math.max(0, state.threshold - state.accepted.length);
  return { state, fresh, turnedAway };
}
