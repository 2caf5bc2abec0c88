/** A custodian's age identity at the ceremony terminal: a file's path, and its passphrase. */
import { resolve } from 'node:path';
import { CustosError } from '../../../core/errors.js';
import { fitLines } from '../../../core/layout.js';
import {
  decryptWithPassphrase,
  isPassphraseFile,
  parseIdentityFile,
  type NamedIdentity,
} from '../../../crypto/age.js';
import { readInputFile } from '../../../io/files.js';
import { BACK, secret, text, type Back } from '../../../io/terminal.js';
import { PASSPHRASE_ENV } from '../../../ops/shares.js';
import { isTokenStub } from '../../../core/token-stub.js';
import { tokenIdentityFromStub } from '../../../ops/token-identity.js';
import type { Context } from '../../../ops/context.js';
import type { Run } from './shared.js';

export const looksLikeKey = (answer: string) => /^\s*AGE-/i.test(answer);

/** What is wrong with a path typed at a prompt, in words, or null when it names a readable file. */
export function pathProblem(
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
export async function identityFromPath(
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
