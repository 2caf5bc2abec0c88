/** custos ceremony status: the ceremony, who has given a share, and what comes next. */
import { requiredQuorum } from '../../core/ceremony.js';
import { fitLines } from '../../core/layout.js';
import { loadCeremony } from '../../ops/ceremony/host.js';
import { ceremonyStatus } from '../../ops/ceremony/status.js';
import { closeHint } from '../../ops/ceremony/close.js';
import type { Context } from '../../ops/context.js';
import { describeCeremony, showStatus } from '../ceremony-view.js';

export async function run(ctx: Context, o: { ceremony: string; json?: boolean }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const s = ceremonyStatus(ctx, c);
  if (o.json) {
    return ctx.out.json({
      ceremony: c.body.nonce,
      purpose: c.body.purpose,
      expires: c.body.expires,
      expired: s.expired,
      closed: s.closed,
      threshold: c.body.threshold,
      quorum: requiredQuorum(c.body),
      accepted: s.accepted,
      custodians: s.custodians,
      unattributed: s.unattributed,
    });
  }
  const width = ctx.out.width;
  ctx.out.data(describeCeremony(c, width));
  showStatus(ctx.out, s, { width });
  if (!s.closed && s.expired)
    ctx.out.data(
      fitLines(
        [
          `the ceremony expired and can no longer act; destroy the shares it holds: custos ceremony cancel ${o.ceremony}`,
        ],
        width,
      ),
    );
  else if (!s.closed && s.accepted >= requiredQuorum(c.body))
    ctx.out.data(fitLines([`next: ${closeHint(c)}`], width, 6));
}
