/** What the steps of `ceremony run` share: the run's context, and the words of its choices. */
import type { AskOptions } from '../../../io/terminal.js';
import type { Host, LoadedCeremony } from '../../../ops/ceremony/host.js';
import type { Context } from '../../../ops/context.js';

export const NON_INTERACTIVE =
  'without a terminal, use the step commands: custodians run custos share submit, then custos ceremony add CEREMONY SUBMISSION... and custos ceremony close CEREMONY';

export const SOMEONE_ELSE = 'Choose someone else';
export const STOP = 'Stop here (the ceremony stays open)';

export interface Run {
  ctx: Context;
  c: LoadedCeremony;
  host: Host;
  width: number;
  /** For prompts without a way back; `back` for those with one. */
  ask: AskOptions;
  back: AskOptions;
  say: (lines: string | string[]) => void;
}
