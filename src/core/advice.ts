/**
 * What to do about a refused share or submission: one plain instruction per mistake, the same
 * wherever the mistake is met (shares verify, share submit, ceremony run, ceremony add, status),
 * and the same words as the tables in docs/ceremony.md and docs/runbook-restore.md.
 */
import type { RejectReason } from './quorum.js';

export interface Refusal {
  reason: RejectReason;
  message: string;
}

/** The mistakes people make, as told apart by a refusal's reason and message. */
export type Mistake =
  | 'wrong-identity'
  | 'damaged-share'
  | 'other-backup'
  | 'changed-share'
  | 'changed-bundle'
  | 'not-this-backup'
  | 'reencrypted'
  | 'duplicate'
  | 'other-ceremony'
  | 'expired'
  | 'changed-ceremony'
  | 'unopened-submission'
  | 'not-a-submission'
  | 'share-file-sent'
  | 'edited-submission';

/**
 * The message `ceremony add` gives a share file (or another age file) sent in place of a
 * submission.
 */
export const SHARE_FILE_SENT = 'is an encrypted file, most likely a share file, not a submission';

export function mistakeOf(r: Refusal): Mistake {
  switch (r.reason) {
    case 'unopened':
      return r.message.startsWith('none of the identities')
        ? 'wrong-identity'
        : 'unopened-submission';
    case 'malformed':
      if (r.message.startsWith(SHARE_FILE_SENT)) return 'share-file-sent';
      // A submission's own header and sealed part; the rest is the share inside (or a share file).
      return /submission|sealed|^line \d+ should be "(ceremony|ceremony-digest|submitted):|^"(ceremony|ceremony-digest|submitted)" is not/.test(
        r.message,
      )
        ? 'not-a-submission'
        : 'damaged-share';
    case 'foreign-bundle':
      return 'other-backup';
    case 'bad-signature':
      return 'changed-share';
    case 'bundle-changed':
      return 'changed-bundle';
    case 'unknown-custodian':
      return 'not-this-backup';
    case 'wrong-custodian-file':
      return 'reencrypted';
    case 'edited':
      return /clear header|says it is from/.test(r.message)
        ? 'edited-submission'
        : 'not-this-backup';
    case 'duplicate':
      return 'duplicate';
    case 'wrong-ceremony':
      return 'other-ceremony';
    case 'expired':
      return 'expired';
    case 'ceremony-changed':
      return 'changed-ceremony';
  }
}

/**
 * The instruction for a refusal. `subject` names what the shares are for (`bundle 0e02…`, `domain
 * 7f1c…`), for the one mistake it helps with: a share of another backup.
 */
export function whatToDo(r: Refusal, subject?: string): string {
  switch (mistakeOf(r)) {
    case 'wrong-identity':
      return 'use the identity file that belongs with this share file (each custodian has their own pair)';
    case 'damaged-share':
      return 'use the original copy of this share file: this one is damaged';
    case 'other-backup':
      return `this share is for another backup: find the share file made for ${subject ?? 'this backup'} (custodians often hold several)`;
    case 'changed-share':
      return 'use the original copy of this share file; if every share is refused this way, the bundle was changed: use another copy of it';
    case 'changed-bundle':
      return 'the share is genuine but the bundle was changed: use an intact copy of the bundle (for a ceremony, the lead opens a new one on it)';
    case 'not-this-backup':
      return 'do not use this share: keep it and report it to whoever made the backup';
    case 'reencrypted':
      return 'do not use this share (it was re-encrypted for someone else): its owner gives their own share with their own identity; report it';
    case 'duplicate':
      return "nothing: this custodian's share already counts";
    case 'other-ceremony':
      return "the custodian submits again with this ceremony's file: a submission works only in the ceremony it was made for";
    case 'expired':
      return 'open a new ceremony; every custodian submits again';
    case 'changed-ceremony':
      return 'send the custodian the ceremony file again; they compare its fingerprint with yours, then submit again';
    case 'unopened-submission':
      return "the custodian submits again with this ceremony's file; if it happens again, suspect the way the file travelled";
    case 'not-a-submission':
      return 'the custodian sends the .submission file again, unchanged, as a file (not pasted into a message)';
    case 'share-file-sent':
      return 'never send a share file: the custodian runs custos share submit and sends the .submission file it writes';
    case 'edited-submission':
      return 'do not use it: the custodian submits again; report it';
  }
}
