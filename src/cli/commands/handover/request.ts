/** `custos handover request`: what it takes, and its help. */
import type { RequestInput } from '../../../ops/handover/request.js';
import { option, required, type CommandSpec } from '../define.js';
import { json, NO_SECRET_NOTE } from '../shared.js';

export const request: CommandSpec = {
  usage: 'request',
  summary:
    'record the legal process, the keys it names and the recipient; refused if the policy does not allow it',
  options: [
    required('--bundle <file>', 'the bundle holding the keys'),
    required('--policy <file>', 'the custodial policy with a handover section'),
    required('--matter <id>', 'the case or matter reference'),
    required('--authority <name>', 'who issued the legal process'),
    required(
      '--basis <kind>',
      'the legal basis, as the policy names it (e.g. subpoena, court-order)',
    ),
    required('--document <file>', 'the legal document (only its SHA-256 is recorded)'),
    required('--keys <label...>', 'the labels of the keys the process names'),
    required('--recipient <pem>', "the recipient's RSA public key"),
    required('--out <file>', 'the request file to create'),
    option('--notice-given <time>', 'when the institution was given notice (default: now)'),
    json('machine-readable summary'),
  ],
  example: [
    'custos handover request --bundle dfs.bundle --policy dfs.yaml --matter M-1 \\',
    '    --authority "NY DFS" --basis subpoena --document subpoena.pdf \\',
    '    --keys payments-aes-03 --recipient regulator.pub --out m1.request',
  ],
  notes: NO_SECRET_NOTE,
  run: async (context, o: RequestInput & { json?: boolean }) =>
    (await import('../../handover/request.js')).run(await context(), o),
};
