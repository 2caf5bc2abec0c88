/** `custos domain show`: what it takes, and its help. */
import type { CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const show: CommandSpec = {
  usage: 'show <file>',
  summary:
    'what a domain file says: generation, custodians, enrolled HSMs, and whether it was replaced',
  options: [json('machine-readable')],
  example: ['custos domain show bank.domain'],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { json?: boolean }, domain: string) =>
    (await import('../../domain-show.js')).run(await context(), { domain, json: o.json }),
};
