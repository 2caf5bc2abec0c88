/** A share given at the ceremony terminal, checked, and kept or refused (and whose refusal). */
import { CustosError } from '../../../core/errors.js';
import { requiredQuorum } from '../../../core/ceremony.js';
import { hangingLines } from '../../../core/layout.js';
import { whatToDo } from '../../../core/advice.js';
import type { Rejected } from '../../../core/quorum.js';
import { type NamedIdentity } from '../../../crypto/age.js';
import { yesNo } from '../../../io/terminal.js';
import { ceremonyStatus } from '../../../ops/ceremony/status.js';
import { addSubmissions, rejectAtEntry } from '../../../ops/ceremony/add.js';
import { checkAndSeal, subjectOf } from '../../../ops/submit.js';
import type { Run } from './shared.js';

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
export async function judge(
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
