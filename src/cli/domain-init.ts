/**
 * custos domain init: the domain file, one share per custodian, and the source HSMs enrolled now.
 */
import { relative } from 'node:path';
import { audited } from '../ops/audit.js';
import { domainInit } from '../ops/domain/init.js';
import type { Context } from '../ops/context.js';
import { domainSummary, shareLines } from './domain-view.js';
import { warnExposedShares } from './render.js';

export async function run(
  ctx: Context,
  o: {
    policy: string;
    out: string;
    sharesDir?: string;
    hsm?: string[];
    postQuantum?: boolean;
    json?: boolean;
  },
): Promise<void> {
  const r = await audited(ctx, 'domain-init', async (note) => {
    note.detail = { policy: o.policy };
    const done = await domainInit(ctx, {
      policyPath: o.policy,
      out: o.out,
      sharesDir: o.sharesDir,
      hsms: o.hsm ?? [],
      postQuantum: o.postQuantum,
    });
    note.detail.seal = done.body.seal.type;
    note.artifacts.domain = done.fileDigest;
    for (const s of done.shareFiles) note.artifacts[`share:${s.custodian}`] = s.digest;
    Object.assign(note.detail, {
      domainId: done.body.domainId,
      generation: done.body.generation,
      threshold: done.body.escrow.threshold,
      total: done.body.escrow.total,
      enrolled: done.enrolments.map((e) => e.source.label),
    });
    return done;
  });
  warnExposedShares(
    ctx.out,
    r.shareFiles.map((s) => s.path),
  );
  const rel = (p: string) => relative(ctx.cwd, p) || p;
  if (o.json) {
    return ctx.out.json({
      domain: rel(r.domainPath),
      domainId: r.body.domainId,
      generation: r.body.generation,
      digest: r.digest,
      seal: r.body.seal,
      threshold: r.body.escrow.threshold,
      total: r.body.escrow.total,
      shares: r.shareFiles.map((s) => ({
        custodian: s.custodian,
        name: s.name,
        index: s.index,
        path: rel(s.path),
      })),
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
