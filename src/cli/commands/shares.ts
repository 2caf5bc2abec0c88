/** `custos shares`: a custodian checks or submits their share. */
import type { Command } from 'commander';
import type { CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const shares = program.command('shares').alias('share').description('custodian share files');
  shares.command('verify')
    .description('check, alone, that a share opens, belongs to the bundle (or domain) and is signed')
    .option('--bundle <file>', 'the bundle the share is for')
    .option('--domain <file>', 'or: the escrow domain the share is for')
    .requiredOption('--share <file>', 'the share file')
    .requiredOption('--identity <file>', 'your age identity file')
    .action(async (o: { bundle?: string; domain?: string; share: string; identity: string }) => (await import('../shares-verify.js')).run(await context(), o));

  shares.command('submit')
    .description('on your own machine: check your share against a ceremony and seal it to the ceremony\'s key')
    .requiredOption('--ceremony <file>', 'the ceremony file the ceremony lead sent you')
    .requiredOption('--share <file>', 'your share file')
    .requiredOption('--identity <file>', 'your age identity file (if it is passphrase-protected, the passphrase is asked, or taken from CUSTOS_PASSPHRASE)')
    .requiredOption('--out <file>', 'the submission file to write and send back')
    .option('--yes', 'do not ask for confirmation')
    .action(async (o: { ceremony: string; share: string; identity: string; out: string; yes?: boolean }) => (await import('../share-submit.js')).run(await context(), o));
}
