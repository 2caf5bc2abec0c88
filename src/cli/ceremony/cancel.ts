/** custos ceremony cancel: asked first when shares would be destroyed, then done and said. */
import { CustosError } from '../../core/errors.js';
import { fitLines } from '../../core/layout.js';
import { loadCeremony } from '../../ops/ceremony/host.js';
import { ceremonyStatus, type CeremonyStatus } from '../../ops/ceremony/status.js';
import { cancelCeremony } from '../../ops/ceremony/cancel.js';
import type { Context } from '../../ops/context.js';
import { count } from '../render.js';

export async function run(ctx: Context, o: { ceremony: string; yes?: boolean }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  let s: CeremonyStatus | undefined;
  try {
    s = ceremonyStatus(ctx, c);
  } catch {
    // no state here: cancelCeremony says why, as every ceremony command does
  }
  if (s && !o.yes && !s.closed && s.accepted > 0) {
    const shares = count(s.accepted, 'accepted share');
    ctx.out.note(
      `cancelling destroys the ceremony key and the ${shares} it holds; the custodians would have to give their shares again, in a new ceremony`,
    );
    const { askConfirm } = await import('../../io/terminal.js');
    if (
      !(await askConfirm(
        `Cancel ceremony ${c.body.nonce.slice(0, 8)}… and destroy its ${shares}?`,
        'add --yes to cancel without being asked',
      ))
    ) {
      throw new CustosError(
        'E_CANCELLED',
        'not cancelled; the ceremony and its shares are as they were',
        'run it again when you are sure',
      );
    }
  }
  const r = await cancelCeremony(ctx, c);
  ctx.out.data(
    fitLines(
      [
        `ceremony ${c.body.nonce} cancelled: its key and ${count(r.accepted, 'share')} it held on this host were destroyed; it can no longer act`,
      ],
      ctx.out.width,
    ),
  );
}
