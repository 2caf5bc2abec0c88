/** custos handover verify: the recipient's check of a package, key by key. */
import { verifyHandover } from '../../ops/handover/verify.js';
import type { Context } from '../../ops/context.js';
import { checkValueText } from '../render.js';

export async function run(
  ctx: Context,
  o: { package: string; key?: string; json?: boolean },
): Promise<void> {
  const r = await verifyHandover(ctx, o.package, o.key);
  if (o.json) return ctx.out.json(r);
  ctx.out.table(
    ['label', 'id', 'class', 'type', 'recorded check value', 'unwrapped'],
    r.keys.map((k) => [
      k.label,
      k.id || '-',
      k.class,
      k.keyType,
      checkValueText(k.checkValue),
      !k.unwrapped
        ? 'not checked (no --key)'
        : k.unwrapped.matches === null
          ? 'unwrapped; no check value to compare'
          : k.unwrapped.matches
            ? `matches (${k.unwrapped.checkValue})`
            : 'MISMATCH',
    ]),
  );
  ctx.out.data([
    `package ${o.package} verifies: signed by ceremony ${r.ceremony}, which was opened for this request`,
    `  matter ${r.matter}: ${r.basis} from ${r.authority}; document sha256 ${r.documentSha256}`,
    `  approvals: ${r.approvals.map((a) => `${a.approver} as ${a.role}`).join(', ') || 'none'}; ${r.custodianTranscript} ceremony audit entr${r.custodianTranscript === 1 ? 'y' : 'ies'} in the transcript`,
    o.key
      ? `  every key unwrapped with ${o.key}${r.keys.some((k) => k.unwrapped?.matches === null) ? '; those with a check value matched it' : ' and matched its check value'}`
      : '  run again with --key RECIPIENT-PRIVATE.pem to unwrap and check each key',
  ]);
}
