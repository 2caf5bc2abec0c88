/** `custos ceremony`: a quorum ceremony, step by step or at one terminal. */
import type { Command } from 'commander';
import type { OpenRequest } from '../../ops/ceremony/open.js';
import {
  collect,
  explain,
  NO_SECRET_NOTE,
  PASSPHRASE_NOTE,
  PIN_NOTE,
  type CommandContext,
} from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const ceremony = program
    .command('ceremony')
    .description(
      'a quorum ceremony: custodians give their shares, checked as they arrive, and the quorum acts',
    );
  explain(
    ceremony
      .command('open')
      .description(
        'open a ceremony for a bundle, a PIN escrow or an escrow domain, and write the ceremony file for the custodians',
      )
      .option(
        '--bundle <file>',
        'the bundle the ceremony concerns (repeat for several bundles of one escrow domain)',
        collect,
      )
      .option('--pin-escrow <dir>', 'or: the PIN escrow directory it concerns')
      .option('--domain <file>', 'or: an escrow domain itself, for a drill or a rotation')
      .requiredOption('--purpose <purpose>', 'restore, drill, handover or rotate')
      .requiredOption('--out <file>', 'the ceremony file to create')
      .option('--expires <duration>', 'how long it stays open: 90m, 72h, 7d (at most 30d)', '72h')
      .option('--request <file>', 'for a handover: the request it may release keys for')
      .option('--json', 'machine-readable summary'),
    ['custos ceremony open --bundle primary.bundle --purpose restore \\', '    --out dr.ceremony'],
    NO_SECRET_NOTE,
  ).action(async (o: OpenRequest & { json?: boolean }) =>
    (await import('../ceremony/open.js')).run(await context(), o),
  );
  explain(
    ceremony
      .command('add <ceremony> <submission...>')
      .description('check submissions as they arrive and keep the accepted ones')
      .option('--json', 'machine-readable result'),
    ['custos ceremony add dr.ceremony hale-llp.submission okafor-law.submission'],
    NO_SECRET_NOTE,
  ).action(async (file: string, submissions: string[], o: { json?: boolean }) =>
    (await import('../ceremony/add.js')).run(await context(), {
      ceremony: file,
      submissions,
      json: o.json,
    }),
  );
  explain(
    ceremony
      .command('status <ceremony>')
      .description('who has given a share, who was turned away and why, and the quorum')
      .option('--json', 'machine-readable status'),
    ['custos ceremony status dr.ceremony'],
    NO_SECRET_NOTE,
  ).action(async (file: string, o: { json?: boolean }) =>
    (await import('../ceremony/status.js')).run(await context(), { ceremony: file, json: o.json }),
  );
  const closeOptions = (cmd: Command) =>
    cmd
      .option(
        '--hsm <name>',
        'restore: the token to restore into (repeat: one per bundle); PIN-escrow drill: the escrowed token',
        collect,
      )
      .option('--from-hsm <name>', 'PIN-escrow restore: the escrowed backup token to copy from')
      .option(
        '--subject <file>',
        'the bundle (or PIN escrow directory), when it is not where the ceremony file says',
      );
  explain(
    closeOptions(ceremony.command('close <ceremony>'))
      .description(
        'with a quorum accepted: perform the purpose, sign the closing entry, destroy the ceremony key',
      )
      .option('--json', 'machine-readable result'),
    ['custos ceremony close dr.ceremony --hsm dr-site'],
    [...PIN_NOTE, "A PIN escrow's PIN is reassembled from the accepted shares."],
  ).action(
    async (
      file: string,
      o: { hsm?: string[]; fromHsm?: string; subject?: string; json?: boolean },
    ) => (await import('../ceremony/close.js')).run(await context(), { ceremony: file, ...o }),
  );
  explain(
    ceremony
      .command('cancel <ceremony>')
      .description(
        'abandon an open ceremony: destroy its key and the shares it holds, and record it',
      )
      .option('--yes', 'do not ask before destroying accepted shares (for scripts)'),
    ['custos ceremony cancel dr.ceremony'],
    NO_SECRET_NOTE,
  ).action(async (file: string, o: { yes?: boolean }) =>
    (await import('../ceremony/cancel.js')).run(await context(), { ceremony: file, yes: o.yes }),
  );
  explain(
    closeOptions(ceremony.command('run <ceremony>')).description(
      'the interactive ceremony at this terminal: custodians step up in turn, then the quorum acts',
    ),
    ['custos ceremony run dr.ceremony --hsm dr-site'],
    [
      'Each custodian gives the path of their identity file, or pastes the key, then',
      'the path of their share file. Esc goes back a step.',
      ...PASSPHRASE_NOTE,
      ...PIN_NOTE,
    ],
  ).action(async (file: string, o: { hsm?: string[]; fromHsm?: string; subject?: string }) =>
    (await import('../ceremony-run.js')).run(await context(), { ceremony: file, ...o }),
  );
}
