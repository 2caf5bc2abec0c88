/** custos domain show: a domain file, checked and described. */
import { loadDomain } from '../ops/domain/load.js';
import type { Context } from '../ops/context.js';
import { domainSummary, shareLines } from './domain-view.js';

export async function run(ctx: Context, o: { domain: string; json?: boolean }): Promise<void> {
  const d = loadDomain(ctx, o.domain);
  const { body } = d;
  if (o.json) {
    return ctx.out.json({
      domainId: body.domainId,
      generation: body.generation,
      digest: d.digest,
      created: body.created,
      policy: body.policy,
      seal: body.seal,
      threshold: body.escrow.threshold,
      custodians: body.escrow.custodians,
      enrolled: d.enrolments.map((e) => ({
        token: e.source,
        keyId: e.keyId,
        enrolled: e.enrolled,
        endorser: e.endorser,
      })),
      supersedes: body.supersedes ?? null,
      replacedBy: d.superseded
        ? {
            generation: d.superseded.by.generation,
            file: d.superseded.by.file,
            time: d.superseded.time,
          }
        : null,
    });
  }
  ctx.out.data([
    ...domainSummary(o.domain, body, d.enrolments),
    `  made        ${body.created} under policy ${body.policy.name}`,
    d.superseded
      ? `  REPLACED    by generation ${d.superseded.by.generation} (${d.superseded.by.file}) on ${d.superseded.time}`
      : '  current     yes: backups may be sealed to it',
    'custodians:',
    ...shareLines(
      body.escrow.custodians.map((c) => ({ custodian: c.id, index: c.index, path: c.name })),
    ),
  ]);
}
