/** `custos handover status`: what it takes, and its help. */
import { option, type CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const status: CommandSpec = {
  usage: 'status <request>',
  summary: 'every rule of the policy: met, or what is still missing',
  options: [
    option('--ceremony <file>', 'the handover ceremony, to count its quorum'),
    json('machine-readable status'),
  ],
  example: ['custos handover status m1.request --ceremony m1.ceremony'],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { ceremony?: string; json?: boolean }, request: string) =>
    (await import('../../handover/status.js')).run(await context(), { request, ...o }),
};
