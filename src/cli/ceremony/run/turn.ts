/**
 * One custodian's turn at the ceremony terminal: how the identity comes, the identity, the share,
 * each asked again on its own when it was wrong.
 */
import { fitLines } from '../../../core/layout.js';
import { parseIdentityFile, type NamedIdentity } from '../../../crypto/age.js';
import { BACK, choose, secret, text } from '../../../io/terminal.js';
import { SOMEONE_ELSE, STOP, type Run } from './shared.js';
import { identityFromPath, looksLikeKey, pathProblem } from './identity.js';
import { judge } from './judge.js';

/** How a custodian's turn ended: lines to show under the status table next time. */
export type TurnEnd = { kind: 'done'; lines: string[] } | { kind: 'stop' };

/**
 * One custodian's turn: how the identity comes, the identity, the share; each asked again on its
 * own when it was wrong. Ends when a share is accepted, or someone else is chosen, or on stop.
 */
export async function turn(r: Run, who: string): Promise<TurnEnd> {
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
