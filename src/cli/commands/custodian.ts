/** `custos custodian enroll`: a custodian's key on their own token. */
import { option, required, type GroupSpec } from './define.js';
import { json, PIN_NOTE } from './shared.js';

export const custodian: GroupSpec = {
  group: 'custodian',
  summary: "a custodian's key on their own hardware token",
  commands: [
    {
      usage: 'enroll',
      summary:
        'make (or pick) a decrypt-only RSA key on your token, write the identity file that names it, and print the recipient line for the policy',
      options: [
        required('--hsm <name>', 'the profile in custos.yaml that names your token'),
        required('--label <label>', 'the key: picked if the token has it, else made'),
        option('--out <file>', 'the token identity file to write (default: LABEL.token-identity)'),
        json('machine-readable summary'),
      ],
      example: [
        'custos custodian enroll --hsm my-token --label custos-custodian \\',
        '    --out hale-llp.token-identity',
      ],
      notes: [
        ...PIN_NOTE,
        'The identity file holds no secret: pass it as --identity wherever a share is',
        'opened; custos then asks for the PIN and the token does the decryption.',
      ],
      run: async (context, o: { hsm: string; label: string; out?: string; json?: boolean }) =>
        (await import('../custodian-enroll.js')).run(await context(), o),
    },
  ],
};
