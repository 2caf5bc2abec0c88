/** `custos domain enroll`: what it takes, and its help. */
import type { EnrollOptions } from '../../domain-enroll.js';
import { option, repeated, required, type CommandSpec } from '../define.js';
import { IDENTITIES, json, PASSPHRASE_NOTE, PIN_NOTE } from '../shared.js';

export const enroll: CommandSpec = {
  usage: 'enroll',
  summary: 'let one more source HSM make bundles for the domain',
  options: [
    required('--domain <file>', 'the domain file'),
    required('--hsm <name>', 'the token to enrol'),
    option('--endorser <name>', 'an HSM already enrolled, which vouches for the new one'),
    repeated('--share <file>', 'or: a custodian share of the domain (repeat, with --identity)'),
    IDENTITIES,
    json('machine-readable summary'),
  ],
  example: ['custos domain enroll --domain bank.domain --hsm backup-site --endorser primary'],
  notes: [...PIN_NOTE, ...PASSPHRASE_NOTE],
  run: async (context, o: EnrollOptions) =>
    (await import('../../domain-enroll.js')).run(await context(), o),
};
