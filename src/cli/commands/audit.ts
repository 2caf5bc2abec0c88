/** `custos audit`: verify and show the audit log. */
import type { GroupSpec } from './define.js';
import { show } from './audit/show.js';
import { verify } from './audit/verify.js';

export const audit: GroupSpec = {
  group: 'audit',
  summary: 'the hash-chained audit log',
  commands: [verify, show],
};
