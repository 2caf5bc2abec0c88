/** `custos ceremony cancel`: what it takes, and its help. */
import { option, type CommandSpec } from '../define.js';
import { NO_SECRET_NOTE } from '../shared.js';

export const cancel: CommandSpec = {
  usage: 'cancel <ceremony>',
  summary: 'abandon an open ceremony: destroy its key and the shares it holds, and record it',
  options: [option('--yes', 'do not ask before destroying accepted shares (for scripts)')],
  example: ['custos ceremony cancel dr.ceremony'],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { yes?: boolean }, ceremony: string) =>
    (await import('../../ceremony/cancel.js')).run(await context(), { ceremony, yes: o.yes }),
};
