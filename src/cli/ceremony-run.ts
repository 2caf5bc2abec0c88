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
import { CustosError } from '../core/errors.js';
import { requiredQuorum, bundlesOf } from '../core/ceremony.js';
import { fitLines, hangingLines } from '../core/layout.js';
import { whatToDo } from '../core/advice.js';
import type { Rejected } from '../core/quorum.js';
import {
  decryptWithPassphrase,
  isPassphraseFile,
  parseIdentityFile,
  type NamedIdentity,
} from '../crypto/age.js';
import { readInputFile } from '../io/files.js';
import {
  BACK,
  choose,
  requireTty,
  secret,
  text,
  yesNo,
  type AskOptions,
  type Back,
} from '../io/terminal.js';
import { loadCeremony, openHost, type Host, type LoadedCeremony } from '../ops/ceremony/host.js';
import { ceremonyStatus } from '../ops/ceremony/status.js';
import { addSubmissions, rejectAtEntry } from '../ops/ceremony/add.js';
import {
  closeCeremony,
  closeCommand,
  closeHint,
  commandWith,
  prepareClose,
  type CloseRequest,
} from '../ops/ceremony/close.js';
import { checkAndSeal, requireOpen, subjectOf } from '../ops/submit.js';
import { PASSPHRASE_ENV } from '../ops/shares.js';
import { isTokenStub } from '../core/token-stub.js';
import { tokenIdentityFromStub } from '../ops/token-identity.js';
import { openHsm } from '../ops/hsm.js';
import { hsmTarget, pinReader, type Context } from '../ops/context.js';
import { describeCeremony, showStatus } from './ceremony-view.js';
import { keptAfterFailure, renderClosing } from './ceremony/close.js';
import { printable } from './render.js';

const NON_INTERACTIVE =
  'without a terminal, use the step commands: custodians run custos share submit, then custos ceremony add CEREMONY SUBMISSION... and custos ceremony close CEREMONY';

const SOMEONE_ELSE = 'Choose someone else';
const STOP = 'Stop here (the ceremony stays open)';

/** How a custodian's turn ended: lines to show under the status table next time. */
type TurnEnd = { kind: 'done'; lines: string[] } | { kind: 'stop' };

interface Run {
  ctx: Context;
  c: LoadedCeremony;
  host: Host;
  width: number;
  /** For prompts without a way back; `back` for those with one. */
  ask: AskOptions;
  back: AskOptions;
  say: (lines: string | string[]) => void;
}

