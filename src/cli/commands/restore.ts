/** `custos restore`: from a bundle with a quorum, or back from a backup HSM. */
import { option, repeated, required, type CommandSpec } from './define.js';
import { FULL, IDENTITIES, json, PASSPHRASE_NOTE, PIN_NOTE, usage } from './shared.js';

interface RestoreOptions {
  bundle?: string;
  hsm: string;
  share?: string[];
  identity?: string[];
  fromHsm?: string;
  policy?: string;
  json?: boolean;
  full?: boolean;
}

export const restore: CommandSpec = {
  usage: 'restore',
  summary:
    'reassemble the bundle key from a quorum and restore every key into a token, or copy them back from a backup HSM',
  options: [
    required('--hsm <name>', 'the token to restore into'),
    option('--bundle <file>', 'the bundle to restore'),
    repeated('--share <file>', 'a custodian share file (repeat)'),
    IDENTITIES,
    option('--from-hsm <name>', 'copy the keys back from this backup token instead of a bundle'),
    option('--policy <file>', 'with --from-hsm: which keys to copy (its keys section)'),
    json('machine-readable summary'),
    FULL,
  ],
  example: [
    'custos restore --bundle primary.bundle --hsm dr \\',
    '    --share hale-llp.share --identity hale-llp.key \\',
    '    --share ciso.share --identity ciso.key \\',
    '    --share lindqvist.share --identity lindqvist.key',
  ],
  notes: [...PIN_NOTE, ...PASSPHRASE_NOTE],
  async run(context, o: RestoreOptions) {
    if (o.fromHsm) {
      if (o.bundle || o.share || o.identity)
        throw usage('--from-hsm copies from a token; it takes no --bundle, --share or --identity');
      return (await import('../copy.js')).run(await context(), {
        ...o,
        from: o.fromHsm,
        to: o.hsm,
      });
    }
    if (!o.bundle || !o.share || !o.identity)
      throw usage(
        'restore from a bundle needs --bundle, --share and --identity (or use --from-hsm NAME)',
      );
    return (await import('../restore.js')).run(await context(), {
      ...o,
      bundle: o.bundle,
      share: o.share,
      identity: o.identity,
    });
  },
};
