/** What every command's registration gets: option helpers, and the context, made only when a command runs. */
import { CustosError } from '../../core/errors.js';
import type { Context } from '../../ops/context.js';

export type CommandContext = () => Promise<Context>;

/** For options given more than once: each value is kept, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** A command line whose options do not fit together. */
export const usage = (message: string): CustosError =>
  new CustosError('E_USAGE', message, 'run custos help COMMAND for the forms each command takes');
