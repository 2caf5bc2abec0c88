/** Terminal prompts (secrets without echo). inquirer is imported only when a prompt is really needed. */
import { CustosError } from '../core/errors.js';

export function requireTty(what: string, alternative: string): void {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CustosError('E_NO_TTY', `${what} needs a terminal to ask, and there is none`, alternative);
  }
}

type Question = Record<string, unknown> & { type: string; message: string };

/** Asks one question on stderr; Ctrl-C becomes E_CANCELLED (or `onCancel`'s error). */
async function ask<T>(question: Question, alternative: string, onCancel?: () => CustosError): Promise<T> {
  requireTty(question.message, alternative);
  const { default: inquirer } = await import('inquirer');
  const prompt = inquirer.createPromptModule({ output: process.stderr });
  try {
    const answer = await prompt<{ value: T }>([{ ...question, name: 'value' } as never]);
    return answer.value;
  } catch (e) {
    if (e instanceof Error && e.name === 'ExitPromptError') {
      throw onCancel?.() ?? new CustosError('E_CANCELLED', 'cancelled at the prompt; nothing was changed', 'run the command again when ready');
    }
    throw e;
  }
}

export async function askSecret(message: string, alternative: string, onCancel?: () => CustosError): Promise<string> {
  return ask<string>({ type: 'password', message, mask: undefined }, alternative, onCancel);
}

export async function askConfirm(message: string, alternative: string, onCancel?: () => CustosError): Promise<boolean> {
  return ask<boolean>({ type: 'confirm', message, default: false }, alternative, onCancel);
}

/** A line of text; `hide` says which answers must not be shown as typed (a key pasted where a path belongs). */
export async function askInput(message: string, alternative: string, defaultValue?: string, onCancel?: () => CustosError, hide?: (text: string) => boolean): Promise<string> {
  const transformer = hide ? (text: string) => (hide(text) ? '[hidden]' : text) : undefined;
  return ask<string>({ type: 'input', message, ...(defaultValue ? { default: defaultValue } : {}), ...(transformer ? { transformer } : {}) }, alternative, onCancel);
}

export async function askChoice<T>(message: string, choices: { name: string; value: T }[], alternative: string, onCancel?: () => CustosError): Promise<T> {
  return ask<T>({ type: 'select', message, choices, loop: false }, alternative, onCancel);
}
