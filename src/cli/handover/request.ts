/** custos handover request: the request file written, and what each party does next. */
import { makeRequest, type RequestInput } from '../../ops/handover/request.js';
import type { Context } from '../../ops/context.js';
import { count } from '../render.js';

export async function run(ctx: Context, o: RequestInput & { json?: boolean }): Promise<void> {
  const r = await makeRequest(ctx, o);
  if (o.json)
    return ctx.out.json({
      request: o.out,
      digest: r.digest,
      body: { ...r.body, policy: { name: r.body.policy.name, sha256: r.body.policy.sha256 } },
    });
  ctx.out.data([
    `handover request ${o.out} written (digest ${r.digest})`,
    `  matter ${r.body.matter}, ${r.body.basis} from ${r.body.authority}; document ${r.body.document.name} (sha256 ${r.body.document.sha256})`,
    `  ${count(r.body.scope.length, 'key')}: ${r.body.scope.map((k) => k.label).join(', ')}; to RSA-${r.body.recipient.bits} key ${r.body.recipient.sha256}`,
    `next: each approver runs  custos handover approve ${o.out} --as ROLE --key APPROVER-KEY.pem`,
    `      the ceremony lead runs  custos ceremony open --bundle BUNDLE --purpose handover --request ${o.out} --out CEREMONY`,
  ]);
}
