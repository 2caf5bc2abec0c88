/** `custos audit verify`: what it takes, and its help. */
import type { CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const verify: CommandSpec = {
  usage: 'verify <log>',
  summary: 'check that no entry was edited, deleted, inserted or reordered, and every signature',
  options: [json('machine-readable result')],
  example: ['custos audit verify .custos/audit.jsonl'],
  notes: NO_SECRET_NOTE,
  run: async (context, o: { json?: boolean }, log: string) =>
    (await import('../../audit/verify.js')).run(await context(), { log, json: o.json }),
};
