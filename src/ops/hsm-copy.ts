/**
 * custos backup --to-hsm and restore --from-hsm: the copy from token to token (copy.ts), recorded
 * in the audit log (`copy`) whether it succeeds or fails. A PIN-escrow ceremony's close copies
 * too, under its own entry.
 */
import { audited } from './audit.js';
import { copyKeys, type CopyRequest, type CopyResult } from './copy.js';
import type { Context } from './context.js';

export function hsmCopy(ctx: Context, req: CopyRequest): Promise<CopyResult> {
  return audited(ctx, 'copy', async (note) => {
    note.detail = { from: req.from, to: req.to };
    const done = await copyKeys(ctx, req);
    Object.assign(note.detail, {
      source: `${done.source.label} (serial ${done.source.serial})`,
      target: `${done.target.label} (serial ${done.target.serial})`,
      mechanism: done.mechanism,
      copied: done.keys.filter((k) => k.status === 'restored').length,
      skipped: done.skipped.length,
    });
    return done;
  });
}
