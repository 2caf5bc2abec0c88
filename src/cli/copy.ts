/**
 * HSM-to-HSM copy (backup --to-hsm, restore --from-hsm): the keys, how each was proved, the
 * mechanism.
 */
import type { CopyResult } from '../ops/copy.js';
import { hsmCopy } from '../ops/hsm-copy.js';
import type { Context } from '../ops/context.js';
import { describeKey } from '../core/keys.js';
import { count } from './render.js';
import { fitLines } from '../core/layout.js';
import { appliedKeyList, appliedOut } from './restore.js';

export async function run(
  ctx: Context,
  o: { from: string; to: string; policy?: string; json?: boolean; full?: boolean },
): Promise<void> {
  const r = await hsmCopy(ctx, { from: o.from, to: o.to, policyPath: o.policy });
  renderCopy(ctx, r, o.json, o.full);
}

/**
 * The copy's result: keys copied and how each was proved, or JSON; shared with a PIN-escrow
 * ceremony's close.
 */
export function renderCopy(ctx: Context, r: CopyResult, json?: boolean, full?: boolean): void {
  const { source, target, mechanism, wrap, note, skipped } = r;
  const head = { source, target, mechanism, wrap, note, skipped };
  if (appliedOut(ctx, target.label, r, json, head)) return;
  const copied = r.keys.filter((k) => k.status === 'restored').length;
  if (r.note) ctx.out.note(r.note);
  for (const s of r.skipped) ctx.out.warn(`skipped ${s.class} key ${describeKey(s)}: ${s.reason}`);
  const unproven = r.keys.filter((k) => k.proof === 'none');
  for (const k of unproven)
    ctx.out.warn(
      `${k.record.label}: nothing could be checked for this key on the target; it was copied but not proved`,
    );
  appliedKeyList(ctx, r.keys, (k) => (k.status === 'restored' ? 'copied' : 'present'), full);
  ctx.out.data(
    fitLines(
      [
        `token "${r.source.label}" → token "${r.target.label}" by ${r.mechanism}: ${count(copied, 'key')} copied, ${r.keys.length - copied} already present, ${r.skipped.length} skipped`,
        unproven.length === 0
          ? 'every copied key matches its source'
          : `${count(unproven.length, 'key')} copied without proof (see warnings)`,
      ],
      ctx.out.width,
    ),
  );
}
