/** `custos inventory`: the keys on a token. */
import { option, required, type CommandSpec } from './define.js';
import { json, PIN_NOTE } from './shared.js';

export const inventory: CommandSpec = {
  usage: 'inventory',
  summary: 'list the key objects on a token with their check values',
  options: [
    required('--hsm <name>', 'profile in custos.yaml, or a token label in the embedded store'),
    json('machine-readable output'),
    option('--full', 'list every key object, also on a terminal (where a long list is summarised)'),
  ],
  example: ['custos inventory --hsm primary'],
  notes: PIN_NOTE,
  run: async (context, o: { hsm: string; json?: boolean; full?: boolean }) =>
    (await import('../inventory.js')).run(await context(), o),
};
