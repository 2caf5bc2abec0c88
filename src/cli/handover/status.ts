/** custos handover status: each rule of the policy, met or not, as a table. */
import { handoverStatus } from '../../ops/handover/status.js';
import type { Context } from '../../ops/context.js';
import { checkValueText, count } from '../render.js';

export async function run(
  ctx: Context,
  o: { request: string; ceremony?: string; json?: boolean },
): Promise<void> {
  const s = await handoverStatus(ctx, o.request, o.ceremony);
  const b = s.request.body;
  if (o.json)
    return ctx.out.json({
      request: s.request.digest,
      matter: b.matter,
      ready: s.checks.every((c) => c.met),
      rules: s.checks,
    });
  ctx.out.data([
    `request ${s.request.digest}`,
    `  matter ${b.matter}: ${b.basis} from ${b.authority}, document ${b.document.name} (sha256 ${b.document.sha256.slice(0, 16)}…)`,
    `  keys: ${b.scope.map((k) => `${k.label} (${checkValueText(k.checkValue)})`).join(', ')}`,
    `  policy ${b.policy.name} (sha256 ${b.policy.sha256.slice(0, 16)}…); requested by ${b.requestedBy} at ${b.created}`,
  ]);
  const mark = (met: boolean) =>
    met ? ctx.out.colour.green('met') : ctx.out.colour.red('NOT MET');
  ctx.out.table(
    ['rule', 'state', 'detail'],
    s.checks.map((c) => [c.rule, mark(c.met), c.detail]),
  );
  const unmet = s.checks.filter((c) => !c.met).length;
  ctx.out.data(
    unmet === 0
      ? `every rule is met: custos handover execute ${o.request} --ceremony ${o.ceremony} --out PACKAGE`
      : `${count(unmet, 'rule')} not met yet`,
  );
}
