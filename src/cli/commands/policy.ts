/** `custos policy check`. */
import type { Command } from 'commander';
import { NO_SECRET_NOTE, explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const check = program.command('policy').description('policy files').command('check <file>');
  explain(check, ['custos policy check policies/dr-3-of-5.yaml'], NO_SECRET_NOTE);
  check
    .description('validate a policy and say what it allows')
    .option('--json', 'the parsed policy')
    .action(async (file: string, o: { json?: boolean }) =>
      (await import('../policy-check.js')).run(await context(), { file, json: o.json }),
    );
}
