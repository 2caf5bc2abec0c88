/** `custos demo`. */
import type { Command } from 'commander';
import type { CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  program.command('demo')
    .description('back up and restore sample keys between two embedded tokens, end to end')
    .option('--dir <dir>', 'working directory for the demo (wiped first)', '.custos/demo')
    .action(async (o: { dir: string }) => (await import('../demo.js')).run(await context(), o));
}
