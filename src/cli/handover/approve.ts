/** custos handover approve: one approver's signature added to the request. */
import { approve, type ApproveInput } from '../../ops/handover/approve.js';
import type { Context } from '../../ops/context.js';

export async function run(ctx: Context, o: ApproveInput): Promise<void> {
  const r = await approve(ctx, o);
  ctx.out.data(
    `approved by ${r.approver} (${r.organisation}) as ${o.as}: request ${r.request.digest}, matter ${r.request.body.matter}`,
  );
}
