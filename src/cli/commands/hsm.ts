/** `custos hsm`: tokens in the embedded SoftHSM2 store. */
import type { Command } from 'commander';
import { explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const hsm = program
    .command('hsm')
    .description('manage tokens in the embedded SoftHSM2 store (.custos/)');
  explain(
    hsm
      .command('init <label>')
      .description(
        'create a token in the embedded store (SO PIN from CUSTOS_SO_PIN, user PIN from CUSTOS_PIN, else asked)',
      ),
    ['custos hsm init primary'],
    [
      'PINs: the security officer PIN from CUSTOS_SO_PIN and the user PIN from',
      'CUSTOS_PIN; else each is asked twice, without echo: 4 to 255 characters.',
    ],
  ).action(async (label: string) => (await import('../hsm-init.js')).run(await context(), label));
}
