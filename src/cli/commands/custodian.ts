/** `custos custodian`: a custodian's own key, held on their token. */
import type { Command } from 'commander';
import { explain, PIN_NOTE, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const custodian = program
    .command('custodian')
    .description("a custodian's key on their own hardware token");
  explain(
    custodian
      .command('enroll')
      .description(
        'make (or pick) a decrypt-only RSA key on your token, write the identity file that names it, and print the recipient line for the policy',
      )
      .requiredOption('--hsm <name>', 'the profile in custos.yaml that names your token')
      .requiredOption('--label <label>', 'the key: picked if the token has it, else made')
      .option('--out <file>', 'the token identity file to write (default: LABEL.token-identity)')
      .option('--json', 'machine-readable summary'),
    [
      'custos custodian enroll --hsm my-token --label custos-custodian \\',
      '    --out hale-llp.token-identity',
    ],
    [
      ...PIN_NOTE,
      'The identity file holds no secret: pass it as --identity wherever a share is',
      'opened; custos then asks for the PIN and the token does the decryption.',
    ],
  ).action(async (o: { hsm: string; label: string; out?: string; json?: boolean }) =>
    (await import('../custodian-enroll.js')).run(await context(), o),
  );
}
