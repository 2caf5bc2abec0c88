/** custos shares verify: a custodian checks their own share against the bundle, alone. */
import { verifyShare } from '../ops/verify-share.js';
import type { Context } from '../ops/context.js';

export async function run(ctx: Context, o: { bundle: string; share: string; identity: string }): Promise<void> {
  const r = await verifyShare(ctx, o.bundle, o.share, o.identity);
  ctx.out.data([
    `share ${o.share} is good:`,
    `  custodian  ${r.custodian.id} (${r.custodian.name}), share ${r.custodian.index} of ${r.total}, ${r.threshold} needed`,
    `  bundle     ${r.bundleId}, made ${r.created} from token "${r.source.label}" (serial ${r.source.serial})`,
    `  signature  verified with the bundle's dealer key; the bundle's bytes match the digest in the share`,
  ].join('\n'));
}
