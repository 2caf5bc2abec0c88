/** `custos ceremony open`: what it takes, and its help. */
import type { OpenRequest } from '../../../ops/ceremony/open.js';
import { defaulted, option, repeated, required, type CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const open: CommandSpec = {
  usage: 'open',
  summary:
    'open a ceremony for a bundle, a PIN escrow or an escrow domain, and write the ceremony file for the custodians',
  options: [
    repeated(
      '--bundle <file>',
      'the bundle the ceremony concerns (repeat for several bundles of one escrow domain)',
    ),
    option('--pin-escrow <dir>', 'or: the PIN escrow directory it concerns'),
    option('--domain <file>', 'or: an escrow domain itself, for a drill or a rotation'),
    required('--purpose <purpose>', 'restore, drill, handover or rotate'),
    required('--out <file>', 'the ceremony file to create'),
    defaulted('--expires <duration>', 'how long it stays open: 90m, 72h, 7d (at most 30d)', '72h'),
    option('--request <file>', 'for a handover: the request it may release keys for'),
    json('machine-readable summary'),
  ],
  example: [
    'custos ceremony open --bundle primary.bundle --purpose restore \\',
    '    --out dr.ceremony',
  ],
  notes: NO_SECRET_NOTE,
  run: async (context, o: OpenRequest & { json?: boolean }) =>
    (await import('../../ceremony/open.js')).run(await context(), o),
};
