/** How a ceremony is shown to the people in it: what it authorises, and who has given a share. */
import { bundlesOf, requiredQuorum } from '../core/ceremony.js';
import { hangingLines, wrapText } from '../core/layout.js';
import { whatToDo } from '../core/advice.js';
import type { LoadedCeremony } from '../ops/ceremony/host.js';
import type { CeremonyStatus } from '../ops/ceremony/status.js';
import { subjectOf } from '../ops/submit.js';
import type { Output } from '../io/output.js';
import { count } from './render.js';
import { tokenName } from '../hsm/quirks.js';

const PURPOSE_TEXT = {
  restore: 'restore every key of the backup into an HSM',
  drill: 'a drill: restore into a scratch token, compare every key, destroy the scratch token',
  handover: 'hand named keys over under legal process',
  rotate: "replace the escrow domain's secret with a new one, under a new policy",
} as const;

/**
 * The ceremony file's SHA-256 as people read it aloud: sixteen groups of four characters, on one
 * line.
 */
export function groupedDigest(digest: string): string {
  return (digest.match(/.{1,4}/g) ?? []).join(' ');
}

/** The line above the grouped digest. */
export const DIGEST_LABEL =
  'file:      its SHA-256, read out by the lead and compared by each custodian:';

/**
 * The lines a custodian reads before authorising anything, each at most `width` columns (raw:
 * Output escapes what it prints). The file's digest comes last, alone on its line.
 */
export function describeCeremony(c: LoadedCeremony, width = 80, now = new Date()): string[] {
  const b = c.body;
  const s = b.subject;
  const left = Date.parse(b.expires) - now.getTime();
  const field = (label: string, text: string) => hangingLines(label.padEnd(11), text, width);
  const keyList = (keys: readonly { label: string }[]) =>
    `${keys
      .slice(0, 8)
      .map((k) => k.label)
      .join(', ')}${keys.length > 8 ? `, and ${keys.length - 8} more` : ''}`;
  const subject =
    s.kind === 'bundle'
      ? bundlesOf(s).flatMap((r) => [
          ...field(
            'backup:',
            `bundle ${r.bundleId} of token ${tokenName(r.source)}, ${count(r.keys.length, 'key')}`,
          ),
          // A handover releases only its named keys (below), not the backup's.
          ...(b.handover ? [] : field('keys:', keyList(r.keys))),
        ])
      : s.kind === 'domain'
        ? field('domain:', `${s.bundleId}, generation ${s.generation}`)
        : field(
            'backup:',
            `the escrowed PIN of token "${s.token.label}" (serial ${s.token.serial})`,
          );
  const domainLine =
    s.kind === 'bundle' && s.domain
      ? field(
          'domain:',
          `${s.domain.domainId}, generation ${s.domain.generation} (your domain share opens it)`,
        )
      : [];
  const purpose =
    s.kind === 'pin-escrow' && b.purpose === 'restore'
      ? 'unlock the escrowed backup token and copy its keys into an HSM'
      : s.kind === 'pin-escrow' && b.purpose === 'drill'
        ? 'a drill: prove the escrowed PIN opens its token, change nothing'
        : s.kind === 'domain' && b.purpose === 'drill'
          ? "a drill: prove the custodians can reassemble the domain's secret; no HSM is touched"
          : PURPOSE_TEXT[b.purpose];
  const digest = groupedDigest(c.digest);
  return [
    ...field('ceremony:', b.nonce),
    ...field('purpose:', `${b.purpose} — ${purpose}`),
    ...subject,
    ...domainLine,
    ...(b.request ? field('request:', `handover request sha256 ${b.request}`) : []),
    ...(b.handover
      ? [
          ...field(
            'matter:',
            `${b.handover.matter}: ${b.handover.basis} from ${b.handover.authority}`,
          ),
          ...field('releases:', `${b.handover.keys.join(', ')} (only these keys)`),
          ...field('to:', `the recipient key with SHA-256 ${b.handover.recipient}`),
        ]
      : []),
    ...field('quorum:', `${requiredQuorum(b)} of the ${b.total} custodians must give their share`),
    ...field('opened by:', `${b.openedBy} at ${b.created}`),
    ...field('expires:', `${b.expires} (${left > 0 ? `in ${hours(left)}` : 'expired'})`),
    ...wrapText(DIGEST_LABEL, width),
    // One line on an 80-column terminal (79 characters); split in two only on a narrower one.
    ...(digest.length <= width ? [digest] : [digest.slice(0, 39), digest.slice(40)]),
  ];
}

function hours(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  return h >= 1
    ? `${h} h ${Math.floor((ms % 3_600_000) / 60_000)} min`
    : `${Math.max(1, Math.floor(ms / 60_000))} min`;
}

/**
 * One row per custodian; why someone was turned away goes below the table (refusalLines), never in
 * a column.
 */
export function statusRows(out: Output, s: CeremonyStatus): (string | number)[][] {
  const index = new Map(s.ceremony.body.custodians.map((c) => [c.id, c.index]));
  const paint = (state: string) =>
    state === 'accepted'
      ? out.colour.green(state)
      : state === 'rejected'
        ? out.colour.red(state)
        : out.colour.dim(state);
  return s.custodians.map((c) => [c.id, c.name, index.get(c.id) ?? '-', paint(c.state)]);
}

/**
 * Each refusal that still stands, with what to do: the custodian's, then those that prove no
 * sender.
 */
export function refusalLines(s: CeremonyStatus, width = 80): string[] {
  const subject = subjectOf(s.ceremony);
  const lines: string[] = [];
  const say = (who: string, reason: string | undefined, message: string) => {
    lines.push(...wrapText(`${who}:`, width), ...hangingLines('  refused:     ', message, width));
    if (reason)
      lines.push(
        ...hangingLines(
          '  what to do:  ',
          whatToDo({ reason: reason as never, message }, subject),
          width,
        ),
      );
  };
  for (const c of s.custodians)
    if (c.state === 'rejected' && c.reason) say(c.id, c.reasonCode, c.reason);
  for (const u of s.unattributed)
    say(`${u.source} (sender not proven, counted against nobody)`, u.reason, u.message);
  return lines;
}

export function quorumLine(s: CeremonyStatus): string {
  const needed = requiredQuorum(s.ceremony.body);
  const more = Math.max(0, needed - s.accepted);
  if (s.closed) return `closed at ${s.closed.closed}: ${s.closed.outcome}`;
  return `quorum: ${s.accepted} of ${needed} shares accepted${more ? ` (${more} more needed)` : ' — quorum reached'}${s.expired ? '; the ceremony has EXPIRED' : ''}`;
}

/** The table of custodians, the refusals below it (unless left out), and the quorum line. */
export function showStatus(
  out: Output,
  s: CeremonyStatus,
  o: { width?: number; refusals?: boolean } = {},
): void {
  out.table(['custodian', 'name', 'share', 'state'], statusRows(out, s));
  if (o.refusals !== false) out.data(refusalLines(s, o.width));
  out.data(quorumLine(s));
}
