/** `custos ceremony status`: what it takes, and its help. */
import type { CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const status: CommandSpec = {
  usage: 'status <ceremony>',
  summary: 'who has given a share, who was turned away and why, and the quorum',
  options: [json('machine-readable status')],
  example: ['custos ceremony status dr.ceremony'],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { json?: boolean }, ceremony: string) =>
    (await import('../../ceremony/status.js')).run(await context(), { ceremony, json: o.json }),
};