export async function run(ctx: Context, o: CloseRequest & { ceremony: string }): Promise<void> {
  requireTty('custos ceremony run', NON_INTERACTIVE);
  const c = loadCeremony(ctx, o.ceremony);
  const host = await openHost(ctx, c);
  requireOpen(c);
  const needed = requiredQuorum(c.body);
  const width = ctx.out.width;
  const resume = commandWith('run', c, o);
  const interrupted = () => {
    const n = ceremonyStatus(ctx, c).accepted;
    return new CustosError(
      'E_CANCELLED',
      `ceremony interrupted with ${n} of ${needed} shares accepted; they are kept, locked with the ceremony key`,
      `resume with: ${resume}`,
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
          `  ${resume}`,
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
  try {
    await prepareClose(ctx, c, request, host);
  } catch (e) {
    throw keptAfterFailure(ctx, c, e, request);
  }
  const ready = await checkTargets(r, request);
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
 * One custodian's turn: how the identity comes, the identity, the share; each asked again on its
 * own when it was wrong. Ends when a share is accepted, or someone else is chosen, or on stop.
 */
async function turn(r: Run, who: string): Promise<TurnEnd> {
  let step: 'how' | 'file' | 'paste' | 'token' | 'share' = 'how';
  let via: 'file' | 'paste' | 'token' = 'file';
  let identities: NamedIdentity[] = [];
  // After a share refused for the identity, the same share file is tried again with the new one.
  let retry: string | undefined;
  for (;;) {
    if (step === 'how') {
      const how = await choose(
        `${who}: how will you give your age identity?`,
        [
          { name: 'The path of my identity file', value: 'file' },
          {
            name: 'My hardware token (the path of its token identity file)',
            value: 'token',
            short: 'My hardware token',
          },
          {
            name: 'Paste the key (AGE-SECRET-KEY-1…; it is not shown)',
            value: 'paste',
            short: 'Paste the key',
          },
          { name: SOMEONE_ELSE, value: 'else' },
          { name: STOP, value: 'stop' },
        ] as const,
        r.back,
      );
      if (how === BACK || how === 'else') return { kind: 'done', lines: [] };
      if (how === 'stop') return { kind: 'stop' };
      step = via = how;
      retry = undefined;
    } else if (step === 'file' || step === 'token') {
      if (step === 'token') {
        r.say(
          fitLines(
            [
              `${who}: insert your token now. custos asks for its PIN when it opens your share; the key never leaves the token.`,
            ],
            r.width,
          ),
        );
      }
      const got = await identityFromPath(r, who, step === 'token');
      if (got === BACK) step = 'how';
      else {
        identities = got;
        step = 'share';
      }
    } else if (step === 'paste') {
      let parsed: NamedIdentity[] = [];
      const key = await secret(`${who}: paste your identity, then Enter (Esc: back):`, {
        ...r.back,
        check: async (pasted) => {
          try {
            parsed = await parseIdentityFile(`${who}'s pasted identity`, pasted.trim());
            return null;
          } catch {
            return 'that is not an age identity: paste the whole AGE-SECRET-KEY-1… line, or press Esc to go back';
          }
        },
      });
      if (key === BACK) step = 'how';
      else {
        identities = parsed;
        step = 'share';
      }
    } else {
      const sharePath =
        retry ??
        (await text(`${who}: path of your share file (Esc: back)`, {
          ...r.back,
          hide: looksLikeKey,
          validate: (p) => pathProblem(r.ctx, p, 'share file') ?? true,
        }));
      retry = undefined;
      if (sharePath === BACK) {
        step = via;
        continue;
      }
      const verdict = await judge(r, who, sharePath.trim(), identities);
      if (verdict.kind === 'accepted') return { kind: 'done', lines: verdict.lines };
      r.say(verdict.lines);
      const identityFirst = verdict.refusal?.reason === 'unopened';
      const another = [
        { name: 'Give another share file', value: 'share' },
        { name: 'Give another identity', value: 'how' },
      ] as const;
      const next = await choose<'share' | 'how' | 'else' | 'stop'>(
        'What now?',
        [
          ...(identityFirst ? [...another].reverse() : another),
          { name: SOMEONE_ELSE, value: 'else' },
          { name: STOP, value: 'stop' },
        ],
        r.back,
      );
      if (next === 'else') return { kind: 'done', lines: verdict.lines };
      if (next === 'stop') return { kind: 'stop' };
      if (next === BACK || next === 'share') step = 'share';
      else {
        step = via;
        retry = sharePath.trim();
      }
    }
  }
}

const looksLikeKey = (answer: string) => /^\s*AGE-/i.test(answer);

/** What is wrong with a path typed at a prompt, in words, or null when it names a readable file. */
function pathProblem(
  ctx: Context,
  answer: string,
  what: 'share file' | 'identity file',
): string | null {
  const path = answer.trim();
  if (path === '') return `no path given: type the path of your ${what}, or press Esc to go back`;
  if (/AGE-SECRET-KEY-/i.test(path)) {
    return what === 'identity file'
      ? 'that is the key itself, not a path: press Esc, then choose "Paste the key"'
      : 'that is an age secret key, not the path of a share file: type the path of your share file';
  }
  try {
    readInputFile(resolve(ctx.cwd, path), what);
    return null;
  } catch (e) {
    if (!(e instanceof CustosError)) throw e;
    const said = e.message.replace(resolve(ctx.cwd, path), path);
    return `${said}${e.hint && said.length + e.hint.length < 60 ? `: ${e.hint}` : ''} (Esc: back)`;
  }
}

/**
 * The identity file's path, then its passphrase if it has one; each asked again until right, or
 * Esc.
 */
async function identityFromPath(
  r: Run,
  who: string,
  token = false,
): Promise<NamedIdentity[] | Back> {
  for (;;) {
    let file: Buffer = Buffer.alloc(0);
    let parsed: NamedIdentity[] | undefined;
    const what = token ? 'token identity file' : 'identity file';
    const path = await text(`${who}: path of your ${what} (Esc: back)`, {
      ...r.back,
      hide: looksLikeKey,
      validate: async (answer) => {
        const problem = pathProblem(r.ctx, answer, 'identity file');
        if (problem) return problem;
        file = readInputFile(resolve(r.ctx.cwd, answer.trim()), 'identity file');
        parsed = undefined;
        if (isPassphraseFile(file)) return true;
        try {
          parsed = isTokenStub(file)
            ? [tokenIdentityFromStub(r.ctx, answer.trim(), file)]
            : await parseIdentityFile(answer.trim(), file.toString('utf8'));
          return true;
        } catch (e) {
          if (e instanceof CustosError)
            return `${e.message}: ${e.hint ?? 'give your identity file'}, or press Esc to go back`;
          throw e;
        }
      },
    });
    if (path === BACK) return BACK;
    if (parsed) return parsed;
    const source = path.trim();
    let opened: NamedIdentity[] = [];
    const tryPassphrase = async (passphrase: string): Promise<string | null> => {
      const plain = await decryptWithPassphrase(file, passphrase);
      if (plain === null)
        return `that passphrase does not open ${source}: type it again (Esc: back)`;
      try {
        opened = await parseIdentityFile(source, plain);
        return null;
      } catch (e) {
        if (e instanceof CustosError) return `${e.message}: press Esc to go back`;
        throw e;
      }
    };
    const fromEnv = r.ctx.env[PASSPHRASE_ENV];
    if (fromEnv) {
      const problem = await tryPassphrase(fromEnv);
      if (problem === null) return opened;
      r.say(fitLines([`✘ the passphrase in ${PASSPHRASE_ENV} does not open ${source}`], r.width));
    }
    const pass = await secret(`passphrase of identity file ${source} (Esc: back):`, {
      ...r.back,
      check: tryPassphrase,
    });
    if (pass !== BACK) return opened;
  }
}

const TOKEN_TROUBLE = new Set([
  'E_PIN_INCORRECT',
  'E_PIN_LOCKED',
  'E_TOKEN_NOT_FOUND',
  'E_IDENTITY',
  'E_HSM',
  'E_HSM_MODULE',
  'E_MECHANISM',
]);

type Verdict =
  { kind: 'accepted'; lines: string[] } | { kind: 'refused'; lines: string[]; refusal?: Rejected };

/**
 * Checks the share, and keeps it if it counts. A refusal is recorded against whoever the share
 * proves it belongs to, if anyone.
 */
async function judge(
  r: Run,
  who: string,
  sharePath: string,
  identities: NamedIdentity[],
): Promise<Verdict> {
  const { ctx, c, host } = r;
  const refused = (message: string, todo: string, refusal?: Rejected): Verdict => ({
    kind: 'refused',
    refusal,
    lines: [
      ...hangingLines('✘ not accepted: ', message, r.width).map((l, i) =>
        i === 0 ? ctx.out.colour.red(l) : l,
      ),
      ...hangingLines('  what to do: ', todo, r.width),
    ],
  });
  let checked: Awaited<ReturnType<typeof checkAndSeal>>;
  try {
    checked = await checkAndSeal(ctx, c, sharePath, identities);
  } catch (e) {
    // A token that could not open the share (not inserted, wrong PIN, locked) is the token's
    // trouble, not the share's: said, and nothing is recorded against the share.
    if (e instanceof CustosError && identities.some((i) => i.token) && TOKEN_TROUBLE.has(e.code))
      return refused(e.message, e.hint ?? 'check your token and its PIN, then try again');
    throw e;
  }
  if ('rejected' in checked) {
    rejectAtEntry(ctx, c, host, {
      ...checked.rejected,
      source: `${sharePath}, at the terminal`,
      ...(checked.custodian ? { custodian: checked.custodian } : {}),
    });
    return refused(checked.rejected.message, checked.hint, checked.rejected);
  }
  const owner = checked.sealed.custodian;
  if (owner.id !== who) {
    if (ceremonyStatus(ctx, c).custodians.find((x) => x.id === owner.id)?.state === 'accepted') {
      return refused(
        `this is ${owner.id}'s share, and ${owner.id}'s share is already accepted`,
        `nothing more is needed from ${owner.id}; ${who} gives their own share file`,
      );
    }
    if (
      !(await yesNo(`This is ${owner.id}'s share, not ${who}'s. Take it as ${owner.id}'s?`, r.ask))
    ) {
      return refused(
        `this is ${owner.id}'s share, not ${who}'s; nothing was kept`,
        `${who} gives their own share file; ${owner.id} can give theirs at any time`,
      );
    }
  }
  const added = await addSubmissions(ctx, c, host, [
    { source: `${owner.id}, at the terminal`, bytes: Buffer.from(checked.sealed.text, 'utf8') },
  ]);
  const turned = added.rejected[0];
  if (turned) return refused(turned.message, whatToDo(turned, subjectOf(c)), turned);
  return {
    kind: 'accepted',
    lines: [
      ctx.out.colour.green(
        `✔ ${owner.id}'s share is accepted (${added.state.accepted.length} of ${requiredQuorum(c.body)}).`,
      ),
    ],
  };
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

/** Asks for the tokens a close needs that were not given on the command line. */
async function completeRequest(r: Run, o: CloseRequest): Promise<CloseRequest> {
  const req = { ...o };
  const { purpose, subject } = r.c.body;
  const name = async (question: string) =>
    text(question, {
      ...r.ask,
      validate: (answer) =>
        answer.trim() !== '' ||
        'no name given: type the name of a custos.yaml profile or of an embedded token',
    }).then((answer) => (answer === BACK ? '' : answer.trim()));
  if (subject.kind === 'pin-escrow' && purpose === 'restore' && !req.fromHsm)
    req.fromHsm = await name('The escrowed backup token to copy from (profile or embedded token):');
  const needsHsm =
    (purpose === 'restore' && subject.kind !== 'domain') || subject.kind === 'pin-escrow';
  if (needsHsm && !req.hsm) {
    req.hsm = await name(
      subject.kind === 'pin-escrow' && purpose === 'drill'
        ? 'The escrowed token to open (profile or embedded token):'
        : 'Restore into which HSM (profile or embedded token)?',
    );
  }
  return req;
}

class Found extends Error {}

/**
 * Finds the token without logging in: its PIN is asked for only once it is found, and this stops
 * there.
 */
async function findToken(ctx: Context, name: string): Promise<void> {
  const probe: Context = {
    ...ctx,
    pinOverride: {
      hsm: name,
      pin: async () => {
        throw new Found();
      },
    },
  };
  try {
    (await openHsm(probe, name, false)).close();
  } catch (e) {
    if (!(e instanceof Found)) throw e;
  }
}

/**
 * Before the last question: the tokens the close will use are found, and a restore's one target
 * is logged into (its PIN kept for the close, asked again if the token refuses it). The context
 * to close with, or null when the lead stops here.
 */
async function checkTargets(r: Run, req: CloseRequest): Promise<Context | null> {
  const { ctx, c } = r;
  const { purpose, subject } = c.body;
  const kept = (e: unknown) => keptAfterFailure(ctx, c, e, req);
  if (subject.kind === 'domain' || (subject.kind === 'bundle' && purpose === 'drill')) return ctx;
  const stop = { name: 'Stop here (the accepted shares are kept)', value: 'stop' } as const;
  for (;;) {
    const names = [
      ...new Set([req.fromHsm, ...[req.hsm ?? []].flat()].filter((n): n is string => !!n)),
    ];
    try {
      if (subject.kind === 'pin-escrow' || names.length !== 1) {
        // Several tokens, or a PIN the quorum supplies: each is found now, logged into at the
        // close.
        for (const n of names) await findToken(ctx, n);
        return ctx;
      }
      const ready = await logIn(r, names[0] as string);
      if (ready === 'stop') return null;
      return ready;
    } catch (e) {
      if (e instanceof CustosError && e.code === 'E_CANCELLED') throw r.ask.onCancel?.() ?? e;
      // A token name typed wrong is asked again, as a path is; anything else ends the run, the
      // shares kept.
      if (
        !(e instanceof CustosError) ||
        e.code !== 'E_TOKEN_NOT_FOUND' ||
        names.length !== 1 ||
        subject.kind === 'pin-escrow'
      )
        throw kept(e);
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
        [{ name: 'Name another token', value: 'other' }, stop],
        r.ask,
      );
      if (next !== 'other') return null;
      const name = await text('Restore into which HSM (profile or embedded token)?', {
        ...r.ask,
        validate: (answer) =>
          answer.trim() !== '' ||
          'no name given: type the name of a custos.yaml profile or of an embedded token',
      });
      if (name === BACK) return null;
      req.hsm = name.trim();
    }
  }
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

function actionQuestion(c: LoadedCeremony, req: CloseRequest): string {
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
