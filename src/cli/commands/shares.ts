/** `custos shares` (also `custos share`): a custodian checks or submits their share. */
import type { Command } from 'commander';
import { explain, PASSPHRASE_NOTE, type CommandContext } from './shared.js';

/** How a custodian whose key is on a token gives it. */
const TOKEN_NOTE = [
  'A key on a token: give its token identity file as --identity; the PIN is',
  'asked at the terminal when your share is reached (docs/custodian-tokens.md).',
];

export function register(program: Command, context: CommandContext): void {
  // Registered under both names rather than as an alias, so that each help says the command as it
  // was typed.
  subcommands(
    program.command('shares').description('custodian share files (also: custos share …)'),
    'shares',
    context,
  );
  subcommands(
    program
      .command('share', { hidden: true })
      .description('custodian share files (also: custos shares …)'),
    'share',
    context,
  );
}

function subcommands(shares: Command, name: string, context: CommandContext): void {
  explain(
    shares
      .command('verify')
      .description(
        'check, alone, that a share opens, belongs to the bundle (or domain) and is signed',
      )
      .option('--bundle <file>', 'the bundle the share is for')
      .option('--domain <file>', 'or: the escrow domain the share is for')
      .requiredOption('--share <file>', 'the share file')
      .requiredOption(
        '--identity <file>',
        'your age identity file, or your token identity file (custos custodian enroll)',
      ),
    [
      `custos ${name} verify --bundle primary.bundle --share hale-llp.share \\`,
      '    --identity hale-llp.key',
    ],
    [...PASSPHRASE_NOTE, ...TOKEN_NOTE],
  ).action(async (o: { bundle?: string; domain?: string; share: string; identity: string }) =>
    (await import('../shares-verify.js')).run(await context(), o),
  );

  explain(
    shares
      .command('submit')
      .description(
        'on your own machine: check your share against a ceremony and lock it so that only that ceremony can open it',
      )
      .requiredOption('--ceremony <file>', 'the ceremony file the ceremony lead sent you')
      .requiredOption('--share <file>', 'your share file')
      .requiredOption(
        '--identity <file>',
        'your age identity file, or your token identity file (custos custodian enroll)',
      )
      .requiredOption('--out <file>', 'the submission file to write and send back')
      .option('--yes', 'do not ask for the first characters of the SHA-256 (for scripts)'),
    [
      `custos ${name} submit --ceremony dr.ceremony --share hale-llp.share \\`,
      '    --identity hale-llp.key --out hale-llp.submission',
    ],
    [
      'Before writing, it asks you to type the first 8 characters of the SHA-256 the',
      'ceremony lead read to you.',
      ...PASSPHRASE_NOTE,
      ...TOKEN_NOTE,
    ],
  ).action(
    async (o: { ceremony: string; share: string; identity: string; out: string; yes?: boolean }) =>
      (await import('../share-submit.js')).run(await context(), o),
  );
}
