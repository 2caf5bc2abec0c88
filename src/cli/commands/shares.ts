/** `custos shares` (also `custos share`): a custodian checks or submits their share. */
import type { GroupSpec } from './define.js';
import { submit } from './shares/submit.js';
import { verify } from './shares/verify.js';

// Both names are full groups rather than an alias, so that each help says the command as it was
// typed; `share` stays out of the command list.
export const shares: GroupSpec = {
  group: 'shares',
  summary: 'custodian share files (also: custos share …)',
  commands: [verify('shares'), submit('shares')],
};

export const share: GroupSpec = {
  group: 'share',
  summary: 'custodian share files (also: custos shares …)',
  hidden: true,
  commands: [verify('share'), submit('share')],
};
