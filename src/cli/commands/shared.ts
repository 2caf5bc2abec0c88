/**
 * What every command's registration gets: option helpers, and the context, made only when a command
 * runs.
 */
import type { Command } from 'commander';
import { CustosError } from '../../core/errors.js';
import type { Context } from '../../ops/context.js';

export type CommandContext = () => Promise<Context>;

/** For options given more than once: each value is kept, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

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

/**
 * Ends a command's --help with a short example and where its PINs and passphrases come from (lines
 * of at most 80 columns).
 */
export function explain<C extends Command>(cmd: C, example: string[], notes: string[]): C {
  cmd.addHelpText(
    'after',
    ['', 'Example:', ...example.map((l) => `  ${l}`), '', ...notes].join('\n'),
  );
  return cmd;
}
