/** How a custodian names their own key to the share commands: a file, or a key on a token. */
import { required } from '../define.js';

export const YOUR_IDENTITY = required(
  '--identity <file>',
  'your age identity file, or your token identity file (custos custodian enroll)',
);

export const TOKEN_NOTE = [
  'A key on a token: give its token identity file as --identity; the PIN is',
  'asked at the terminal when your share is reached (docs/custodian-tokens.md).',
];
