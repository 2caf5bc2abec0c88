/** `custos escrow-pin`: a backup token's PIN held by a quorum. */
import type { Command } from 'commander';
import { explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const escrowPin = program
    .command('escrow-pin')
    .description(
      'give a token a fresh random user PIN that only a quorum of custodians can reassemble',
    )
    .requiredOption(
      '--hsm <name>',
      "the token (its security officer PIN comes from the profile's so-pin:, or CUSTOS_SO_PIN)",
    )
    .requiredOption('--policy <file>', 'threshold and custodians')
    .requiredOption('--out <dir>', 'directory for the escrow record and the share files')
    .option('--json', 'machine-readable summary');
  explain(
    escrowPin,
    ['custos escrow-pin --hsm backup --policy policies/dr-3-of-5.yaml \\', '    --out backup-pin'],
    [
      "The security officer PIN: from the profile's so-pin: setting (env:VAR or",
      'file:PATH), or CUSTOS_SO_PIN for the embedded store. Never on the command line.',
    ],
  );
  escrowPin.action(async (o: { hsm: string; policy: string; out: string; json?: boolean }) =>
    (await import('../escrow-pin.js')).run(await context(), o),
  );
}
