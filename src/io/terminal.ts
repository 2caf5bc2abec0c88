/** Terminal prompts without echo. inquirer is imported only when a prompt is really needed. */
import { CustosError } from '../core/errors.js';

export function requireTty(what: string, alternative: string): void {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CustosError('E_NO_TTY', `${what} needs a terminal to ask, and there is none`, alternative);
  }
}

export async function askSecret(message: string, alternative: string): Promise<string> {
  requireTty(message, alternative);
  const { default: inquirer } = await import('inquirer');
  const prompt = inquirer.createPromptModule({ output: process.stderr });
  try {
    const answer = await prompt<{ secret: string }>([{ type: 'password', name: 'secret', message, mask: undefined }]);
    return answer.secret;
  } catch (e) {
    if (e instanceof Error && e.name === 'ExitPromptError') {
      throw new CustosError('E_CANCELLED', 'cancelled at the prompt; nothing was changed', 'run the command again when ready');
    }
    throw e;
  }
}
