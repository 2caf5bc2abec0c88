/** custos escrow-pin: a fresh user PIN, known to nobody, held by custodians as m-of-n shares. */
import { escrowPin } from '../ops/pin-escrow.js';
import type { Context } from '../ops/context.js';
import { relativeTo, shareTable, sharesJson, warnSharesExposed } from './written.js';
import { tokenName } from '../hsm/quirks.js';

export async function run(
  ctx: Context,
  o: { hsm: string; policy: string; out: string; json?: boolean },
): Promise<void> {
  const rel = relativeTo(ctx);
  const r = await escrowPin(ctx, { hsm: o.hsm, policyPath: o.policy, outDir: o.out });
  warnSharesExposed(ctx, r.shareFiles);
  const { escrow } = r.body;
  if (o.json) {
    return ctx.out.json({
      token: r.token,
      escrowId: r.body.bundleId,
      dir: rel(r.dir),
      pinLength: r.pinLength,
      threshold: escrow.threshold,
      total: escrow.total,
      shares: sharesJson(r.shareFiles, rel),
      provedWith: r.provedWith,
    });
  }
  shareTable(ctx, r.shareFiles, escrow.total, rel);
  ctx.out.data([
    `token ${tokenName(r.token)} has a new ${r.pinLength}-character user PIN from its own RNG; nobody has seen it`,
    `${escrow.threshold} of ${escrow.total} custodians are needed to open the token; proved by recombining the shares of ${r.provedWith.join(', ')} and logging in`,
    `to use it: pin: escrow:${rel(r.dir)} in the token's custos.yaml profile, with --escrow-identity for each custodian present`,
  ]);
}
