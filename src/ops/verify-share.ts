/** One custodian's check of their share: it opens, it is signed, it belongs to this bundle. */
import { CustosError } from '../core/errors.js';
import type { EscrowCustodian, TokenIdentity } from '../core/bundle.js';
import { bundleTampered, judgeShares, loadBundle, loadIdentities, openShares } from './shares.js';
import { domainSubject, loadDomain, type LoadedDomain } from './domain/load.js';
import type { QuorumSubject } from '../core/quorum.js';
import { whatToDo } from '../core/advice.js';
import type { Context } from './context.js';

export interface ShareCheck {
  bundleId: string;
  created: string;
  source: TokenIdentity;
  custodian: EscrowCustodian;
  threshold: number;
  total: number;
}

export async function verifyShare(
  ctx: Context,
  bundlePath: string,
  sharePath: string,
  identityPath: string,
): Promise<ShareCheck> {
  const bundle = loadBundle(ctx, bundlePath);
  const custodian = await judgeOne(ctx, bundle.quorum, sharePath, identityPath, bundlePath);
  const { body } = bundle;
  return {
    bundleId: body.bundleId,
    created: body.created,
    source: body.source,
    custodian,
    threshold: body.escrow.threshold,
    total: body.escrow.total,
  };
}

export interface DomainShareCheck {
  domain: LoadedDomain;
  custodian: EscrowCustodian;
}

/** A custodian's check of their share of an escrow domain, with no bundle at all. */
export async function verifyDomainShare(
  ctx: Context,
  domainPath: string,
  sharePath: string,
  identityPath: string,
): Promise<DomainShareCheck> {
  const domain = loadDomain(ctx, domainPath);
  return {
    domain,
    custodian: await judgeOne(
      ctx,
      domainSubject(domain.body, domain.digest),
      sharePath,
      identityPath,
      domainPath,
    ),
  };
}

async function judgeOne(
  ctx: Context,
  subject: QuorumSubject,
  sharePath: string,
  identityPath: string,
  subjectPath: string,
): Promise<EscrowCustodian> {
  const candidates = await openShares(ctx, [sharePath], await loadIdentities(ctx, [identityPath]));
  const state = judgeShares(subject, candidates);
  const rejected = state.rejected[0];
  // The share is authentic and says the bundle (or domain file) changed: name the file at fault.
  if (state.bundleChanged) {
    throw bundleTampered(subjectPath, subject, state, [
      `${sharePath} is authentic: it was made by this backup, and it is not the file at fault`,
    ]);
  }
  if (rejected) {
    throw new CustosError(
      'E_SHARE_REJECTED',
      `${sharePath}: ${rejected.message}`,
      whatToDo(
        rejected,
        `${subject.kind === 'domain' ? 'domain' : 'bundle'} ${subject.body.bundleId}`,
      ),
    );
  }
  const accepted = state.accepted[0];
  const custodian = subject.body.escrow.custodians.find((c) => c.id === accepted?.custodian);
  if (!custodian) throw new CustosError('E_SHARE_REJECTED', `${sharePath} was not accepted`);
  return custodian;
}
