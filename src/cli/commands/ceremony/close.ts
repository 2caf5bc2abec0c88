/** `custos ceremony close`: what it takes, and its help. */
import { option, repeated, type CommandSpec } from '../define.js';
import { json, PIN_NOTE } from '../shared.js';

/** Where the quorum acts: `ceremony close` and `ceremony run` take the same. */
export const ACTING_OPTIONS = [
  repeated(
    '--hsm <name>',
    'restore: the token to restore into (repeat: one per bundle); PIN-escrow drill: the escrowed token',
  ),
  option('--from-hsm <name>', 'PIN-escrow restore: the escrowed backup token to copy from'),
  option(
    '--subject <file>',
    'the bundle (or PIN escrow directory), when it is not where the ceremony file says',
  ),
];

export interface ActingOptions {
  hsm?: string[];
  fromHsm?: string;
  subject?: string;
}

export const close: CommandSpec = {
  usage: 'close <ceremony>',
  summary:
    'with a quorum accepted: perform the purpose, sign the closing entry, destroy the ceremony key',
  options: [...ACTING_OPTIONS, json('machine-readable result')],
  example: ['custos ceremony close dr.ceremony --hsm dr-site'],
  notes: [...PIN_NOTE, "A PIN escrow's PIN is reassembled from the accepted shares."],
  run: async (context, o: ActingOptions & { json?: boolean }, ceremony: string) =>
    (await import('../../ceremony/close.js')).run(await context(), { ceremony, ...o }),
};
