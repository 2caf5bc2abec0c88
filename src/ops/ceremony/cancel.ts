/** custos ceremony cancel: an open ceremony abandoned, recorded, and its secrets destroyed. */
import { recordDone } from '../audit.js';
import type { Context } from '../context.js';
import {
  acceptedPaths,
  claimHost,
  destroyHostSecrets,
  openHost,
  type LoadedCeremony,
} from './host.js';

/**
 * Abandons an open ceremony: recorded, then its key and sealed shares destroyed, so it can never
 * act.
 */
export async function cancelCeremony(
  ctx: Context,
  c: LoadedCeremony,
): Promise<{ accepted: number }> {
  const host = await openHost(ctx, c);
  claimHost(ctx, c, host, 'ceremony cancel');
  const accepted = acceptedPaths(host).length;
  // Signed while the key exists, destroyed whatever happens to the entry: a cancel must not leave a
  // usable quorum.
  const entry = {
    op: 'ceremony-cancel',
    outcome: 'ok' as const,
    ceremony: c.body.nonce,
    bundle: c.body.subject.bundleId,
    artifacts: { ceremony: c.digest },
    detail: { purpose: c.body.purpose, accepted },
  };
  try {
    recordDone(ctx, entry, host.signer);
  } finally {
    destroyHostSecrets(ctx, c, host, 'cancelled');
  }
  return { accepted };
}
