/** custos domain enroll: one more source HSM may make bundles for the domain. */
import { domainEnroll } from '../ops/domain/enroll.js';
import type { Context } from '../ops/context.js';
import { tokenName } from '../hsm/quirks.js';

export interface EnrollOptions {
  domain: string;
  hsm: string;
  endorser?: string;
  share?: string[];
  identity?: string[];
  json?: boolean;
}

export async function run(ctx: Context, o: EnrollOptions): Promise<void> {
  const r = await domainEnroll(ctx, {
    domain: o.domain,
    hsm: o.hsm,
    endorser: o.endorser,
    shares: o.share,
    identities: o.identity,
  });
  const { enrolment: e } = r;
  if (o.json)
    return ctx.out.json({
      domainId: r.domain.body.domainId,
      token: e.source,
      keyId: e.keyId,
      already: r.already,
      endorsedBy: r.endorsedBy,
    });
  ctx.out.data(
    r.already
      ? `token ${tokenName(e.source)} was already enrolled in domain ${r.domain.body.domainId}; nothing changed`
      : [
          `token ${tokenName(e.source)} is enrolled in domain ${r.domain.body.domainId}`,
          `  vouched for by ${r.endorsedBy}`,
          `  signing key id ${e.keyId} (on the token, never extractable)`,
          `copy the updated ${o.domain} to every backup host`,
        ],
  );
}
