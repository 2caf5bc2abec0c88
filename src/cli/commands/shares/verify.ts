/** `custos shares verify`: what it takes, and its help. */
import { option, required, type CommandSpec } from '../define.js';
import { PASSPHRASE_NOTE } from '../shared.js';
import { TOKEN_NOTE, YOUR_IDENTITY } from './your-identity.js';

interface VerifyOptions {
  bundle?: string;
  domain?: string;
  share: string;
  identity: string;
}

/** The command under `group` (shares or share), whose name its example then uses. */
export const verify = (group: string): CommandSpec => ({
  usage: 'verify',
  summary: 'check, alone, that a share opens, belongs to the bundle (or domain) and is signed',
  options: [
    option('--bundle <file>', 'the bundle the share is for'),
    option('--domain <file>', 'or: the escrow domain the share is for'),
    required('--share <file>', 'the share file'),
    YOUR_IDENTITY,
  ],
  example: [
    `custos ${group} verify --bundle primary.bundle --share hale-llp.share \\`,
    '    --identity hale-llp.key',
  ],
  notes: [...PASSPHRASE_NOTE, ...TOKEN_NOTE],
  run: async (context, o: VerifyOptions) =>
    (await import('../../shares-verify.js')).run(await context(), o),
});
