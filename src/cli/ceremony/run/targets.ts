/**
 * Before a ceremony run closes: the tokens it needs, asked for, found and (for one restore target)
 * logged into, and the last question.
 */
import { CustosError } from '../../../core/errors.js';
import { bundlesOf } from '../../../core/ceremony.js';
import { fitLines } from '../../../core/layout.js';
import { BACK, choose, text } from '../../../io/terminal.js';
import type { LoadedCeremony } from '../../../ops/ceremony/host.js';
import {
  findEscrowedToken,
  NotTheEscrowedToken,
  type CloseRequest,
  type Prepared,
} from '../../../ops/ceremony/close.js';
import { escrowedToken } from '../../../ops/escrowed-pin.js';
import { lookForHsm, lookForHsms, openHsm } from '../../../ops/hsm.js';
import { hsmTarget, pinReader, type Context } from '../../../ops/context.js';
import { keptAfterFailure } from '../close.js';
import type { Run } from './shared.js';

/** A token the close uses: the request's field that names it, and the question that asks for it. */
interface Role {
  field: 'hsm' | 'fromHsm';
  question: string;
}

const TARGET: Role = {
  field: 'hsm',
  question: 'Restore into which HSM (profile or embedded token)?',
};

function escrowedQuestion(purpose: string): string {
  return purpose === 'restore'
    ? 'The escrowed backup token to copy from (profile or embedded token):'
    : 'The escrowed token to open (profile or embedded token):';
}

const nameGiven = (answer: string) =>
  answer.trim() !== '' ||
  'no name given: type the name of a custos.yaml profile or of an embedded token';

/** Asks for the tokens a close needs that were not given on the command line. */
export async function completeRequest(r: Run, o: CloseRequest): Promise<CloseRequest> {
  const req = { ...o };
  const { purpose, subject } = r.c.body;
  const name = async (question: string) =>
    text(question, { ...r.ask, validate: nameGiven }).then((answer) =>
      answer === BACK ? '' : answer.trim(),
    );
  if (subject.kind === 'pin-escrow' && purpose === 'restore' && !req.fromHsm)
    req.fromHsm = await name(escrowedQuestion(purpose));
  const needsHsm =
    (purpose === 'restore' && subject.kind !== 'domain') || subject.kind === 'pin-escrow';
  if (needsHsm && !req.hsm) {
    req.hsm = await name(
      subject.kind === 'pin-escrow' && purpose === 'drill'
        ? escrowedQuestion(purpose)
        : TARGET.question,
    );
  }
  return req;
}

/**
 * Before the last question: the tokens the close will use are found (an escrowed token checked to
 * be the one whose PIN was escrowed), and a restore's one target is logged into (its PIN kept for
 * the close, asked again if the token refuses it). A token name that is wrong is asked again, as a
 * path is. The context to close with, or null when the lead stops here.
 */
export async function checkTargets(
  r: Run,
  req: CloseRequest,
  prepared: Prepared,
): Promise<Context | null> {
  const { ctx, c } = r;
  const { purpose, subject } = c.body;
  if (subject.kind === 'domain' || (subject.kind === 'bundle' && purpose === 'drill')) return ctx;
  // --hsm may be given more than once (one target per bundle), so it comes as a list.
  const named = (field: Role['field']) => [req[field] ?? []].flat()[0] as string;
  for (;;) {
    // Set while a token that can be named again is looked at: a refusal then asks for another.
    let role: Role | undefined;
    try {
      if (subject.kind === 'pin-escrow') {
        // The quorum supplies the escrowed token's PIN: found now, logged into at the close.
        role = {
          field: purpose === 'restore' ? 'fromHsm' : 'hsm',
          question: escrowedQuestion(purpose),
        };
        findEscrowedToken(ctx, named(role.field), escrowedToken(prepared.subject));
        if (purpose === 'restore') {
          role = TARGET;
          lookForHsm(ctx, named('hsm'));
        }
        return ctx;
      }
      const names = [req.hsm ?? []].flat();
      if (names.length !== 1) {
        // One target per bundle: each found now, logged into at the close.
        lookForHsms(ctx, names);
        return ctx;
      }
      role = TARGET;
      const ready = await logIn(r, names[0] as string);
      return ready === 'stop' ? null : ready;
    } catch (e) {
      if (e instanceof CustosError && e.code === 'E_CANCELLED') throw r.ask.onCancel?.() ?? e;
      const wrongToken =
        e instanceof NotTheEscrowedToken ||
        (e instanceof CustosError && e.code === 'E_TOKEN_NOT_FOUND');
      if (!role || !wrongToken) throw keptAfterFailure(ctx, c, e, req);
      // Gone from the request at once, so that no command said next (stop, Ctrl-C) repeats it.
      delete req[role.field];
      const another = await nameAnother(r, e, role);
      if (another === null) return null;
      req[role.field] = another;
    }
  }
}

