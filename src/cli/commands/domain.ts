/** `custos domain`: long-lived escrow domains (init, enroll, rotate, show). */
import type { Command } from 'commander';
import type { InitOptions } from '../domain-init.js';
import type { EnrollOptions } from '../domain-enroll.js';
import {
  type CommandContext,
  NO_SECRET_NOTE,
  PASSPHRASE_NOTE,
  PIN_NOTE,
  collect,
  explain,
} from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const domain = program
    .command('domain')
    .description('a long-lived escrow domain: custodians set up once, backups made without them');
  domain
    .command('init')
    .description(
      "make a domain: split its secret among the policy's custodians and enrol source HSMs",
    )
    .requiredOption('--policy <file>', 'threshold and custodians')
    .requiredOption('--out <file>', 'the domain file to create (public: it holds no secret)')
    .option('--shares-dir <dir>', 'where share files go (default: DOMAIN.shares/)')
    .option('--hsm <name>', 'a source HSM to enrol now (repeat)', collect)
    .option(
      '--post-quantum',
      "seal bundles with age's post-quantum hybrid recipient (ML-KEM-768 + X25519)",
    )
    .option('--json', 'machine-readable summary')
    .action(async (o: InitOptions) => (await import('../domain-init.js')).run(await context(), o));
  explain(
    domain.commands.at(-1) as Command,
    [
      'custos domain init --policy policies/dr-3-of-5.yaml --out bank.domain \\',
      '    --hsm primary',
    ],
    PIN_NOTE,
  );
  domain
    .command('enroll')
    .description('let one more source HSM make bundles for the domain')
    .requiredOption('--domain <file>', 'the domain file')
    .requiredOption('--hsm <name>', 'the token to enrol')
    .option('--endorser <name>', 'an HSM already enrolled, which vouches for the new one')
    .option(
      '--share <file>',
      'or: a custodian share of the domain (repeat, with --identity)',
      collect,
    )
    .option('--identity <file>', 'an age identity that opens one or more shares (repeat)', collect)
    .option('--json', 'machine-readable summary')
    .action(async (o: EnrollOptions) =>
      (await import('../domain-enroll.js')).run(await context(), o),
    );
  explain(
    domain.commands.at(-1) as Command,
    ['custos domain enroll --domain bank.domain --hsm backup-site --endorser primary'],
    [...PIN_NOTE, ...PASSPHRASE_NOTE],
  );
  domain
    .command('rotate')
    .description(
      'with a quorum of the current custodians: a new secret under a new policy; re-seal bundles to it',
    )
    .requiredOption('--domain <file>', 'the current domain file (it is marked as replaced)')
    .requiredOption('--policy <file>', 'the new threshold and custodians')
    .requiredOption('--out <file>', 'the new domain file')
    .option('--shares-dir <dir>', 'where the new share files go (default: NEW.shares/)')
    .option(
      '--rebundle <file>',
      'a bundle of the domain to re-seal to the new generation (repeat)',
      collect,
    )
    .option('--rebundle-dir <dir>', 'where the re-sealed bundles go, under their own names')
    .option('--share <file>', "a current custodian's share (repeat)", collect)
    .option('--identity <file>', 'an age identity that opens one or more shares (repeat)', collect)
    .option(
      '--ceremony <file>',
      'or: a ceremony opened with --purpose rotate, whose accepted shares are the quorum',
    )
    .option(
      '--retire-hsm <name>',
      'an enrolled token (label or serial) the new generation no longer takes bundles from (repeat)',
      collect,
    )
    .option('--post-quantum', "seal the new generation with age's post-quantum hybrid recipient")
    .option('--json', 'machine-readable summary')
    .action(async (o: import('../domain-rotate.js').RotateOptions) =>
      (await import('../domain-rotate.js')).run(await context(), o),
    );
  explain(
    domain.commands.at(-1) as Command,
    [
      'custos domain rotate --domain bank.domain --policy new.yaml \\',
      '    --out bank-2.domain --share a.share --identity a.key \\',
      '    --share b.share --identity b.key …',
    ],
    PASSPHRASE_NOTE,
  );
  domain
    .command('show <file>')
    .description(
      'what a domain file says: generation, custodians, enrolled HSMs, and whether it was replaced',
    )
    .option('--json', 'machine-readable')
    .action(async (file: string, o: { json?: boolean }) =>
      (await import('../domain-show.js')).run(await context(), { domain: file, json: o.json }),
    );
  explain(domain.commands.at(-1) as Command, ['custos domain show bank.domain'], NO_SECRET_NOTE);
}
