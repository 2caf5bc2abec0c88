/**
 * What command definitions share: the usage error, the notes on PINs and passphrases, and the
 * options several commands take.
 */
import { CustosError } from '../../core/errors.js';
import { option, repeated, type OptionSpec } from './define.js';

/** A command line whose options do not fit together. */
export const usage = (message: string): CustosError =>
  new CustosError('E_USAGE', message, 'run custos help COMMAND for the forms each command takes');

/** Where a token's PIN comes from, as every command that logs in to a token says in its help. */
export const PIN_NOTE = [
  "PINs: from the profile's pin: setting in custos.yaml (prompt, env:VAR or",
  'file:PATH); for the embedded store, from CUSTOS_PIN, else asked without echo.',
  'Never on the command line.',
];

/** Where an identity file's passphrase comes from. */
export const PASSPHRASE_NOTE = [
  'Passphrases: an identity file made with age -p is opened with CUSTOS_PASSPHRASE,',
  'else its passphrase is asked without echo. Never on the command line.',
];

export const NO_SECRET_NOTE = ['Needs no PIN and no passphrase.'];

/** `--json`, described as what it prints. */
export const json = (what: string): OptionSpec => option('--json', what);

export const IDENTITIES = repeated(
  '--identity <file>',
  'an age identity that opens one or more shares (repeat)',
);

export const FULL = option(
  '--full',
  'list every key, also on a terminal (where a long list is summarised)',
);