/** Says why the token named is not the one, and asks for another name (null: stop here). */
async function nameAnother(r: Run, e: CustosError, role: Role): Promise<string | null> {
  r.say([
    ...fitLines([`✘ ${e.message}`], r.width, 2),
    ...fitLines(
      [...e.details, ...(e.hint ? [e.hint] : [])].map((l) => `  ${l}`),
      r.width,
      2,
    ),
  ]);
  const next = await choose<'other' | 'stop'>(
    'What now?',
    [
      { name: 'Name another token', value: 'other' },
      { name: 'Stop here (the accepted shares are kept)', value: 'stop' },
    ],
    r.ask,
  );
  if (next !== 'other') return null;
  const name = await text(role.question, { ...r.ask, validate: nameGiven });
  return name === BACK ? null : name.trim();
}

/**
 * Logs in to the one target (its PIN kept for the close), asking for the PIN again when the token
 * refuses a typed one.
 */
async function logIn(r: Run, name: string): Promise<Context | 'stop'> {
  const { ctx } = r;
  const target = hsmTarget(ctx, name);
  const reader = pinReader(ctx, target);
  let pin: string | undefined;
  const withPin: Context = {
    ...ctx,
    pinOverride: { hsm: name, pin: async (token) => (pin ??= await reader(token)) },
  };
  for (;;) {
    try {
      const token = await openHsm(withPin, name, true);
      try {
        token.requireWrapMechanism('unwrap');
      } finally {
        token.close();
      }
      return withPin;
    } catch (e) {
      if (
        !(e instanceof CustosError) ||
        e.code !== 'E_PIN_INCORRECT' ||
        target.pinSource.kind !== 'prompt'
      )
        throw e;
      pin = undefined;
      r.say([
        ctx.out.colour.red(`✘ token "${name}" did not accept that PIN; nothing was written`),
        '  each wrong PIN counts towards locking the token: type it carefully',
      ]);
      const next = await choose<'again' | 'stop'>(
        'What now?',
        [
          { name: 'Type the PIN again', value: 'again' },
          { name: 'Stop here (the accepted shares are kept)', value: 'stop' },
        ],
        r.ask,
      );
      if (next !== 'again') return 'stop';
    }
  }
}

export function actionQuestion(c: LoadedCeremony, req: CloseRequest): string {
  const { purpose, subject } = c.body;
  if (subject.kind === 'domain')
    return 'Run the drill now (reassemble the domain secret in memory, check it, forget it)?';
  if (subject.kind === 'bundle') {
    const keys = bundlesOf(subject).reduce((n, b) => n + b.keys.length, 0);
    const into = [req.hsm].flat().join('", "');
    return purpose === 'restore'
      ? `Restore all ${keys} keys into "${into}" now?`
      : `Run the drill now (restore ${keys} keys into a scratch token, compare, destroy it)?`;
  }
  return purpose === 'restore'
    ? `Unlock "${req.fromHsm}" with the escrowed PIN and copy its keys into "${req.hsm}" now?`
    : `Prove the escrowed PIN opens "${req.hsm}" now?`;
}
