/**
 * custos shares verify: a custodian checks their own share against the bundle, or the escrow
 * domain, alone.
 */
import { CustosError } from '../core/errors.js';
import { verifyDomainShare, verifyShare } from '../ops/verify-share.js';
import type { Context } from '../ops/context.js';
import { tokenName } from '../hsm/quirks.js';

export async function run(
  ctx: Context,
  o: { bundle?: string; domain?: string; share: string; identity: string },
): Promise<void> {
  if (!o.bundle === !o.domain) {
    throw new CustosError(
      'E_USAGE',
      'shares verify needs --bundle FILE or --domain FILE (one of them)',
      'give the bundle, or the domain file, your share was made for',
    );
  }
  if (o.domain) {
    const { domain, custodian } = await verifyDomainShare(ctx, o.domain, o.share, o.identity);
    const { body } = domain;
    return ctx.out.data([
      `share ${o.share} is good:`,
      `  custodian   ${custodian.id} (${custodian.name})`,
      `  share       ${custodian.index} of ${body.escrow.total}; ${body.escrow.threshold} needed`,
      `  domain      ${body.domainId}, generation ${body.generation}`,
      `  made        ${body.created}`,
      `  signature   verified: made when the domain was set up`,
      ...(domain.superseded
        ? [
            `  note        this generation was replaced by generation ${domain.superseded.by.generation} on ${domain.superseded.time}: keep the share only for bundles made before then`,
          ]
        : []),
    ]);
  }
  const r = await verifyShare(ctx, o.bundle as string, o.share, o.identity);
  ctx.out.data([
    `share ${o.share} is good:`,
    `  custodian  ${r.custodian.id} (${r.custodian.name}), share ${r.custodian.index} of ${r.total}, ${r.threshold} needed`,
    `  bundle     ${r.bundleId}, made ${r.created} from token ${tokenName(r.source)}`,
    `  signature  verified: made by this backup, for this very bundle file`,
  ]);
}
