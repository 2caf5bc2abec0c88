/**
 * custos ceremony run: the ceremony at one terminal. Custodians step up in turn; each share is
 * checked the moment it is given, and kept only sealed to the ceremony key. Ctrl-C at any prompt
 * leaves the ceremony as it stands, to be resumed; when the quorum is reached, it asks, then acts.
 */
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { requiredQuorum, bundlesOf } from '../core/ceremony.js';
import { parseIdentityFile, type NamedIdentity } from '../crypto/age.js';
import { readInputFile } from '../io/files.js';
import { askChoice, askConfirm, askInput, askSecret, requireTty } from '../io/terminal.js';
import { ceremonyStatus, loadCeremony, openHost, type Host, type LoadedCeremony } from '../ops/ceremony.js';
import { addSubmissions, rejectAtEntry } from '../ops/submissions.js';
import { closeCeremony, closeHint, prepareClose, type CloseRequest } from '../ops/ceremony-close.js';
import { checkAndSeal, requireOpen } from '../ops/submit.js';
import { identityFromFile } from '../ops/shares.js';
import type { Context } from '../ops/context.js';
import { describeCeremony, showStatus } from './ceremony-view.js';
import { renderClosing } from './ceremony.js';
import { printable } from './render.js';

const NON_INTERACTIVE = 'without a terminal, use the step commands: custodians run custos share submit, then custos ceremony add CEREMONY SUBMISSION... and custos ceremony close CEREMONY';

export async function run(ctx: Context, o: CloseRequest & { ceremony: string }): Promise<void> {
  requireTty('custos ceremony run', NON_INTERACTIVE);
  const c = loadCeremony(ctx, o.ceremony);
  const host = await openHost(ctx, c);
  requireOpen(c);
  const needed = requiredQuorum(c.body);
  const interrupted = () => {
    const n = ceremonyStatus(ctx, c).accepted;
    return new CustosError('E_CANCELLED', `ceremony interrupted with ${n} of ${needed} shares accepted; they are kept, sealed to the ceremony key`,
      `resume with: custos ceremony run ${o.ceremony}`);
  };
  const say = (text: string) => ctx.out.data(text);
  say(ctx.out.colour.bold('custos quorum ceremony'));
  say(describeCeremony(c).join('\n'));

  for (;;) {
    const status = ceremonyStatus(ctx, c);
    say('');
    showStatus(ctx.out, status);
    if (status.accepted >= needed) break;
    const waiting = status.custodians.filter((x) => x.state !== 'accepted');
    const who = await askChoice<string | null>('Who is giving their share now?', [
      ...waiting.map((x) => ({ name: `${x.id} — ${printable(x.name)}${x.state === 'rejected' ? ' (try again)' : ''}`, value: x.id })),
      { name: 'Nobody for now: stop here and resume later', value: null },
    ], NON_INTERACTIVE, interrupted);
    if (who === null) {
      say(`ceremony left open with ${status.accepted} of ${needed} shares accepted; resume with: custos ceremony run ${o.ceremony}`);
      return;
    }
    await takeShare(ctx, c, host, who, interrupted);
  }

  if (c.body.purpose === 'handover') {
    say(ctx.out.colour.green(`Quorum reached: ${needed} of ${c.body.total} custodians.`));
    say(`the keys are released by the institution with: ${closeHint(c)}`);
    return;
  }
  const request = await completeRequest(ctx, c, o, interrupted);
  await prepareClose(ctx, c, request, host);
  say(ctx.out.colour.green(`Quorum reached: ${needed} of ${c.body.total} custodians.`));
  if (!(await askConfirm(actionQuestion(c, request), NON_INTERACTIVE, interrupted))) {
    say(`nothing done yet; the quorum is kept. Close later with: ${closeHint(c)}`);
    return;
  }
  renderClosing(ctx, await closeCeremony(ctx, c, request));
}

