/** `custos ceremony`: a quorum ceremony, step by step or at one terminal. */
import type { GroupSpec } from './define.js';
import { add } from './ceremony/add.js';
import { cancel } from './ceremony/cancel.js';
import { close } from './ceremony/close.js';
import { open } from './ceremony/open.js';
import { run } from './ceremony/run.js';
import { status } from './ceremony/status.js';

export const ceremony: GroupSpec = {
  group: 'ceremony',
  summary:
    'a quorum ceremony: custodians give their shares, checked as they arrive, and the quorum acts',
  commands: [open, add, status, close, cancel, run],
};
