/**
 * custos ceremony open / add / status / close: the non-interactive ceremony, one step per command.
 */
import { relative } from 'node:path';
import { CustosError } from '../core/errors.js';
import { requiredQuorum } from '../core/ceremony.js';
import { readInputFile } from '../io/files.js';
import { fitLines } from '../core/layout.js';
import { whatToDo } from '../core/advice.js';
import {
  cancelCeremony,
  ceremonyStatus,
  loadCeremony,
  openCeremony,
  openHost,
  type CeremonyStatus,
  type LoadedCeremony,
  type OpenRequest,
} from '../ops/ceremony.js';
import { addSubmissions, type AddResult } from '../ops/submissions.js';
import {
  closeCeremony,
  closeCommand,
  closeHint,
  type CloseRequest,
  type Closing,
} from '../ops/ceremony-close.js';
import { subjectOf } from '../ops/submit.js';
import type { Context } from '../ops/context.js';
import { describeCeremony, quorumLine, showStatus } from './ceremony-view.js';
import { resolve } from 'node:path';
import { count } from './render.js';
import { renderRestore } from './restore.js';
import { renderCopy } from './copy.js';

export async function runOpen(ctx: Context, o: OpenRequest & { json?: boolean }): Promise<void> {
  const { ceremony, hostDir } = await openCeremony(ctx, o);
  if (o.json)
    return ctx.out.json({
      ceremony: ceremony.body,
      file: o.out,
      digest: ceremony.digest,
      hostDir: relative(ctx.cwd, hostDir),
    });
  const width = ctx.out.width;
  ctx.out.data(
    fitLines(
      [
        ...describeCeremony(ceremony, width),
        '',
        `ceremony file ${o.out} written; it holds nothing secret`,
        `its key stays on this host, in ${relative(ctx.cwd, hostDir)}/ (0600)`,
        'next:',
        `  1. send ${o.out} to each custodian, with the guide for custodians`,
        '  2. read each of them the SHA-256 above, by phone, never with the file',
        '  3. each custodian runs, on their own machine:',
        `       custos share submit --ceremony ${o.out} --share THEIR.share`,
        '         --identity THEIR.key --out THEIR-ID.submission',
        `  4. as submissions arrive: custos ceremony add ${o.out} FILE...`,
        `     (or take shares in person here: custos ceremony run ${o.out})`,
      ],
      width,
      4,
    ),
  );
}

export async function runAdd(
  ctx: Context,
  o: { ceremony: string; submissions: string[]; json?: boolean },
): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const host = await openHost(ctx, c);
  const incoming = o.submissions.map((p) => ({
    source: p,
    bytes: readInputFile(resolve(ctx.cwd, p), 'submission'),
  }));
  const r = await addSubmissions(ctx, c, host, incoming);
  // A second copy of a share already in is harmless: said, not an error.
  const duplicates = r.rejected.filter((x) => x.reason === 'duplicate');
  const rejected = r.rejected.filter((x) => x.reason !== 'duplicate');
  const status = ceremonyStatus(ctx, c);
  const width = ctx.out.width;
  if (o.json) ctx.out.json(addJson(r, requiredQuorum(c.body)));
  else {
    ctx.out.data(
      fitLines(
        [
          ...r.accepted.map((a) => `accepted ${a.source}: ${a.custodian}'s share`),
          ...duplicates.map(
            (d) =>
              `already in ${d.source}: ${d.custodian ?? 'this custodian'}'s share already counts; nothing to do`,
          ),
          quorumLine(status),
          ...addNext(c, status),
        ],
        width,
        6,
      ),
    );
  }
  if (rejected.length > 0) {
    const subject = subjectOf(c);
    throw new CustosError(
      'E_SUBMISSION_REJECTED',
      `${count(rejected.length, 'submission')} rejected`,
      'the accepted submissions are kept; for each rejected file, do what its line says',
      rejected.flatMap((x) => [
        `rejected ${x.source} (${x.custodian ?? 'sender not proven'}): ${x.message}`,
        `  what to do: ${whatToDo(x, subject)}`,
      ]),
    );
  }
}

