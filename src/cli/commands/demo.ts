/** `custos demo`: a backup and restore between two embedded tokens, end to end. */
import { defaulted, type CommandSpec } from './define.js';

export const demo: CommandSpec = {
  usage: 'demo',
  summary: 'back up and restore sample keys between two embedded tokens, end to end',
  options: [
    defaulted('--dir <dir>', 'working directory for the demo (wiped first)', '.custos/demo'),
  ],
  example: ['custos demo --dir /tmp/custos-demo'],
  notes: ['Makes its own tokens and PINs; needs no PIN and no passphrase.'],
  run: async (context, o: { dir: string }) => (await import('../demo.js')).run(await context(), o),
};
