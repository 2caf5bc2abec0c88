/**
 * custos share submit: run by a custodian on their own machine. Shows what they are about to
 * authorise, checks their share, and writes it sealed to the ceremony's key.
 */
import { CustosError } from '../core/errors.js';
import { loadCeremony } from '../ops/ceremony.js';
import { checkOutput, requireOpen, sealShare, writeSubmission } from '../ops/submit.js';
import { loadIdentities } from '../ops/shares.js';
import { audited } from '../ops/audit.js';
import type { Context } from '../ops/context.js';
import { describeCeremony } from './ceremony-view.js';

export async function run(ctx: Context, o: { ceremony: string; share: string; identity: string; out: string; yes?: boolean }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  requireOpen(c);
  checkOutput(ctx, o.out);
  // What is being authorised goes to stderr: stdout stays the result.
  for (const line of ['you are asked to give your share for:', ...describeCeremony(c).map((l) => `  ${l}`)]) ctx.out.note(line);
  await audited(ctx, 'share-submit', async (note) => {
    note.ceremony = c.body.nonce;
    note.bundle = c.body.subject.bundleId;
    note.artifacts = { ceremony: c.digest };
    const sealed = await sealShare(ctx, c, o.share, await loadIdentities(ctx, [o.identity]));
    note.detail = { custodian: sealed.custodian.id, purpose: c.body.purpose };
    if (!o.yes) await confirm(`submit the share of ${sealed.custodian.id} (${sealed.custodian.name}) for this ${c.body.purpose}?`);
    const written = await writeSubmission(ctx, c, sealed, o.out);
    note.artifacts.submission = written.digest;
    ctx.out.data([
      `submission ${o.out} written for ${sealed.custodian.id}: your share checked out against ceremony ${c.body.nonce}, and is sealed to the ceremony's key`,
      'send this file to the ceremony lead; it is of no use in any other ceremony',
    ].join('\n'));
  });
}

async function confirm(question: string): Promise<void> {
  const { askConfirm } = await import('../io/terminal.js');
  if (!(await askConfirm(question, 'add --yes to submit without being asked'))) {
    throw new CustosError('E_CANCELLED', 'not submitted; nothing was written', 'run the command again when you are ready');
  }
}
