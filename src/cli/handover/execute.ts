/** custos handover execute: the release, and what was delivered to whom. */
import { relative } from 'node:path';
import { executeHandover, type ExecuteInput } from '../../ops/handover/execute.js';
import type { Context } from '../../ops/context.js';
import { checkValueText, count } from '../render.js';

export async function run(ctx: Context, o: ExecuteInput & { json?: boolean }): Promise<void> {
  const r = await executeHandover(ctx, o);
  if (o.json) {
    return ctx.out.json({
      package: relative(ctx.cwd, r.packagePath),
      digest: r.packageDigest,
      ceremony: r.ceremony.body.nonce,
      quorum: r.custodians,
      oaep: r.oaep,
      keys: r.keys.map((k) => ({
        label: k.label,
        id: k.id,
        class: k.class,
        keyType: k.keyType,
        checkValue: k.checkValue,
      })),
      scratchDestroyed: r.scratchDestroyed,
    });
  }
  ctx.out.table(
    ['label', 'id', 'class', 'type', 'check value'],
    r.keys.map((k) => [k.label, k.id || '-', k.class, k.keyType, checkValueText(k.checkValue)]),
  );
  ctx.out.data([
    `handover package ${relative(ctx.cwd, r.packagePath)} written (sha256 ${r.packageDigest}): ${count(r.keys.length, 'key')} wrapped to the recipient by RSA-OAEP-${r.oaep.hash} + AES-KWP`,
    `the keys were unwrapped only inside a scratch token, which was ${r.scratchDestroyed ? 'destroyed' : 'NOT destroyed'}; quorum: ${r.custodians.join(', ')}`,
    `ceremony ${r.ceremony.body.nonce} closed; its key was destroyed after signing the receipt`,
  ]);
}
