/** `custos policy check`. */
import type { Command } from 'commander';
import type { CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  program.command('policy').description('policy files').command('check <file>')
    .description('validate a policy and say what it allows')
    .option('--json', 'the parsed policy')
    .action(async (file: string, o: { json?: boolean }) => (await import('../policy-check.js')).run(await context(), { file, json: o.json }));
}
