/** `custos ceremony run`: what it takes, and its help. */
import type { CommandSpec } from '../define.js';
import { PASSPHRASE_NOTE, PIN_NOTE } from '../shared.js';
import { ACTING_OPTIONS, type ActingOptions } from './close.js';

export const run: CommandSpec = {
  usage: 'run <ceremony>',
  summary:
    'the interactive ceremony at this terminal: custodians step up in turn, then the quorum acts',
  options: ACTING_OPTIONS,
  example: ['custos ceremony run dr.ceremony --hsm dr-site'],
  notes: [
    'Each custodian gives the path of their identity file, or pastes the key, then',
    'the path of their share file. Esc goes back a step.',
    ...PASSPHRASE_NOTE,
    ...PIN_NOTE,
  ],
  run: async (context, o: ActingOptions, ceremony: string) =>
    (await import('../../ceremony/run.js')).run(await context(), { ceremony, ...o }),
};
