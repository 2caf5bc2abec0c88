/** `custos inventory`: the keys on a token. */
import type { Command } from 'commander';
import type { CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  program.command('inventory')
    .description('list the key objects on a token with their check values')
    .requiredOption('--hsm <name>', 'profile in custos.yaml, or a token label in the embedded store')
    .option('--json', 'machine-readable output')
    .action(async (o: { hsm: string; json?: boolean }) => (await import('../inventory.js')).run(await context(), o));
}
