/** `custos inventory`: the keys on a token. */
import type { Command } from 'commander';
import { PIN_NOTE, explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const inventory = program
    .command('inventory')
    .description('list the key objects on a token with their check values')
    .requiredOption(
      '--hsm <name>',
      'profile in custos.yaml, or a token label in the embedded store',
    )
    .option('--json', 'machine-readable output')
    .option(
      '--full',
      'list every key object, also on a terminal (where a long list is summarised)',
    );
  explain(inventory, ['custos inventory --hsm primary'], PIN_NOTE);
  inventory.action(async (o: { hsm: string; json?: boolean; full?: boolean }) =>
    (await import('../inventory.js')).run(await context(), o),
  );
}
