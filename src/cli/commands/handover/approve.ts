/** `custos handover approve`: what it takes, and its help. */
import { option, required, type CommandSpec } from '../define.js';

export const approve: CommandSpec = {
  usage: 'approve <request>',
  summary: "sign an approval of the request as one of the policy's approvers",
  options: [
    required('--as <role>', 'the role you approve as (e.g. general-counsel, custodian)'),
    required('--key <pem>', 'your Ed25519 approval key'),
    option(
      '--document <file>',
      'the legal document you reviewed: refuse unless it is the one the request names',
    ),
  ],
  example: [
    'custos handover approve m1.request --as custodian --key hale-llp.pem \\',
    '    --document subpoena.pdf',
  ],
  notes: ['Needs no PIN and no passphrase: the approval key is a PEM file you keep.'],
  run: async (context, o: { as: string; key: string; document?: string }, request: string) =>
    (await import('../../handover/approve.js')).run(await context(), { request, ...o }),
};
