/** One custodian's check of their share: it opens, it is signed, it belongs to this bundle. */
import { CustosError } from '../core/errors.js';
import type { EscrowCustodian, TokenIdentity } from '../core/bundle.js';
import { judgeShares, loadBundle, loadIdentities, openShares } from './shares.js';
import type { Context } from './context.js';

export interface ShareCheck {
  bundleId: string;
  created: string;
  source: TokenIdentity;
  custodian: EscrowCustodian;
  threshold: number;
  total: number;
}

export async function verifyShare(ctx: Context, bundlePath: string, sharePath: string, identityPath: string): Promise<ShareCheck> {
  const bundle = loadBundle(ctx, bundlePath);
  const candidates = await openShares(ctx, [sharePath], await loadIdentities(ctx, [identityPath]));
  const state = judgeShares(bundle.quorum, candidates);
  const rejected = state.rejected[0];
  if (rejected) {
    throw new CustosError('E_SHARE_REJECTED', `${sharePath}: ${rejected.message}`,
      rejected.reason === 'unopened' ? 'pass the identity file you generated for this custodian role' : 'keep this file, and tell the key-holder who ran the backup');
  }
  const accepted = state.accepted[0];
  const custodian = bundle.body.escrow.custodians.find((c) => c.id === accepted?.custodian);
  if (!custodian) throw new CustosError('E_SHARE_REJECTED', `${sharePath} was not accepted`);
  const { body } = bundle;
  return { bundleId: body.bundleId, created: body.created, source: body.source, custodian, threshold: body.escrow.threshold, total: body.escrow.total };
}
