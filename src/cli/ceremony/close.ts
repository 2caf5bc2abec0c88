/**
 * custos ceremony close: what the quorum did; after a failure that can be put right, how to finish
 * (also for the end of custos ceremony run).
 */
import { CustosError } from '../../core/errors.js';
import { requiredQuorum } from '../../core/ceremony.js';
import { fitLines } from '../../core/layout.js';
import { loadCeremony, type LoadedCeremony } from '../../ops/ceremony/host.js';
import { ceremonyStatus, type CeremonyStatus } from '../../ops/ceremony/status.js';
import {
  closeCeremony,
  closeCommand,
  closeHint,
  NotTheEscrowedToken,
  type CloseRequest,
  type Closing,
} from '../../ops/ceremony/close.js';
import type { Context } from '../../ops/context.js';
import { count } from '../render.js';
import { renderRestore } from '../restore.js';
import { renderCopy } from '../copy.js';
import { tokenName } from '../../hsm/quirks.js';

export async function run(
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
  // A token that was not found, or is not the escrowed one, is named again by the lead: the
  // command keeps its placeholder.
  const wrongToken = e.code === 'E_TOKEN_NOT_FOUND' || e instanceof NotTheEscrowedToken;
  const command = wrongToken ? closeHint(c) : closeCommand(c, req);
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
        `drill passed: the reassembled PIN opens token ${tokenName(o.token)}, which holds ${count(o.keys, 'key')}; nothing was changed`,
      );
      break;
  }
  say(
    `ceremony ${nonce} closed (quorum: ${closing.custodians.join(', ')}); its key and the shares it held on this host were destroyed`,
  );
}
