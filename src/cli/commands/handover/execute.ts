/** `custos handover execute`: what it takes, and its help. */
import { option, required, type CommandSpec } from '../define.js';
import { json } from '../shared.js';

interface ExecuteOptions {
  ceremony: string;
  out: string;
  bundle?: string;
  json?: boolean;
}

export const execute: CommandSpec = {
  usage: 'execute <request>',
  summary:
    'with every rule met: release the named keys, wrapped to the recipient, with a signed receipt',
  options: [
    required('--ceremony <file>', 'the handover ceremony bound to this request'),
    required('--out <file>', 'the handover package to create'),
    option('--bundle <file>', 'the bundle, when it is not where the request says'),
    json('machine-readable result'),
  ],
  example: ['custos handover execute m1.request --ceremony m1.ceremony --out m1.package'],
  notes: ["Needs no PIN and no passphrase: the quorum's shares are in the ceremony."],
  run: async (context, o: ExecuteOptions, request: string) =>
    (await import('../../handover/execute.js')).run(await context(), { request, ...o }),
};
