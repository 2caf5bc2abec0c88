/** custos inventory: one row per key object. */
import { inventory } from '../ops/inventory.js';
import type { Context } from '../ops/context.js';
import { checkValueText, count, yesNo } from './render.js';

export async function run(ctx: Context, o: { hsm: string; json?: boolean }): Promise<void> {
  const result = await inventory(ctx, o.hsm);
  if (o.json) return ctx.out.json(result);
  ctx.out.note(`token "${result.token}" (serial ${result.serial}): ${count(result.rows.length, 'key object')}`);
  ctx.out.table(['label', 'id', 'class', 'type', 'bits', 'extractable', 'sensitive', 'check value'],
    result.rows.map((r) => [r.label, r.id || '-', r.class, r.keyType, r.bits || '-', yesNo(r.extractable, r.class), yesNo(r.sensitive, r.class), checkValueText(r.checkValue)]));
}
