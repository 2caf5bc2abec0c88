/** `custos domain`: long-lived escrow domains. */
import type { GroupSpec } from './define.js';
import { enroll } from './domain/enroll.js';
import { init } from './domain/init.js';
import { rotate } from './domain/rotate.js';
import { show } from './domain/show.js';

export const domain: GroupSpec = {
  group: 'domain',
  summary: 'a long-lived escrow domain: custodians set up once, backups made without them',
  commands: [init, enroll, rotate, show],
};
