/** `custos escrow-pin`: a backup token's PIN held by a quorum. */
import { required, type CommandSpec } from './define.js';
import { json } from './shared.js';

export const escrowPin: CommandSpec = {
  usage: 'escrow-pin',
  summary: 'give a token a fresh random user PIN that only a quorum of custodians can reassemble',
  options: [
    required(
      '--hsm <name>',
      "the token (its security officer PIN comes from the profile's so-pin:, or CUSTOS_SO_PIN)",
    ),
    required('--policy <file>', 'threshold and custodians'),
    required('--out <dir>', 'directory for the escrow record and the share files'),
    json('machine-readable summary'),
  ],
  example: [
    'custos escrow-pin --hsm backup --policy policies/dr-3-of-5.yaml \\',
    '    --out backup-pin',
  ],
  notes: [
    "The security officer PIN: from the profile's so-pin: setting (env:VAR or",
    'file:PATH), or CUSTOS_SO_PIN for the embedded store. Never on the command line.',
  ],
  run: async (context, o: { hsm: string; policy: string; out: string; json?: boolean }) =>
    (await import('../escrow-pin.js')).run(await context(), o),
};
