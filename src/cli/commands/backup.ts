/** `custos backup`: to a bundle for custodians, to an escrow domain, or to a backup HSM. */
import { option, required, type CommandSpec } from './define.js';
import { FULL, json, PIN_NOTE, usage } from './shared.js';

interface BackupOptions {
  hsm: string;
  policy?: string;
  out?: string;
  sharesDir?: string;
  toHsm?: string;
  domain?: string;
  json?: boolean;
  full?: boolean;
}

export const backup: CommandSpec = {
  usage: 'backup',
  summary:
    'wrap keys into an encrypted bundle and split its key among custodians, or copy them to a backup HSM',
  options: [
    required('--hsm <name>', 'the token to back up'),
    option(
      '--policy <file>',
      'backup policy (threshold, custodians, keys); with --to-hsm only its keys section counts',
    ),
    option('--out <bundle>', 'bundle file to create'),
    option('--shares-dir <dir>', 'where share files go (default: BUNDLE.shares/)'),
    option(
      '--to-hsm <name>',
      'copy the keys into this token under a transport key instead of writing a bundle',
    ),
    option(
      '--domain <file>',
      'seal the bundle to this escrow domain: no custodian takes part (--policy then only picks keys)',
    ),
    json('machine-readable summary'),
    FULL,
  ],
  example: [
    'custos backup --hsm primary --policy policies/dr-3-of-5.yaml \\',
    '    --out primary.bundle',
  ],
  notes: PIN_NOTE,
  async run(context, o: BackupOptions) {
    if (o.domain) {
      if (o.toHsm || o.sharesDir)
        throw usage(
          '--domain writes one bundle sealed to the domain; it takes no --to-hsm or --shares-dir',
        );
      if (!o.out) throw usage('backup --domain needs --out BUNDLE');
      return (await import('../backup-domain.js')).run(await context(), {
        ...o,
        domain: o.domain,
        out: o.out,
      });
    }
    if (o.toHsm) {
      if (o.out || o.sharesDir)
        throw usage('--to-hsm copies into a token; it takes no --out or --shares-dir');
      return (await import('../copy.js')).run(await context(), {
        ...o,
        from: o.hsm,
        to: o.toHsm,
      });
    }
    if (!o.policy || !o.out)
      throw usage('backup to a bundle needs --policy and --out (or use --to-hsm NAME)');
    return (await import('../backup.js')).run(await context(), {
      ...o,
      policy: o.policy,
      out: o.out,
    });
  },
};
