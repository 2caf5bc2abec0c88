/** `custos handover`: release named keys under legal process. */
import type { Command } from 'commander';
import type { RequestInput } from '../../ops/handover/request.js';
import { NO_SECRET_NOTE, explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const handover = program
    .command('handover')
    .description(
      'release named keys to a recipient under documented legal process, as the custodial policy allows',
    );
  handover
    .command('request')
    .description(
      'record the legal process, the keys it names and the recipient; refused if the policy does not allow it',
    )
    .requiredOption('--bundle <file>', 'the bundle holding the keys')
    .requiredOption('--policy <file>', 'the custodial policy with a handover section')
    .requiredOption('--matter <id>', 'the case or matter reference')
    .requiredOption('--authority <name>', 'who issued the legal process')
    .requiredOption(
      '--basis <kind>',
      'the legal basis, as the policy names it (e.g. subpoena, court-order)',
    )
    .requiredOption('--document <file>', 'the legal document (only its SHA-256 is recorded)')
    .requiredOption('--keys <label...>', 'the labels of the keys the process names')
    .requiredOption('--recipient <pem>', "the recipient's RSA public key")
    .requiredOption('--out <file>', 'the request file to create')
    .option('--notice-given <time>', 'when the institution was given notice (default: now)')
    .option('--json', 'machine-readable summary')
    .action(async (o: RequestInput & { json?: boolean }) =>
      (await import('../handover/request.js')).run(await context(), o),
    );
  explain(
    handover.commands.at(-1) as Command,
    [
      'custos handover request --bundle dfs.bundle --policy dfs.yaml --matter M-1 \\',
      '    --authority "NY DFS" --basis subpoena --document subpoena.pdf \\',
      '    --keys payments-aes-03 --recipient regulator.pub --out m1.request',
    ],
    NO_SECRET_NOTE,
  );
  handover
    .command('approve <request>')
    .description("sign an approval of the request as one of the policy's approvers")
    .requiredOption('--as <role>', 'the role you approve as (e.g. general-counsel, custodian)')
    .requiredOption('--key <pem>', 'your Ed25519 approval key')
    .option(
      '--document <file>',
      'the legal document you reviewed: refuse unless it is the one the request names',
    )
    .action(async (request: string, o: { as: string; key: string; document?: string }) =>
      (await import('../handover/approve.js')).run(await context(), { request, ...o }),
    );
  explain(
    handover.commands.at(-1) as Command,
    [
      'custos handover approve m1.request --as custodian --key hale-llp.pem \\',
      '    --document subpoena.pdf',
    ],
    ['Needs no PIN and no passphrase: the approval key is a PEM file you keep.'],
  );
  handover
    .command('status <request>')
    .description('every rule of the policy: met, or what is still missing')
    .option('--ceremony <file>', 'the handover ceremony, to count its quorum')
    .option('--json', 'machine-readable status')
    .action(async (request: string, o: { ceremony?: string; json?: boolean }) =>
      (await import('../handover/status.js')).run(await context(), { request, ...o }),
    );
  explain(
    handover.commands.at(-1) as Command,
    ['custos handover status m1.request --ceremony m1.ceremony'],
    NO_SECRET_NOTE,
  );
  handover
    .command('execute <request>')
    .description(
      'with every rule met: release the named keys, wrapped to the recipient, with a signed receipt',
    )
    .requiredOption('--ceremony <file>', 'the handover ceremony bound to this request')
    .requiredOption('--out <file>', 'the handover package to create')
    .option('--bundle <file>', 'the bundle, when it is not where the request says')
    .option('--json', 'machine-readable result')
    .action(
      async (
        request: string,
        o: { ceremony: string; out: string; bundle?: string; json?: boolean },
      ) => (await import('../handover/execute.js')).run(await context(), { request, ...o }),
    );
  explain(
    handover.commands.at(-1) as Command,
    ['custos handover execute m1.request --ceremony m1.ceremony --out m1.package'],
    ["Needs no PIN and no passphrase: the quorum's shares are in the ceremony."],
  );
  handover
    .command('verify <package>')
    .description(
      'as the recipient: check the receipt, the approvals and the scope; with --key, unwrap and check each key',
    )
    .option('--key <pem>', "the recipient's RSA private key")
    .option('--json', 'machine-readable result')
    .action(async (pkg: string, o: { key?: string; json?: boolean }) =>
      (await import('../handover/verify.js')).run(await context(), { package: pkg, ...o }),
    );
  explain(
    handover.commands.at(-1) as Command,
    ['custos handover verify m1.package --key regulator.key'],
    ['Needs no PIN; the RSA key file must not be passphrase-protected.'],
  );
}
