/** `custos hsm`: tokens in the embedded SoftHSM2 store. */
import type { Command } from 'commander';
import type { CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const hsm = program.command('hsm').description('manage tokens in the embedded SoftHSM2 store (.custos/)');
  hsm.command('init <label>')
    .description('create a token in the embedded store (SO PIN from CUSTOS_SO_PIN, user PIN from CUSTOS_PIN, else asked)')
    .action(async (label: string) => (await import('../hsm-init.js')).run(await context(), label));
}
