/** `custos ceremony add`: what it takes, and its help. */
import type { CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const add: CommandSpec = {
  usage: 'add <ceremony> <submission...>',
  summary: 'check submissions as they arrive and keep the accepted ones',
  options: [json('machine-readable result')],
  example: ['custos ceremony add dr.ceremony hale-llp.submission okafor-law.submission'],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { json?: boolean }, ceremony: string, submissions: string[]) =>
    (await import('../../ceremony/add.js')).run(await context(), {
      ceremony,
      submissions,
      json: o.json,
    }),
};
