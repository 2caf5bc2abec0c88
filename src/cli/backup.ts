/**
 * custos backup: the bundle, the custodian shares, and the proof that a quorum reassembles the key.
 */
import { dirname } from 'node:path';
import { fitLines } from '../core/layout.js';
import { backup } from '../ops/backup.js';
import type { Context } from '../ops/context.js';
import { checkValueText, count } from './render.js';
import { keyList } from './long-list.js';
import {
  bundleJson,
  keysJson,
  relativeTo,
  shareTable,
  sharesJson,
  warnSkipped,
  warnSharesExposed,
} from './written.js';
import { tokenName } from '../hsm/quirks.js';

export async function run(
  ctx: Context,
  o: {
    hsm: string;
    policy: string;
    out: string;
    sharesDir?: string;
    json?: boolean;
    full?: boolean;
  },
): Promise<void> {
  const r = await backup(ctx, {
    hsm: o.hsm,
    policyPath: o.policy,
    out: o.out,
    sharesDir: o.sharesDir,
  });
  warnSharesExposed(ctx, r.shareFiles);
  const rel = relativeTo(ctx);
  const { body } = r;
  if (o.json) {
    return ctx.out.json({
      ...bundleJson(rel, r.bundlePath, body),
      threshold: body.escrow.threshold,
      total: body.escrow.total,
      wrap: body.wrap,
      keys: keysJson(body.keys),
      skipped: body.skipped,
      shares: sharesJson(r.shareFiles, rel),
      provedWith: r.provedWith,
    });
  }
  warnSkipped(ctx, body.skipped);
  keyList(
    ctx,
    ['label', 'id', 'class', 'type', 'bits', 'check value', 'with it'],
    body.keys.map((k) => [
      k.label,
      k.id || '-',
      k.class,
      k.keyType,
      k.bits || '-',
      checkValueText(k.checkValue),
      [
        k.publicKey ? 'public key' : '',
        k.certificates.length ? `${k.certificates.length} cert` : '',
      ]
        .filter(Boolean)
        .join(', ') || '-',
    ]),
    { full: o.full, groupBy: [2, 3, 4], noun: 'key' },
  );
  shareTable(ctx, r.shareFiles, body.escrow.total, rel);
  const sharesDir = rel(dirname(r.shareFiles[0]?.path ?? `${r.bundlePath}.shares/x`));
  ctx.out.data(
    fitLines(
      [
        `bundle ${rel(r.bundlePath)} (id ${body.bundleId}) from token ${tokenName(body.source)}`,
        `${count(body.keys.length, 'key')} backed up, ${body.skipped.length} skipped; the key the shares rebuild has check value ${body.kek.kcv}`,
        `${body.escrow.threshold} of ${body.escrow.total} custodians needed to restore; proved by rebuilding it from the shares of ${r.provedWith.join(', ')}`,
        'next:',
        `  1. write the bundle id in the backup record: ${body.bundleId}`,
        '  2. hand each custodian their own share file, and only theirs (table above);',
        `     each checks it: custos shares verify --bundle ${rel(r.bundlePath)} --share THEIRS --identity THEIR.key`,
        `  3. then delete this host's copies: rm ${sharesDir}/*.share`,
      ],
      ctx.out.width,
      4,
    ),
  );
}
