/** `custos domain rotate`: what it takes, and its help. */
import type { RotateOptions } from '../../domain-rotate.js';
import { option, repeated, required, type CommandSpec } from '../define.js';
import { IDENTITIES, json, PASSPHRASE_NOTE } from '../shared.js';

export const rotate: CommandSpec = {
  usage: 'rotate',
  summary:
    'with a quorum of the current custodians: a new secret under a new policy; re-seal bundles to it',
  options: [
    required('--domain <file>', 'the current domain file (it is marked as replaced)'),
    required('--policy <file>', 'the new threshold and custodians'),
    required('--out <file>', 'the new domain file'),
    option('--shares-dir <dir>', 'where the new share files go (default: NEW.shares/)'),
    repeated(
      '--rebundle <file>',
      'a bundle of the domain to re-seal to the new generation (repeat)',
    ),
    option('--rebundle-dir <dir>', 'where the re-sealed bundles go, under their own names'),
    repeated('--share <file>', "a current custodian's share (repeat)"),
    IDENTITIES,
    option(
      '--ceremony <file>',
      'or: a ceremony opened with --purpose rotate, whose accepted shares are the quorum',
    ),
    repeated(
      '--retire-hsm <name>',
      'an enrolled token (label or serial) the new generation no longer takes bundles from (repeat)',
    ),
    option('--post-quantum', "seal the new generation with age's post-quantum hybrid recipient"),
    json('machine-readable summary'),
  ],
  example: [
    'custos domain rotate --domain bank.domain --policy new.yaml \\',
    '    --out bank-2.domain --share a.share --identity a.key \\',
    '    --share b.share --identity b.key …',
  ],
  notes: PASSPHRASE_NOTE,
  run: async (context, o: RotateOptions) =>
    (await import('../../domain-rotate.js')).run(await context(), o),
};
