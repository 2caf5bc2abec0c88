/**
 * A custodian's side of a ceremony, on their own machine: open their share, check it belongs to
 * the ceremony's backup and to them, and seal it to the ceremony's key bound to its nonce. The
 * share is in the clear only in this process's memory.
 */
import { resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { expired } from '../core/ceremony.js';
import { payloadText, serialiseSubmission, type SubmissionHeader } from '../core/submission.js';
import type { EscrowCustodian } from '../core/bundle.js';
import type { Rejected } from '../core/quorum.js';
import { encryptToRecipient, type NamedIdentity } from '../crypto/age.js';
import { sha256Hex } from '../crypto/check-values.js';
import { createFilesAtomically, refuseExisting } from '../io/files.js';
import { serialiseShare } from '../core/share.js';
import { loadCeremony, quorumSubject, type LoadedCeremony } from './ceremony/host.js';
import { judgeShares, loadIdentities, openShares } from './shares.js';
import { VERIFIED_REASONS } from './ceremony/judge.js';
import { whatToDo } from '../core/advice.js';
import type { Context } from './context.js';
import { audited } from './audit.js';

export interface Sealed {
  custodian: EscrowCustodian;
  /** The submission file's text: nothing in it is readable without the ceremony key. */
  text: string;
}

/** Refuses a ceremony that can no longer take submissions, before anyone types a passphrase. */
export function requireOpen(c: LoadedCeremony, now = new Date()): void {
  if (expired(c.body, now)) {
    throw new CustosError(
      'E_CEREMONY',
      `ceremony ${c.body.nonce} expired at ${c.body.expires}`,
      'an expired ceremony takes no shares: the lead opens a new one (custos ceremony open) and sends its file',
    );
  }
}

/**
 * Opens the share with the identities and checks it against the ceremony: sealed, or why not,
 * with what to do. `custodian` names whose share it is only when the share itself proves it
 * (its signature verified): a refusal is put against nobody else.
 */
export async function checkAndSeal(
  ctx: Context,
  c: LoadedCeremony,
  sharePath: string,
  identities: readonly NamedIdentity[],
): Promise<{ sealed: Sealed } | { rejected: Rejected; hint: string; custodian?: string }> {
  requireOpen(c);
  const [candidate] = await openShares(ctx, [sharePath], identities);
  const state = judgeShares(quorumSubject(c), candidate ? [candidate] : []);
  const rejected = state.rejected[0];
  if (rejected || !candidate || 'failure' in candidate.opened) {
    const r = rejected ?? { source: sharePath, reason: 'malformed', message: 'not accepted' };
    const named =
      candidate && !('failure' in candidate.opened)
        ? candidate.opened.share.doc.custodian
        : undefined;
    const proven =
      named && VERIFIED_REASONS.has(r.reason) && c.body.custodians.some((x) => x.id === named)
        ? named
        : undefined;
    return {
      rejected: r,
      hint: whatToDo(r, subjectOf(c)),
      ...(proven ? { custodian: proven } : {}),
    };
  }
  const { share, recipient } = candidate.opened;
  const custodian = c.body.custodians.find((x) => x.id === share.doc.custodian) as EscrowCustodian;
  const header: SubmissionHeader = {
    ceremony: c.body.nonce,
    ceremonyDigest: c.digest,
    custodian: custodian.id,
    submitted: new Date().toISOString(),
  };
  const shareText = serialiseShare(share.signed, share.signature);
  const sealed = await encryptToRecipient(
    c.body.recipient,
    payloadText({ ...header, openedWith: recipient, share: shareText }),
  );
  return { sealed: { custodian, text: serialiseSubmission(header, sealed) } };
}

/** What the ceremony's shares are for, as a refusal's advice names it. */
export function subjectOf(c: LoadedCeremony): string {
  const s = c.body.subject;
  if (s.kind === 'domain') return `domain ${s.bundleId}`;
  if (s.kind === 'bundle' && s.domain) return `domain ${s.domain.domainId}`;
  return s.kind === 'pin-escrow'
    ? `the PIN escrow of token "${s.token.label}" (bundle ${s.bundleId})`
    : `bundle ${s.bundleId}`;
}

/**
 * The ceremony a custodian is asked to submit to: still open, and the submission file not there
 * yet, both checked before anyone types a passphrase.
 */
export function ceremonyToSubmitTo(
  ctx: Context,
  ceremonyPath: string,
  out: string,
): LoadedCeremony {
  const c = loadCeremony(ctx, ceremonyPath);
  requireOpen(c);
  refuseExisting([resolve(ctx.cwd, out)]);
  return c;
}

export interface SubmitRequest {
  share: string;
  identity: string;
  out: string;
}

/**
 * The custodian's submission, recorded in the audit log (`share-submit`) whether it is written,
 * refused or stopped: the share opened and checked, then `confirm` (which may stop it by throwing
 * E_CANCELLED), then the sealed share written to `out`.
 */
export function submitShare(
  ctx: Context,
  c: LoadedCeremony,
  req: SubmitRequest,
  confirm: (custodian: EscrowCustodian) => Promise<void>,
): Promise<{ custodian: EscrowCustodian; path: string; digest: string }> {
  return audited(ctx, 'share-submit', async (note) => {
    note.ceremony = c.body.nonce;
    note.bundle = c.body.subject.bundleId;
    note.artifacts = { ceremony: c.digest };
    const sealed = await sealShare(ctx, c, req.share, await loadIdentities(ctx, [req.identity]));
    note.detail = { custodian: sealed.custodian.id, purpose: c.body.purpose };
    await confirm(sealed.custodian);
    const written = writeSubmission(ctx, sealed, req.out);
    note.artifacts.submission = written.digest;
    return { custodian: sealed.custodian, ...written };
  });
}

async function sealShare(
  ctx: Context,
  c: LoadedCeremony,
  sharePath: string,
  identities: readonly NamedIdentity[],
): Promise<Sealed> {
  const r = await checkAndSeal(ctx, c, sharePath, identities);
  if ('rejected' in r)
    throw new CustosError('E_SHARE_REJECTED', `${sharePath}: ${r.rejected.message}`, r.hint);
  return r.sealed;
}

function writeSubmission(
  ctx: Context,
  sealed: Sealed,
  out: string,
): { path: string; digest: string } {
  const path = resolve(ctx.cwd, out);
  createFilesAtomically([{ path, data: sealed.text, mode: 0o600 }]);
  return { path, digest: sha256Hex(Buffer.from(sealed.text, 'utf8')) };
}
