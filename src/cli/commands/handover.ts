/** `custos handover`: release named keys under legal process. */
import type { GroupSpec } from './define.js';
import { approve } from './handover/approve.js';
import { execute } from './handover/execute.js';
import { request } from './handover/request.js';
import { status } from './handover/status.js';
import { verify } from './handover/verify.js';

export const handover: GroupSpec = {
  group: 'handover',
  summary:
    'release named keys to a recipient under documented legal process, as the custodial policy allows',
  commands: [request, approve, status, execute, verify],
};
