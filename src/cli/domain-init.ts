/**
 * custos domain init: the domain file, one share per custodian, and the source HSMs enrolled now.
 */
import { domainInit } from '../ops/domain/init.js';
import type { Context } from '../ops/context.js';
import { domainJson, domainSummary, shareLines } from './domain-view.js';
import { relativeTo, sharesJson, warnSharesExposed } from './written.js';

export interface InitOptions {
  policy: string;
  out: string;
  sharesDir?: string;
  hsm?: string[];
  postQuantum?: boolean;
  json?: boolean;
}

export async function run(ctx: Context, o: InitOptions): Promise<void> {
  const r = await domainInit(ctx, {
    policyPath: o.policy,
    out: o.out,
    sharesDir: o.sharesDir,
    hsms: o.hsm ?? [],
    postQuantum: o.postQuantum,
  });
  warnSharesExposed(ctx, r.shareFiles);
  const rel = relativeTo(ctx);
  if (o.json) {
    return ctx.out.json({
      ...domainJson(rel, r),
      digest: r.digest,
      seal: r.body.seal,
      threshold: r.body.escrow.threshold,
      total: r.body.escrow.total,
      shares: sharesJson(r.shareFiles, rel),
      enrolled: r.enrolments.map((e) => ({ token: e.source, keyId: e.keyId })),
      provedWith: r.provedWith,
    });
  }
  ctx.out.data([
    ...domainSummary(rel(r.domainPath), r.body, r.enrolments),
    `proved by recombining the shares of ${r.provedWith.join(', ')}`,
    '',
    'shares, one per custodian:',
    ...shareLines(r.shareFiles.map((s) => ({ ...s, path: rel(s.path) }))),
    '',
    'next:',
    '  1. write down the domain id; custodians check it when they act',
    "  2. hand each custodian their share file, then delete this host's copies",
    r.enrolments.length
      ? `  3. back up: custos backup --hsm ${r.enrolments[0]?.source.label} --domain ${rel(r.domainPath)} --out FILE`
      : `  3. enrol each source HSM: custos domain enroll --domain ${rel(r.domainPath)} --hsm NAME`,
  ]);
}
