/**
 * Terminal prompts on stderr (secrets without echo), through @inquirer/prompts, imported only when
 * a prompt is really needed.
 *
 * Each prompt is erased when answered and replaced by one line of record, `✔ question answer`
 * (a secret's answer never shown; a secret checked only later, such as a PIN, leaves no line), so
 * that a refused answer never leaves a green tick behind it.
 * Ctrl-C becomes E_CANCELLED (or the caller's own error). Where a prompt offers a way back, Esc
 * answers `BACK`. An answer can be checked before it is taken (`validate`): a wrong one is said
 * under the prompt, which stays, so only that field is asked again.
 */
import { CustosError } from '../core/errors.js';
import { printable } from '../core/text.js';
import { layoutWidth, wrapText } from '../core/layout.js';

export function requireTty(what: string, alternative: string): void {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CustosError(
      'E_NO_TTY',
      `${what} needs a terminal to ask, and there is none`,
      alternative,
    );
  }
}

/** What a prompt answers when the person pressed Esc to go back. */
export const BACK: unique symbol = Symbol('back');
export type Back = typeof BACK;

export interface AskOptions {
  /** How to do without a terminal, for the E_NO_TTY hint. */
  alternative: string;
  /** The error Ctrl-C becomes (default: E_CANCELLED, nothing was changed). */
  onCancel?: () => CustosError;
  /** Esc answers BACK. */
  back?: boolean;
}

/**
 * Checks an answer: true to take it, or what is wrong with it (said under the prompt, which stays).
 */
export type Validate = (answer: string) => true | string | Promise<true | string>;

const coloured = () =>
  !!process.stderr.isTTY && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
const paint = (code: string, text: string) =>
  coloured() ? `\u001b[${code}m${text}\u001b[0m` : text;

/** The line left on the screen once a prompt is answered (or refused). */
export function record(mark: '✔' | '✘', text: string): void {
  const [first = '', ...rest] = wrapText(printable(text), terminalWidth() - 2);
  process.stderr.write(
    `${paint(mark === '✔' ? '32' : '31', mark)} ${first}\n${rest.map((l) => `  ${l}\n`).join('')}`,
  );
}

const THEME = {
  style: {
    // A refused answer is said under the prompt as the ceremony says refusals: with a cross.
    error: (text: string) => paint('31', `✘ ${text}`),
  },
};

type Run<T> = (context: {
  output: NodeJS.WritableStream;
  clearPromptOnDone: boolean;
  signal?: AbortSignal;
}) => Promise<T>;

async function ask<T>(message: string, o: AskOptions, run: Run<T>): Promise<T | Back> {
  requireTty(message, o.alternative);
  const controller = new AbortController();
  // readline turns a lone Esc into a keypress named "escape" (after a short wait for more of a
  // sequence).
  const onKey = (_: unknown, key?: { name?: string }) => {
    if (key?.name === 'escape') controller.abort();
  };
  if (o.back) process.stdin.on('keypress', onKey);
  try {
    return await run({
      output: process.stderr,
      clearPromptOnDone: true,
      ...(o.back ? { signal: controller.signal } : {}),
    });
  } catch (e) {
    if (e instanceof Error && e.name === 'AbortPromptError') return BACK;
    if (e instanceof Error && e.name === 'ExitPromptError') {
      throw (
        o.onCancel?.() ??
        new CustosError(
          'E_CANCELLED',
          'cancelled at the prompt; nothing was changed',
          'run the command again when ready',
        )
      );
    }
    throw e;
  } finally {
    process.stdin.off('keypress', onKey);
  }
}

function noBack<T>(answer: T | Back): T {
  if (answer === BACK)
    throw new CustosError('E_INTERNAL', 'a prompt without a way back answered "back"');
  return answer;
}

/** A choice from a list; the record line shows the choice's name. */
export async function choose<T>(
  message: string,
  choices: readonly { name: string; value: T; short?: string }[],
  o: AskOptions & { default?: T },
): Promise<T | Back> {
  const { select } = await import('@inquirer/prompts');
  const answer = await ask(message, o, (context) =>
    select(
      {
        message,
        choices: [...choices],
        loop: false,
        pageSize: Math.max(7, choices.length),
        ...(o.default !== undefined ? { default: o.default } : {}),
        theme: THEME,
      },
      context,
    ),
  );
  const chosen = choices.find((c) => c.value === answer);
  if (answer !== BACK) record('✔', `${message} ${chosen?.short ?? chosen?.name ?? ''}`);
  return answer;
}

