/** `custos demo`. */
import type { Command } from 'commander';
import { explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const demo = program
    .command('demo')
    .description('back up and restore sample keys between two embedded tokens, end to end')
    .option('--dir <dir>', 'working directory for the demo (wiped first)', '.custos/demo');
  explain(
    demo,
    ['custos demo --dir /tmp/custos-demo'],
    ['Makes its own tokens and PINs; needs no PIN and no passphrase.'],
  );
  demo.action(async (o: { dir: string }) => (await import('../demo.js')).run(await context(), o));
}
