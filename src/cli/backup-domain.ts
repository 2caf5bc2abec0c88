/** custos backup --domain: a bundle sealed to an escrow domain, made with no custodian present. */
import { backupToDomain } from '../ops/domain/backup.js';
import type { Context } from '../ops/context.js';
import { count } from './render.js';
import { bundleJson, keysJson, relativeTo, warnSkipped } from './written.js';
import { tokenName } from '../hsm/quirks.js';

export async function run(
  ctx: Context,
  o: { hsm: string; domain: string; out: string; policy?: string; json?: boolean },
): Promise<void> {
  const r = await backupToDomain(ctx, {
    hsm: o.hsm,
    domain: o.domain,
    out: o.out,
    keysPolicy: o.policy,
  });
  const rel = relativeTo(ctx);
  const { contents, domain } = r;
  if (o.json) {
    return ctx.out.json({
      ...bundleJson(rel, r.bundlePath, contents),
      domainId: domain.body.domainId,
      generation: domain.body.generation,
      keys: keysJson(contents.keys),
      skipped: contents.skipped,
    });
  }
  warnSkipped(ctx, contents.skipped);
  ctx.out.data([
    `bundle ${rel(r.bundlePath)} (id ${contents.bundleId})`,
    `  from token ${tokenName(contents.source)}`,
    `  ${count(contents.keys.length, 'key')} backed up, ${contents.skipped.length} skipped`,
    `  sealed to domain ${domain.body.domainId} (generation ${domain.body.generation})`,
    `  signed inside the token with its enrolled key`,
    `any ${domain.body.escrow.threshold} of the domain's ${domain.body.escrow.total} custodians can restore it`,
  ]);
}
