/** `custos audit show`: what it takes, and its help. */
import { option, type CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const show: CommandSpec = {
  usage: 'show <log>',
  summary: 'the log as a table',
  options: [
    option('--ceremony <nonce>', 'only the entries of this ceremony'),
    json('the entries as JSON'),
  ],
  example: [
    'custos audit show .custos/audit.jsonl \\',
    '    --ceremony b81411729c0f5e03d2856ddf1d491dde',
  ],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { ceremony?: string; json?: boolean }, log: string) =>
    (await import('../../audit/show.js')).run(await context(), { log, ...o }),
};
