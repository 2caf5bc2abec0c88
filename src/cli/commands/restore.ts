/** `custos restore`: from a bundle with a quorum, or back from a backup HSM. */
import type { Command } from 'commander';
import {
  type CommandContext,
  PASSPHRASE_NOTE,
  PIN_NOTE,
  collect,
  explain,
  usage,
} from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const restore = program
    .command('restore')
    .description(
      'reassemble the bundle key from a quorum and restore every key into a token, or copy them back from a backup HSM',
    )
    .requiredOption('--hsm <name>', 'the token to restore into')
    .option('--bundle <file>', 'the bundle to restore')
    .option('--share <file>', 'a custodian share file (repeat)', collect)
    .option('--identity <file>', 'an age identity that opens one or more shares (repeat)', collect)
    .option('--from-hsm <name>', 'copy the keys back from this backup token instead of a bundle')
    .option('--policy <file>', 'with --from-hsm: which keys to copy (its keys section)')
    .option('--json', 'machine-readable summary')
    .option('--full', 'list every key, also on a terminal (where a long list is summarised)');
  explain(
    restore,
    [
      'custos restore --bundle primary.bundle --hsm dr \\',
      '    --share hale-llp.share --identity hale-llp.key \\',
      '    --share ciso.share --identity ciso.key \\',
      '    --share lindqvist.share --identity lindqvist.key',
    ],
    [...PIN_NOTE, ...PASSPHRASE_NOTE],
  );
  restore.action(
    async (o: {
      bundle?: string;
      hsm: string;
      share?: string[];
      identity?: string[];
      fromHsm?: string;
      policy?: string;
      json?: boolean;
      full?: boolean;
    }) => {
      if (o.fromHsm) {
        if (o.bundle || o.share || o.identity)
          throw usage(
            '--from-hsm copies from a token; it takes no --bundle, --share or --identity',
          );
        return (await import('../copy.js')).run(await context(), {
          from: o.fromHsm,
          to: o.hsm,
          policy: o.policy,
          json: o.json,
          full: o.full,
        });
      }
      if (!o.bundle || !o.share || !o.identity)
        throw usage(
          'restore from a bundle needs --bundle, --share and --identity (or use --from-hsm NAME)',
        );
      return (await import('../restore.js')).run(await context(), {
        bundle: o.bundle,
        hsm: o.hsm,
        share: o.share,
        identity: o.identity,
        json: o.json,
        full: o.full,
      });
    },
  );
}