/**
 * The "next:" lines after an add: close when the quorum is in, else where the missing shares come
 * from.
 */
function addNext(c: LoadedCeremony, s: CeremonyStatus): string[] {
  if (s.closed || s.expired) return [];
  const more = Math.max(0, requiredQuorum(c.body) - s.accepted);
  if (more === 0) return [`next: ${closeHint(c)}`];
  const missing = s.custodians.filter((x) => x.state !== 'accepted').map((x) => x.id);
  return [
    `next: as each submission arrives: custos ceremony add ${c.path} FILE...`,
    `      not given yet: ${missing.join(', ')}`,
  ];
}

function addJson(r: AddResult, quorum: number) {
  const duplicate = (x: AddResult['rejected'][number]) => x.reason === 'duplicate';
  return {
    accepted: r.accepted,
    rejected: r.rejected
      .filter((x) => !duplicate(x))
      .map((x) => ({
        source: x.source,
        custodian: x.custodian ?? null,
        reason: x.reason,
        message: x.message,
      })),
    duplicates: r.rejected
      .filter(duplicate)
      .map((x) => ({ source: x.source, custodian: x.custodian ?? null, message: x.message })),
    quorum: {
      accepted: r.state.accepted.length,
      needed: quorum,
      missing: Math.max(0, quorum - r.state.accepted.length),
    },
  };
}

export async function runStatus(
  ctx: Context,
  o: { ceremony: string; json?: boolean },
): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const s = ceremonyStatus(ctx, c);
  if (o.json) {
    return ctx.out.json({
      ceremony: c.body.nonce,
      purpose: c.body.purpose,
      expires: c.body.expires,
      expired: s.expired,
      closed: s.closed,
      threshold: c.body.threshold,
      quorum: requiredQuorum(c.body),
      accepted: s.accepted,
      custodians: s.custodians,
      unattributed: s.unattributed,
    });
  }
  const width = ctx.out.width;
  ctx.out.data(describeCeremony(c, width));
  showStatus(ctx.out, s, { width });
  if (!s.closed && s.expired)
    ctx.out.data(
      fitLines(
        [
          `the ceremony expired and can no longer act; destroy the shares it holds: custos ceremony cancel ${o.ceremony}`,
        ],
        width,
      ),
    );
  else if (!s.closed && s.accepted >= requiredQuorum(c.body))
    ctx.out.data(fitLines([`next: ${closeHint(c)}`], width, 6));
}

export async function runCancel(
  ctx: Context,
  o: { ceremony: string; yes?: boolean },
): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  let s: CeremonyStatus | undefined;
  try {
    s = ceremonyStatus(ctx, c);
  } catch {
    // no state here: cancelCeremony says why, as every ceremony command does
  }
  if (s && !o.yes && !s.closed && s.accepted > 0) {
    const shares = count(s.accepted, 'accepted share');
    ctx.out.note(
      `cancelling destroys the ceremony key and the ${shares} it holds; the custodians would have to give their shares again, in a new ceremony`,
    );
    const { askConfirm } = await import('../io/terminal.js');
    if (
      !(await askConfirm(
        `Cancel ceremony ${c.body.nonce.slice(0, 8)}… and destroy its ${shares}?`,
        'add --yes to cancel without being asked',
      ))
    ) {
      throw new CustosError(
        'E_CANCELLED',
        'not cancelled; the ceremony and its shares are as they were',
        'run it again when you are sure',
      );
    }
  }
  const r = await cancelCeremony(ctx, c);
  ctx.out.data(
    fitLines(
      [
        `ceremony ${c.body.nonce} cancelled: its key and ${count(r.accepted, 'share')} it held on this host were destroyed; it can no longer act`,
      ],
      ctx.out.width,
    ),
  );
}

export async function runClose(
  ctx: Context,
  o: CloseRequest & { ceremony: string; json?: boolean },
): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  let closing: Closing;
  try {
    closing = await closeCeremony(ctx, c, o);
  } catch (e) {
    throw keptAfterFailure(ctx, c, e, o);
  }
  renderClosing(ctx, closing, o.json);
}

