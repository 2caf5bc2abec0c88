/** `custos domain init`: what it takes, and its help. */
import type { InitOptions } from '../../domain-init.js';
import { option, repeated, required, type CommandSpec } from '../define.js';
import { json, PIN_NOTE } from '../shared.js';

export const init: CommandSpec = {
  usage: 'init',
  summary: "make a domain: split its secret among the policy's custodians and enrol source HSMs",
  options: [
    required('--policy <file>', 'threshold and custodians'),
    required('--out <file>', 'the domain file to create (public: it holds no secret)'),
    option('--shares-dir <dir>', 'where share files go (default: DOMAIN.shares/)'),
    repeated('--hsm <name>', 'a source HSM to enrol now (repeat)'),
    option(
      '--post-quantum',
      "seal bundles with age's post-quantum hybrid recipient (ML-KEM-768 + X25519)",
    ),
    json('machine-readable summary'),
  ],
  example: [
    'custos domain init --policy policies/dr-3-of-5.yaml --out bank.domain \\',
    '    --hsm primary',
  ],
  notes: PIN_NOTE,
  run: async (context, o: InitOptions) =>
    (await import('../../domain-init.js')).run(await context(), o),
};
