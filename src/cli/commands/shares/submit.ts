/** `custos shares submit`: what it takes, and its help. */
import { option, required, type CommandSpec } from '../define.js';
import { PASSPHRASE_NOTE } from '../shared.js';
import { TOKEN_NOTE, YOUR_IDENTITY } from './your-identity.js';

interface SubmitOptions {
  ceremony: string;
  share: string;
  identity: string;
  out: string;
  yes?: boolean;
}

/** The command under `group` (shares or share), whose name its example then uses. */
export const submit = (group: string): CommandSpec => ({
  usage: 'submit',
  summary:
    'on your own machine: check your share against a ceremony and lock it so that only that ceremony can open it',
  options: [
    required('--ceremony <file>', 'the ceremony file the ceremony lead sent you'),
    required('--share <file>', 'your share file'),
    YOUR_IDENTITY,
    required('--out <file>', 'the submission file to write and send back'),
    option('--yes', 'do not ask for the first characters of the SHA-256 (for scripts)'),
  ],
  example: [
    `custos ${group} submit --ceremony dr.ceremony --share hale-llp.share \\`,
    '    --identity hale-llp.key --out hale-llp.submission',
  ],
  notes: [
    'Before writing, it asks you to type the first 8 characters of the SHA-256 the',
    'ceremony lead read to you.',
    ...PASSPHRASE_NOTE,
    ...TOKEN_NOTE,
  ],
  run: async (context, o: SubmitOptions) =>
    (await import('../../share-submit.js')).run(await context(), o),
});