/** Failures a close can be tried again after, once their cause is fixed. */
const RETRYABLE = new Set([
  'E_QUORUM',
  'E_PIN_INCORRECT',
  'E_PIN_LOCKED',
  'E_PIN_SOURCE',
  'E_TOKEN_NOT_FOUND',
  'E_HSM',
  'E_HSM_MODULE',
  'E_MECHANISM',
  'E_CONFLICT',
  'E_CONFIG',
  'E_NO_TTY',
  'E_SETUP',
  'E_FILE',
  'E_VERIFY',
  'E_USAGE',
]);

/**
 * A close (or the end of `ceremony run`) that failed while the ceremony is still open: the same
 * error, its hint in plain words, saying that the accepted shares are kept and the exact command
 * that finishes the job.
 */
export function keptAfterFailure(
  ctx: Context,
  c: LoadedCeremony,
  e: unknown,
  req: CloseRequest,
): unknown {
  if (!(e instanceof CustosError) || !RETRYABLE.has(e.code)) return e;
  let s: CeremonyStatus;
  try {
    s = ceremonyStatus(ctx, c);
  } catch {
    return e;
  }
  if (s.closed || s.expired) return e;
  const fix = plainFix(c, e, s);
  const kept =
    s.accepted === 1 ? 'the accepted share is kept' : `the ${s.accepted} accepted shares are kept`;
  // A token that was not found is named again by the lead: the command keeps its placeholder.
  const command = e.code === 'E_TOKEN_NOT_FOUND' ? closeHint(c) : closeCommand(c, req);
  return new CustosError(
    e.code,
    e.message,
    `${fix}. Nothing was written, and ${kept}; then run: ${command}`,
    e.details,
  );
}

function plainFix(c: LoadedCeremony, e: CustosError, s: CeremonyStatus): string {
  const hint = (e.hint ?? '').replace(/;? ?nothing (was|has been) (written|done|changed)\.?$/, '');
  switch (e.code) {
    case 'E_QUORUM': {
      const more = Math.max(1, requiredQuorum(c.body) - s.accepted);
      return `${more} more share${more === 1 ? ' is' : 's are'} needed: add submissions (custos ceremony add ${c.path} FILE...) or take shares in person (custos ceremony run ${c.path})`;
    }
    default:
      return hint || 'fix what the message says';
  }
}

export function renderClosing(ctx: Context, closing: Closing, json?: boolean): void {
  const o = closing.outcome;
  const nonce = closing.ceremony.body.nonce;
  if (json) return ctx.out.json({ ceremony: nonce, custodians: closing.custodians, outcome: o });
  const say = (line: string) => ctx.out.data(fitLines([line], ctx.out.width));
  switch (o.kind) {
    case 'restore':
      for (const r of o.results) renderRestore(ctx, r);
      break;
    case 'drill':
      for (const r of o.results) renderRestore(ctx, r);
      for (const r of o.results)
        say(
          `drill passed: all ${count(r.keys.length, 'key')} of bundle ${r.bundleId} restored into a scratch token and matched` +
            (o.results.length === 1
              ? `; the scratch token was ${o.scratchDestroyed ? 'destroyed' : 'NOT destroyed'}`
              : ''),
        );
      if (o.results.length > 1)
        say(`the scratch tokens were ${o.scratchDestroyed ? 'destroyed' : 'NOT all destroyed'}`);
      break;
    case 'domain-drill':
      say(
        `drill passed: the quorum reassembled the secret of domain ${o.domainId} (generation ${o.generation}), checked against the domain file; no HSM was touched`,
      );
      break;
    case 'copy':
      say(`escrowed token "${o.result.source.label}" opened with the reassembled PIN`);
      renderCopy(ctx, o.result);
      break;
    case 'pin-drill':
      say(
        `drill passed: the reassembled PIN opens token "${o.token.label}" (serial ${o.token.serial}), which holds ${count(o.keys, 'key')}; nothing was changed`,
      );
      break;
  }
  say(
    `ceremony ${nonce} closed (quorum: ${closing.custodians.join(', ')}); its key and the shares it held on this host were destroyed`,
  );
}
