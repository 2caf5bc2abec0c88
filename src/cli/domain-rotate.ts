/**
 * custos domain rotate: a new secret under a new policy; named bundles re-sealed; the old domain
 * marked as replaced.
 */
import { domainRotate } from '../ops/domain/rotate.js';
import type { Context } from '../ops/context.js';
import { domainJson, domainSummary, shareLines } from './domain-view.js';
import { relativeTo, warnSharesExposed } from './written.js';

export interface RotateOptions {
  domain: string;
  policy: string;
  out: string;
  sharesDir?: string;
  rebundle?: string[];
  rebundleDir?: string;
  share?: string[];
  identity?: string[];
  ceremony?: string;
  retireHsm?: string[];
  postQuantum?: boolean;
  json?: boolean;
}

export async function run(ctx: Context, o: RotateOptions): Promise<void> {
  const rel = relativeTo(ctx);
  const r = await domainRotate(ctx, {
    domain: o.domain,
    policyPath: o.policy,
    out: o.out,
    sharesDir: o.sharesDir,
    rebundle: o.rebundle ?? [],
    rebundleDir: o.rebundleDir,
    shares: o.share ?? [],
    identities: o.identity ?? [],
    ceremony: o.ceremony,
    retire: o.retireHsm,
    postQuantum: o.postQuantum,
  });
  warnSharesExposed(ctx, r.shareFiles);
  if (o.json) {
    return ctx.out.json({
      ...domainJson(rel, r),
      replaced: { file: rel(r.old.path), generation: r.old.body.generation },
      quorum: r.custodians,
      shares: r.shareFiles.map((s) => ({
        custodian: s.custodian,
        index: s.index,
        path: rel(s.path),
      })),
      resealed: r.resealed.map((b) => ({ bundleId: b.bundleId, from: rel(b.from), to: rel(b.to) })),
      provedWith: r.provedWith,
    });
  }
  ctx.out.data([
    ...domainSummary(rel(r.domainPath), r.body, r.enrolments),
    `replaces generation ${r.old.body.generation} (${rel(r.old.path)}, now marked as replaced)`,
    `quorum of the old custodians: ${r.custodians.join(', ')}`,
    `proved by recombining the new shares of ${r.provedWith.join(', ')}`,
    '',
    'new shares, one per custodian:',
    ...shareLines(r.shareFiles.map((s) => ({ ...s, path: rel(s.path) }))),
    ...(r.resealed.length
      ? [
          '',
          're-sealed to the new generation:',
          ...r.resealed.map((b) => `  ${rel(b.from)} -> ${rel(b.to)}`),
        ]
      : []),
    '',
    'next:',
    "  1. hand each custodian their new share, then delete this host's copies",
    `  2. copy ${rel(r.domainPath)} and ${rel(r.old.path)} to every backup host`,
    '  3. replace the old bundles with the re-sealed ones wherever they are kept;',
    '     a copy kept elsewhere still opens with the old shares',
  ]);
}
