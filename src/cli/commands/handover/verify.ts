/** `custos handover verify`: what it takes, and its help. */
import { option, type CommandSpec } from '../define.js';
import { json } from '../shared.js';

export const verify: CommandSpec = {
  usage: 'verify <package>',
  summary:
    'as the recipient: check the receipt, the approvals and the scope; with --key, unwrap and check each key',
  options: [
    option('--key <pem>', "the recipient's RSA private key"),
    json('machine-readable result'),
  ],
  example: ['custos handover verify m1.package --key regulator.key'],
  notes: ['Needs no PIN; the RSA key file must not be passphrase-protected.'],
  run: async (context, o: { key?: string; json?: boolean }, pkg: string) =>
    (await import('../../handover/verify.js')).run(await context(), { package: pkg, ...o }),
};
