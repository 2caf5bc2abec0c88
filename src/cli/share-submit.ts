/**
 * custos share submit: run by a custodian on their own machine. Shows what they are about to
 * authorise, checks their share, and, once they have typed the start of the ceremony file's
 * SHA-256 as the lead read it to them, writes it locked so that only that ceremony can open it.
 */
import { CustosError } from '../core/errors.js';
import { fitLines } from '../core/layout.js';
import type { LoadedCeremony } from '../ops/ceremony/host.js';
import { ceremonyToSubmitTo, submitShare } from '../ops/submit.js';
import type { Context } from '../ops/context.js';
import type { EscrowCustodian } from '../core/bundle.js';
import { describeCeremony } from './ceremony-view.js';

/** How many characters of the SHA-256 a custodian types to confirm. */
export const CONFIRM_CHARACTERS = 8;

export async function run(
  ctx: Context,
  o: { ceremony: string; share: string; identity: string; out: string; yes?: boolean },
): Promise<void> {
  const c = ceremonyToSubmitTo(ctx, o.ceremony, o.out);
  const width = ctx.out.width;
  // What is being authorised goes to stderr: stdout stays the result.
  ctx.out.say(['you are asked to give your share for:', ...describeCeremony(c, width)]);
  const { custodian } = await submitShare(
    ctx,
    c,
    { share: o.share, identity: o.identity, out: o.out },
    (whose) => (o.yes ? Promise.resolve() : confirm(ctx, c, whose, width)),
  );
  ctx.out.data(
    fitLines(
      [
        `submission ${o.out} written for ${custodian.id}`,
        'next: send this file, and only this file, to the ceremony lead.',
        `      Only ceremony ${c.body.nonce} can open it.`,
        '      Keep your share file and identity file; never send them to anyone.',
      ],
      width,
      6,
    ),
  );
}

/**
 * The custodian types the first characters of the SHA-256 the lead read to them; Enter alone stops.
 */
async function confirm(
  ctx: Context,
  c: LoadedCeremony,
  custodian: EscrowCustodian,
  width: number,
): Promise<void> {
  const { text } = await import('../io/terminal.js');
  const expected = c.digest.slice(0, CONFIRM_CHARACTERS);
  ctx.out.say(
    fitLines(
      [
        `your share (${custodian.id}, ${custodian.name}) opens and belongs to this ${c.body.purpose}.`,
        `To give it, type the first ${CONFIRM_CHARACTERS} characters of the SHA-256 the lead read to you.`,
        "If the lead's differ from the line above, press Enter alone and call the lead.",
      ],
      width,
    ),
  );
  const typed = await text(`first ${CONFIRM_CHARACTERS} characters of the lead's SHA-256:`, {
    alternative: 'add --yes to submit without being asked',
    validate: (answer) => {
      const given = answer.replace(/\s+/g, '').toLowerCase();
      if (given === '' || given === expected) return true;
      if (given.length !== CONFIRM_CHARACTERS)
        return `type exactly ${CONFIRM_CHARACTERS} characters (you typed ${given.length}), or press Enter alone to stop`;
      return "not this file's SHA-256: retype it, or press Enter alone and call the lead";
    },
  });
  if (typeof typed !== 'string' || typed.trim() === '') {
    throw new CustosError(
      'E_CANCELLED',
      'not submitted; nothing was written',
      'run the command again when you are ready',
    );
  }
}
