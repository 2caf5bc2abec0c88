/**
 * custos ceremony run: the ceremony at one terminal. Custodians step up in turn; each share is
 * checked the moment it is given, and kept only locked with the ceremony key. A mistake asks
 * again for the one answer that was wrong (Esc goes back a step); every step offers to choose
 * someone else or to stop, and Ctrl-C at any prompt leaves the ceremony as it stands, to be
 * resumed. A refusal is put against a custodian only when the share itself proves it is theirs.
 * With the quorum, the target token is found and logged into before the last question.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { requiredQuorum } from '../../core/ceremony.js';
import { fitLines } from '../../core/layout.js';
import { BACK, choose, requireTty, yesNo, type AskOptions } from '../../io/terminal.js';
import { loadCeremony, openHost, type LoadedCeremony } from '../../ops/ceremony/host.js';
import { ceremonyStatus } from '../../ops/ceremony/status.js';
import {
  closeCeremony,
  closeCommand,
  closeHint,
  commandWith,
  prepareClose,
  type CloseRequest,
} from '../../ops/ceremony/close.js';
import { requireOpen } from '../../ops/submit.js';
import type { Context } from '../../ops/context.js';
import { describeCeremony, showStatus } from '../ceremony-view.js';
import { keptAfterFailure, renderClosing } from './close.js';
import { printable } from '../render.js';
import { NON_INTERACTIVE, type Run } from './run/shared.js';
import { turn } from './run/turn.js';
import { actionQuestion, checkTargets, completeRequest } from './run/targets.js';

export async function run(ctx: Context, o: CloseRequest & { ceremony: string }): Promise<void> {
  requireTty('custos ceremony run', NON_INTERACTIVE);
  const c = loadCeremony(ctx, o.ceremony);
  const host = await openHost(ctx, c);
  requireOpen(c);
  const needed = requiredQuorum(c.body);
  const width = ctx.out.width;
  // The tokens named so far, less any found wrong: what a resumed run is given.
  let named: CloseRequest = o;
  const resume = () => commandWith('run', c, named);
  const interrupted = () => {
    const n = ceremonyStatus(ctx, c).accepted;
    return new CustosError(
      'E_CANCELLED',
      `ceremony interrupted with ${n} of ${needed} shares accepted; they are kept, locked with the ceremony key`,
      `resume with: ${resume()}`,
    );
  };
  const ask: AskOptions = { alternative: NON_INTERACTIVE, onCancel: interrupted };
  const r: Run = {
    ctx,
    c,
    host,
    width,
    ask,
    back: { ...ask, back: true },
    say: (text) => ctx.out.data(text),
  };
  const stopHere = (accepted: number) =>
    r.say(
      fitLines(
        [
          `ceremony left open with ${accepted} of ${needed} shares accepted; resume with:`,
          `  ${resume()}`,
        ],
        width,
        2,
      ),
    );
  r.say(ctx.out.colour.bold('custos quorum ceremony'));
  r.say(describeCeremony(c, width));
  r.say(fitLines(leftoverShares(ctx, c), width));

  let last: string[] = [];
  for (;;) {
    const status = ceremonyStatus(ctx, c);
    r.say('');
    showStatus(ctx.out, status, { width, refusals: false });
    // The last attempt's outcome and what to do, right above the next question.
    if (last.length > 0) r.say(last);
    if (status.accepted >= needed) break;
    const waiting = status.custodians.filter((x) => x.state !== 'accepted');
    const who = await choose<string | null>(
      'Who is giving their share now?',
      [
        ...waiting.map((x) => ({
          name: `${x.id} — ${printable(x.name)}${x.state === 'rejected' ? ' (try again)' : ''}`,
          value: x.id,
        })),
        { name: 'Nobody for now: stop here (the ceremony stays open)', value: null },
      ],
      ask,
    );
    if (who === null || who === BACK) return stopHere(status.accepted);
    const end = await turn(r, who);
    if (end.kind === 'stop') return stopHere(ceremonyStatus(ctx, c).accepted);
    last = end.lines;
  }

  if (c.body.purpose === 'handover' || c.body.purpose === 'rotate') {
    // Closed by another command, with what only the lead has (the request's package, the new
    // policy).
    r.say(ctx.out.colour.green(`Quorum reached: ${needed} of ${needed} shares accepted.`));
    r.say(
      fitLines(
        [
          c.body.purpose === 'handover'
            ? `the keys are released by the institution with: ${closeHint(c)}`
            : `the rotation is made with: ${closeHint(c)}`,
        ],
        width,
      ),
    );
    return;
  }
  const request = await completeRequest(r, o);
  named = request;
  let prepared;
  try {
    prepared = await prepareClose(ctx, c, request, host);
  } catch (e) {
    throw keptAfterFailure(ctx, c, e, request);
  }
  const ready = await checkTargets(r, request, prepared);
  const later = fitLines(
    [
      'nothing done yet; the accepted shares are kept. Close later with:',
      `  ${closeCommand(c, request)}`,
    ],
    width,
    2,
  );
  if (!ready) {
    r.say(later);
    return;
  }
  r.say(
    ctx.out.colour.green(
      `Quorum reached: ${ceremonyStatus(ctx, c).accepted} of ${needed} shares accepted.`,
    ),
  );
  if (!(await yesNo(actionQuestion(c, request), ask))) {
    r.say(later);
    return;
  }
  let closing;
  try {
    closing = await closeCeremony(ready, c, request);
  } catch (e) {
    throw keptAfterFailure(ctx, c, e, request);
  }
  renderClosing(ctx, closing);
}

/**
 * The host's own copies of the custodians' share files, left from the backup: custodians give their
 * own.
 */
function leftoverShares(ctx: Context, c: LoadedCeremony): string[] {
  const s = c.body.subject;
  if (s.kind === 'domain') return [];
  const subject = resolve(dirname(resolve(ctx.cwd, c.path)), s.file);
  const dir = s.kind === 'pin-escrow' ? dirname(subject) : `${subject}.shares`;
  if (!existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.share'))) return [];
  const shown = relative(ctx.cwd, join(dir, '/')) || dir;
  return [
    '',
    `note: this host still holds copies of share files, in ${shown}/. Each custodian gives their own share; delete the host's copies once every custodian has theirs.`,
  ];
}