/** One custodian at the terminal: identity (file or pasted, passphrase asked), share file, checked at once. */
async function takeShare(ctx: Context, c: LoadedCeremony, host: Host, who: string, interrupted: () => CustosError): Promise<void> {
  const source = `${who} at the terminal`;
  let identities: NamedIdentity[];
  try {
    identities = await askIdentity(ctx, who, interrupted);
    const sharePath = await askInput(`${who}: path of your share file`, NON_INTERACTIVE, defaultSharePath(ctx, c, who), interrupted, (text) => /^\s*AGE-/i.test(text));
    if (/AGE-SECRET-KEY-/i.test(sharePath)) {
      throw new CustosError('E_IDENTITY', 'that is an age secret key, not the path of a share file', 'give the path of your share file; your identity was asked for before');
    }
    const checked = await checkAndSeal(ctx, c, sharePath, identities);
    if ('rejected' in checked) {
      rejectAtEntry(ctx, c, host, { ...checked.rejected, source, custodian: who });
      return refused(ctx, checked.rejected.message, checked.hint);
    }
    const { sealed } = checked;
    if (sealed.custodian.id !== who) {
      const message = `this is ${sealed.custodian.id}'s share, not ${who}'s`;
      rejectAtEntry(ctx, c, host, { source, custodian: who, reason: 'wrong-custodian-file', message });
      return refused(ctx, message, `${who}: bring your own share file; ${sealed.custodian.id} must step up in person`);
    }
    const r = await addSubmissions(ctx, c, host, [{ source, bytes: Buffer.from(sealed.text, 'utf8') }]);
    const turned = r.rejected[0];
    if (turned) return refused(ctx, turned.message, 'if this custodian was already accepted, nothing more is needed from them');
    ctx.out.data(ctx.out.colour.green(`✔ ${who}'s share is accepted (${r.state.accepted.length} of ${requiredQuorum(c.body)}).`));
  } catch (e) {
    // A file that is missing or an identity that does not parse: say so and let them try again.
    if (!(e instanceof CustosError) || !['E_FILE', 'E_IDENTITY'].includes(e.code)) throw e;
    refused(ctx, e.message, e.hint ?? 'try again');
  }
}

function refused(ctx: Context, message: string, hint: string): void {
  ctx.out.data(ctx.out.colour.red(`✘ not accepted: ${message}`));
  ctx.out.data(`  what to do: ${hint}`);
}

async function askIdentity(ctx: Context, who: string, interrupted: () => CustosError): Promise<NamedIdentity[]> {
  const how = await askChoice(`${who}: how will you give your age identity?`, [
    { name: 'The path of my identity file', value: 'file' },
    { name: 'Paste the key (AGE-SECRET-KEY-1…; it is not shown)', value: 'paste' },
  ], NON_INTERACTIVE, interrupted);
  if (how === 'paste') {
    const text = await askSecret(`${who}: paste your identity, then Enter:`, NON_INTERACTIVE, interrupted);
    return parseIdentityFile(`${who}'s pasted identity`, text.trim());
  }
  const path = await askInput(`${who}: path of your identity file`, NON_INTERACTIVE, undefined, interrupted, (text) => /^\s*AGE-/i.test(text));
  if (/AGE-SECRET-KEY-/i.test(path)) {
    throw new CustosError('E_IDENTITY', 'that is an age secret key, not the path of a file', 'choose "paste the key" to give the key itself; it will not be shown');
  }
  return identityFromFile(ctx, path, readInputFile(resolve(ctx.cwd, path), 'identity file'), interrupted);
}

function defaultSharePath(ctx: Context, c: LoadedCeremony, who: string): string | undefined {
  const subject = resolve(dirname(resolve(ctx.cwd, c.path)), c.body.subject.file);
  const guess = c.body.subject.kind === 'pin-escrow' ? resolve(dirname(subject), `${who}.share`) : `${subject}.shares/${who}.share`;
  return existsSync(guess) ? relative(ctx.cwd, guess) : undefined;
}

/** Asks for the tokens a close needs that were not given on the command line. */
async function completeRequest(ctx: Context, c: LoadedCeremony, o: CloseRequest, interrupted: () => CustosError): Promise<CloseRequest> {
  const req = { ...o };
  const { purpose, subject } = c.body;
  if (subject.kind === 'pin-escrow' && purpose === 'restore' && !req.fromHsm) {
    req.fromHsm = await askInput('The escrowed backup token to copy from (profile or embedded token):', NON_INTERACTIVE, undefined, interrupted);
  }
  const needsHsm = (purpose === 'restore' && subject.kind !== 'domain') || subject.kind === 'pin-escrow';
  if (needsHsm && !req.hsm) {
    req.hsm = await askInput(subject.kind === 'pin-escrow' && purpose === 'drill' ? 'The escrowed token to open (profile or embedded token):' : 'Restore into which HSM (profile or embedded token)?',
      NON_INTERACTIVE, undefined, interrupted);
  }
  return req;
}

function actionQuestion(c: LoadedCeremony, req: CloseRequest): string {
  const { purpose, subject } = c.body;
  if (subject.kind === 'domain') return 'Run the drill now (reassemble the domain secret in memory, check it, forget it)?';
  if (subject.kind === 'bundle') {
    const keys = bundlesOf(subject).reduce((n, b) => n + b.keys.length, 0);
    const into = [req.hsm].flat().join('", "');
    return purpose === 'restore' ? `Restore all ${keys} keys into "${into}" now?` : `Run the drill now (restore ${keys} keys into a scratch token, compare, destroy it)?`;
  }
  return purpose === 'restore' ? `Unlock "${req.fromHsm}" with the escrowed PIN and copy its keys into "${req.hsm}" now?` : `Prove the escrowed PIN opens "${req.hsm}" now?`;
}