/**
 * A line of text. `hide` says which answers must not be shown as typed (a key pasted where a path
 * belongs); `validate` checks the answer before it is taken.
 */
export async function text(
  message: string,
  o: AskOptions & { default?: string; hide?: (text: string) => boolean; validate?: Validate },
): Promise<string | Back> {
  const { input } = await import('@inquirer/prompts');
  const { hide } = o;
  const answer = await ask(message, o, (context) =>
    input(
      {
        message,
        ...(o.default ? { default: o.default } : {}),
        ...(hide ? { transformer: (t: string) => (hide(t) ? '[hidden]' : t) } : {}),
        ...(o.validate ? { validate: o.validate } : {}),
        theme: THEME,
      },
      context,
    ),
  );
  if (answer !== BACK) record('✔', `${message} ${hide?.(answer) ? '[hidden]' : answer}`);
  return answer;
}

/**
 * A secret, not echoed. With `check`, the secret is tried before it is taken: a refused one is
 * said (`✘ …`) and asked again from an empty line, and the prompt never shows a tick for it.
 */
export async function secret(
  message: string,
  o: AskOptions & { check?: (answer: string) => Promise<string | null> },
): Promise<string | Back> {
  const { password } = await import('@inquirer/prompts');
  for (;;) {
    const answer = await ask(message, o, (context) =>
      password({ message, mask: undefined, theme: THEME }, context),
    );
    if (answer === BACK) return BACK;
    if (!o.check) return answer; // what checks it comes later: no tick for what may yet be refused
    const problem = await o.check(answer);
    if (problem === null) {
      record('✔', message);
      return answer;
    }
    record('✘', problem);
  }
}

/** Yes or no; the default is No. */
export async function yesNo(message: string, o: AskOptions): Promise<boolean | Back> {
  const { confirm } = await import('@inquirer/prompts');
  const answer = await ask(message, o, (context) =>
    confirm({ message, default: false, theme: THEME }, context),
  );
  if (answer !== BACK) record('✔', `${message} ${answer ? 'Yes' : 'No'}`);
  return answer;
}

// The forms every other command uses: no way back.

export async function askSecret(
  message: string,
  alternative: string,
  onCancel?: () => CustosError,
  validate?: Validate,
): Promise<string> {
  const check = validate
    ? async (answer: string) => {
        const r = await validate(answer);
        return r === true ? null : r;
      }
    : undefined;
  return noBack(
    await secret(message, {
      alternative,
      ...(onCancel ? { onCancel } : {}),
      ...(check ? { check } : {}),
    }),
  );
}

export async function askConfirm(
  message: string,
  alternative: string,
  onCancel?: () => CustosError,
): Promise<boolean> {
  return noBack(await yesNo(message, { alternative, ...(onCancel ? { onCancel } : {}) }));
}

export async function askInput(
  message: string,
  alternative: string,
  defaultValue?: string,
  onCancel?: () => CustosError,
  hide?: (text: string) => boolean,
): Promise<string> {
  return noBack(
    await text(message, {
      alternative,
      ...(defaultValue ? { default: defaultValue } : {}),
      ...(onCancel ? { onCancel } : {}),
      ...(hide ? { hide } : {}),
    }),
  );
}

export async function askChoice<T>(
  message: string,
  choices: { name: string; value: T }[],
  alternative: string,
  onCancel?: () => CustosError,
): Promise<T> {
  return noBack(await choose(message, choices, { alternative, ...(onCancel ? { onCancel } : {}) }));
}

/** The width screens are laid out for: the terminal's, else COLUMNS, else 80. */
export function terminalWidth(env: NodeJS.ProcessEnv = process.env): number {
  const columns = process.stdout.isTTY
    ? process.stdout.columns
    : process.stderr.isTTY
      ? process.stderr.columns
      : undefined;
  return layoutWidth(columns, env);
}
