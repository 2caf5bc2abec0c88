/**
 * HSM-to-HSM copy (backup --to-hsm, restore --from-hsm): the keys, how each was proved, the
 * mechanism.
 */
import { copyKeys, type CopyResult } from '../ops/copy.js';
import { audited } from '../ops/audit.js';
import type { Context } from '../ops/context.js';
import { describeKey } from '../core/keys.js';
import { count, proofText } from './render.js';
import { fitLines } from '../core/layout.js';
import { keyList } from './long-list.js';
import { noteCorrections } from './restore.js';

export async function run(
  ctx: Context,
  o: { from: string; to: string; policy?: string; json?: boolean; full?: boolean },
): Promise<void> {
  const r = await audited(ctx, 'copy', async (note) => {
    note.detail = { from: o.from, to: o.to };
    const done = await copyKeys(ctx, { from: o.from, to: o.to, policyPath: o.policy });
    Object.assign(note.detail, {
      source: `${done.source.label} (serial ${done.source.serial})`,
      target: `${done.target.label} (serial ${done.target.serial})`,
      mechanism: done.mechanism,
      copied: done.keys.filter((k) => k.status === 'restored').length,
      skipped: done.skipped.length,
    });
    return done;
  });
  renderCopy(ctx, r, o.json, o.full);
}

/**
 * The copy's result: keys copied and how each was proved, or JSON; shared with a PIN-escrow
 * ceremony's close.
 */
export function renderCopy(ctx: Context, r: CopyResult, json?: boolean, full?: boolean): void {
  const copied = r.keys.filter((k) => k.status === 'restored').length;
  // Said on stderr in every output mode: it needs a person to look.
  if (r.unnamedKeys > 0) {
    ctx.out.warn(
      `token "${r.target.label}" holds ${count(r.unnamedKeys, 'key object')} with no label and no id, such as a process killed while creating a key leaves behind; check and delete ${r.unnamedKeys === 1 ? 'it' : 'them'} (pkcs11-tool --list-objects)`,
    );
  }
  if (json) {
    return ctx.out.json({
      source: r.source,
      target: r.target,
      mechanism: r.mechanism,
      wrap: r.wrap,
      note: r.note,
      skipped: r.skipped,
      keys: r.keys.map((k) => ({
        label: k.record.label,
        id: k.record.id,
        class: k.record.class,
        keyType: k.record.keyType,
        status: k.status,
        proof: k.proof,
        checkValue: k.checkValue,
      })),
      publicObjects: r.publicObjects,
      certificates: r.certificates,
      unnamedKeys: r.unnamedKeys,
      corrected: r.corrected,
    });
  }
  noteCorrections(ctx, r.target.label, r.corrected);
  if (r.note) ctx.out.note(r.note);
  for (const s of r.skipped) ctx.out.warn(`skipped ${s.class} key ${describeKey(s)}: ${s.reason}`);
  const unproven = r.keys.filter((k) => k.proof === 'none');
  for (const k of unproven)
    ctx.out.warn(
      `${k.record.label}: nothing could be checked for this key on the target; it was copied but not proved`,
    );
  keyList(
    ctx,
    ['label', 'id', 'class', 'type', 'status', 'proved by', 'check value'],
    r.keys.map((k) => [
      k.record.label,
      k.record.id || '-',
      k.record.class,
      k.record.keyType,
      k.status === 'restored' ? 'copied' : 'present',
      proofText(k.proof),
      k.checkValue || '-',
    ]),
    { full, groupBy: [2, 3, 4, 5], noun: 'key' },
  );
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
