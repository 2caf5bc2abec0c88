/** How a ceremony is shown to the people in it: what it authorises, and who has given a share. */
import { bundlesOf, requiredQuorum } from '../core/ceremony.js';
import type { LoadedCeremony, CeremonyStatus } from '../ops/ceremony.js';
import type { Output } from '../io/output.js';
import { count, printable } from './render.js';

const PURPOSE_TEXT = {
  restore: 'restore every key of the backup into an HSM',
  drill: 'a drill: restore into a scratch token, compare every key, destroy the scratch token',
  handover: 'hand named keys over under legal process',
  rotate: 'replace the escrow domain\'s secret with a new one, under a new policy',
} as const;

/** The lines a custodian reads before authorising anything. */
export function describeCeremony(c: LoadedCeremony, now = new Date()): string[] {
  const b = c.body;
  const p = printable;
  const s = b.subject;
  const left = Date.parse(b.expires) - now.getTime();
  const keyList = (keys: readonly { label: string }[]) => `${keys.slice(0, 8).map((k) => p(k.label)).join(', ')}${keys.length > 8 ? `, and ${keys.length - 8} more` : ''}`;
  const subject = s.kind === 'bundle'
    ? bundlesOf(s).flatMap((r) => [`backup:    bundle ${r.bundleId} of token "${p(r.source.label)}" (serial ${p(r.source.serial)}), ${count(r.keys.length, 'key')}`,
      // A handover releases only its named keys (below), not the backup's.
      ...(b.handover ? [] : [`keys:      ${keyList(r.keys)}`])])
    : s.kind === 'domain' ? [`domain:    ${s.bundleId}, generation ${s.generation}`]
    : [`backup:    the escrowed PIN of token "${p(s.token.label)}" (serial ${p(s.token.serial)})`];
  const domainLine = s.kind === 'bundle' && s.domain ? [`domain:    ${s.domain.domainId}, generation ${s.domain.generation} (your domain share opens it)`] : [];
  const purpose = s.kind === 'pin-escrow' && b.purpose === 'restore' ? 'unlock the escrowed backup token and copy its keys into an HSM'
    : s.kind === 'pin-escrow' && b.purpose === 'drill' ? 'a drill: prove the escrowed PIN opens its token, change nothing'
    : s.kind === 'domain' && b.purpose === 'drill' ? 'a drill: prove the custodians can reassemble the domain\'s secret; no HSM is touched'
    : PURPOSE_TEXT[b.purpose];
  return [
    `ceremony:  ${b.nonce}`,
    `file:      sha256 ${c.digest} (compare with the lead's)`,
    `purpose:   ${b.purpose} — ${purpose}`,
    ...subject,
    ...domainLine,
    ...(b.request ? [`request:   handover request sha256 ${b.request}`] : []),
    ...(b.handover ? [
      `matter:    ${p(b.handover.matter)}: ${p(b.handover.basis)} from ${p(b.handover.authority)}`,
      `releases:  ${b.handover.keys.map(p).join(', ')} (only these keys)`,
      `to:        the recipient key with SHA-256 ${b.handover.recipient}`,
    ] : []),
    `quorum:    ${requiredQuorum(b)} of ${b.total} custodians`,
    `opened by: ${p(b.openedBy)} at ${p(b.created)}`,
    `expires:   ${p(b.expires)} (${left > 0 ? `in ${hours(left)}` : 'expired'})`,
  ];
}

function hours(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  return h >= 1 ? `${h} h ${Math.floor((ms % 3_600_000) / 60_000)} min` : `${Math.max(1, Math.floor(ms / 60_000))} min`;
}

export function statusRows(out: Output, s: CeremonyStatus): (string | number)[][] {
  const index = new Map(s.ceremony.body.custodians.map((c) => [c.id, c.index]));
  const paint = (state: string) => state === 'accepted' ? out.colour.green(state) : state === 'rejected' ? out.colour.red(state) : out.colour.dim(state);
  return [
    ...s.custodians.map((c) => [c.id, printable(c.name), index.get(c.id) ?? '-', paint(c.state), printable(c.reason ?? '')]),
    ...s.unattributed.map((u) => [printable(u.source), '(not attributed: nothing sealed names a custodian)', '-', paint('rejected'), printable(u.message)]),
  ];
}

export function quorumLine(s: CeremonyStatus): string {
  const threshold = requiredQuorum(s.ceremony.body);
  const more = Math.max(0, threshold - s.accepted);
  if (s.closed) return `closed at ${s.closed.closed}: ${s.closed.outcome}`;
  return `quorum: ${s.accepted} of ${threshold} accepted${more ? ` (${more} more needed)` : ' — quorum reached'}${s.expired ? '; the ceremony has EXPIRED' : ''}`;
}

export function showStatus(out: Output, s: CeremonyStatus): void {
  out.table(['custodian', 'name', 'share', 'state', 'reason'], statusRows(out, s));
  out.data(quorumLine(s));
}
