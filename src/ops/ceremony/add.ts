/**
 * custos ceremony add: new submissions judged, the accepted ones kept as they came (sealed), and
 * every verdict recorded in the audit log.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { requiredQuorum } from '../../core/ceremony.js';
import type { Rejected, QuorumState } from '../../core/quorum.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { createFilesAtomically } from '../../io/files.js';
import { recordDone } from '../audit.js';
import type { Context } from '../context.js';
import { ACCEPTED, type Host, type LoadedCeremony } from './host.js';
import { judgeSubmissions, type Incoming } from './judge.js';

export interface AddResult {
  accepted: { custodian: string; source: string }[];
  rejected: Turned[];
  state: QuorumState;
}

type Turned = Rejected & { custodian?: string };

function rejectionFile(host: Host, r: Turned, i: number) {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    path: join(host.dir, 'rejected', `${stamp}-${i}-${randomBytes(3).toString('hex')}.json`),
    data: `${JSON.stringify({ time: new Date().toISOString(), source: r.source, custodian: r.custodian ?? null, reason: r.reason, message: r.message })}\n`,
    mode: 0o600,
  };
}

function recordRejected(
  ctx: Context,
  c: LoadedCeremony,
  host: Host,
  r: Turned,
  bytes?: Buffer,
): void {
  recordDone(
    ctx,
    {
      op: 'submission-rejected',
      outcome: 'refused',
      ceremony: c.body.nonce,
      bundle: c.body.subject.bundleId,
      ...(bytes ? { artifacts: { submission: sha256Hex(bytes) } } : {}),
      detail: {
        ...(r.custodian ? { custodian: r.custodian } : {}),
        source: r.source,
        reason: r.reason,
        message: r.message,
      },
    },
    host.signer,
  );
}

/**
 * Keeps and records a share turned away before it became a submission (at the terminal: wrong
 * identity, foreign share).
 */
export function rejectAtEntry(ctx: Context, c: LoadedCeremony, host: Host, r: Turned): void {
  createFilesAtomically([rejectionFile(host, r, 0)]);
  recordRejected(ctx, c, host, r);
}

/** Judges new submissions, keeps the accepted ones (as they came) and records every verdict. */
export async function addSubmissions(
  ctx: Context,
  c: LoadedCeremony,
  host: Host,
  incoming: readonly Incoming[],
): Promise<AddResult> {
  const judged = await judgeSubmissions(c, host, incoming);
  createFilesAtomically([
    ...judged.fresh.map((f) => ({
      path: join(host.dir, ACCEPTED, `${f.custodian}.submission`),
      data: f.incoming.bytes,
      mode: 0o600,
    })),
    ...judged.turnedAway.map((r, i) => rejectionFile(host, r, i)),
  ]);
  const before = judged.state.accepted.length - judged.fresh.length;
  judged.fresh.forEach((f, i) => {
    recordDone(
      ctx,
      {
        op: 'submission-accepted',
        outcome: 'ok',
        ceremony: c.body.nonce,
        bundle: c.body.subject.bundleId,
        artifacts: { submission: sha256Hex(f.incoming.bytes) },
        detail: {
          custodian: f.custodian,
          source: f.incoming.source,
          accepted: before + i + 1,
          quorum: requiredQuorum(c.body),
        },
      },
      host.signer,
    );
  });
  for (const r of judged.turnedAway)
    recordRejected(ctx, c, host, r, incoming.find((i) => i.source === r.source)?.bytes);
  return {
    accepted: judged.fresh.map((f) => ({ custodian: f.custodian, source: f.incoming.source })),
    rejected: judged.turnedAway,
    state: judged.state,
  };
}
