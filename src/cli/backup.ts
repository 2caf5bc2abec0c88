/** custos backup: the bundle, the custodian shares, and the proof that a quorum reassembles the key. */
import { relative } from 'node:path';
import { backup } from '../ops/backup.js';
import { audited } from '../ops/audit.js';
import type { Context } from '../ops/context.js';
import { describeKey } from '../core/keys.js';
import { checkValueText, count } from './render.js';

export async function run(ctx: Context, o: { hsm: string; policy: string; out: string; sharesDir?: string; json?: boolean }): Promise<void> {
  const r = await audited(ctx, 'backup', async (note) => {
    note.detail = { hsm: o.hsm, policy: o.policy };
    const done = await backup(ctx, { hsm: o.hsm, policyPath: o.policy, out: o.out, sharesDir: o.sharesDir });
    note.bundle = done.body.bundleId;
    note.artifacts.bundle = done.bundleFileDigest;
    for (const s of done.shareFiles) note.artifacts[`share:${s.custodian}`] = s.digest;
    Object.assign(note.detail, { token: done.body.source.label, keys: done.body.keys.length, skipped: done.body.skipped.length, threshold: done.body.escrow.threshold, total: done.body.escrow.total });
    return done;
  });
  const rel = (p: string) => relative(ctx.cwd, p) || p;
  const { body } = r;
  if (o.json) {
    return ctx.out.json({
      bundle: rel(r.bundlePath), bundleId: body.bundleId, source: body.source, kekCheckValue: body.kek.kcv,
      threshold: body.escrow.threshold, total: body.escrow.total,
      keys: body.keys.map((k) => ({ label: k.label, id: k.id, class: k.class, keyType: k.keyType, bits: k.bits, checkValue: k.checkValue })),
      skipped: body.skipped, shares: r.shareFiles.map((s) => ({ custodian: s.custodian, name: s.name, index: s.index, path: rel(s.path) })), provedWith: r.provedWith,
    });
  }
  for (const s of body.skipped) ctx.out.warn(`skipped ${s.class} key ${describeKey(s)}: ${s.reason}`);
  ctx.out.table(['label', 'id', 'class', 'type', 'bits', 'check value', 'with it'],
    body.keys.map((k) => [k.label, k.id || '-', k.class, k.keyType, k.bits || '-', checkValueText(k.checkValue),
      [k.publicKey ? 'public key' : '', k.certificates.length ? `${k.certificates.length} cert` : ''].filter(Boolean).join(', ') || '-']));
  ctx.out.table(['custodian', 'name', 'share', 'file'], r.shareFiles.map((s) => [s.custodian, s.name, `${s.index} of ${body.escrow.total}`, rel(s.path)]));
  ctx.out.data([
    `bundle ${rel(r.bundlePath)} (id ${body.bundleId}) from token "${body.source.label}" (serial ${body.source.serial})`,
    `${count(body.keys.length, 'key')} backed up, ${body.skipped.length} skipped; KEK check value ${body.kek.kcv}`,
    `${body.escrow.threshold} of ${body.escrow.total} custodians needed to restore; proved by recombining the shares of ${r.provedWith.join(', ')}`,
  ].join('\n'));
}
