/** custos inventory: one row per key object. */
import { inventory } from '../ops/inventory.js';
import type { Context } from '../ops/context.js';
import { checkValueText, count, yesNo } from './render.js';
import { keyList } from './long-list.js';

export async function run(
  ctx: Context,
  o: { hsm: string; json?: boolean; full?: boolean },
): Promise<void> {
  const result = await inventory(ctx, o.hsm);
  const { name, ...data } = result;
  if (o.json) return ctx.out.json(data);
  ctx.out.note(`token ${name}: ${count(result.rows.length, 'key object')}`);
  keyList(
    ctx,
    ['label', 'id', 'class', 'type', 'bits', 'extractable', 'sensitive', 'check value'],
    result.rows.map((r) => [
      r.label,
      r.id || '-',
      r.class,
      r.keyType,
      r.bits || '-',
      yesNo(r.extractable, r.class),
      yesNo(r.sensitive, r.class),
      checkValueText(r.checkValue),
    ]),
    { full: o.full, groupBy: [2, 3, 4, 5, 6], noun: 'key object' },
  );
}
