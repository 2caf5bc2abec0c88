/** custos ceremony status: who has been accepted, who was turned away and why. */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { expired } from '../../core/ceremony.js';
import type { Context } from '../context.js';
import {
  ACCEPTED,
  closedRecord,
  hostDirOf,
  readState,
  type Closed,
  type LoadedCeremony,
} from './host.js';

export interface CustodianStatus {
  id: string;
  name: string;
  state: 'waiting' | 'accepted' | 'rejected';
  /** For a rejection: why, the newest one (its message). */
  reason?: string;
  /** Its reason code (docs/ceremony.md#rejection-reasons). */
  reasonCode?: string;
  at?: string;
}

export interface CeremonyStatus {
  ceremony: LoadedCeremony;
  custodians: CustodianStatus[];
  /** Rejected submissions that named no custodian of this ceremony. */
  unattributed: { source: string; reason: string; message: string; at: string }[];
  accepted: number;
  closed: Closed | null;
  expired: boolean;
}

/** The state on the host: who has been accepted, who was turned away and why. */
export function ceremonyStatus(ctx: Context, c: LoadedCeremony, now = new Date()): CeremonyStatus {
  const dir = hostDirOf(ctx, c.body.nonce);
  if (!existsSync(dir)) {
    throw new CustosError(
      'E_CEREMONY',
      `this machine holds no state for ceremony ${c.body.nonce}`,
      'run custos ceremony status on the host that opened the ceremony, from the directory it was opened in',
    );
  }
  const acceptedDir = join(dir, ACCEPTED);
  const accepted = new Set(
    existsSync(acceptedDir)
      ? readdirSync(acceptedDir)
          .filter((f) => f.endsWith('.submission'))
          .map((f) => basename(f, '.submission'))
      : [],
  );
  const rejectedDir = join(dir, 'rejected');
  const rejections = (existsSync(rejectedDir) ? readdirSync(rejectedDir).sort() : []).map((f) =>
    readState<{
      time: string;
      source: string;
      custodian: string | null;
      reason: string;
      message: string;
    }>(join(rejectedDir, f)),
  );
  const known = new Set(c.body.custodians.map((x) => x.id));
  const custodians = c.body.custodians.map((x): CustodianStatus => {
    if (accepted.has(x.id)) return { id: x.id, name: x.name, state: 'accepted' };
    const last = rejections.filter((r) => r.custodian === x.id).pop();
    return last
      ? {
          id: x.id,
          name: x.name,
          state: 'rejected',
          reason: last.message,
          reasonCode: last.reason,
          at: last.time,
        }
      : { id: x.id, name: x.name, state: 'waiting' };
  });
  const unattributed = rejections
    .filter((r) => !r.custodian || !known.has(r.custodian))
    .map((r) => ({ source: r.source, reason: r.reason, message: r.message, at: r.time }));
  return {
    ceremony: c,
    custodians,
    unattributed,
    accepted: accepted.size,
    closed: closedRecord(ctx, c),
    expired: expired(c.body, now),
  };
}
