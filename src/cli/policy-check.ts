/** custos policy check: validates a policy file and says what it allows, rule by rule. */
import { resolve } from 'node:path';
import { parsePolicy } from '../core/policy.js';
import { readInputFile } from '../io/files.js';
import type { Context } from '../ops/context.js';
import { count } from './render.js';

export async function run(ctx: Context, o: { file: string; json?: boolean }): Promise<void> {
  const policy = parsePolicy(
    o.file,
    readInputFile(resolve(ctx.cwd, o.file), 'policy file').toString('utf8'),
  );
  if (o.json)
    return ctx.out.json({
      ...policy,
      handover: policy.handover
        ? { ...policy.handover, notice: policy.handover.notice.text }
        : null,
    });
  const h = policy.handover;
  ctx.out.data([
    `${o.file} is valid: ${policy.threshold} of ${count(policy.custodians.length, 'custodian')} restore a backup`,
    `  custodians: ${policy.custodians.map((c) => c.id).join(', ')}`,
    `  keys: include ${policy.keys.include.join(', ')}${policy.keys.exclude.length ? `; exclude ${policy.keys.exclude.join(', ')}` : ''}`,
    `  approvers: ${policy.approvers.map((a) => `${a.id} (${a.role}, ${a.organisation})`).join(', ') || 'none'}`,
    ...(h
      ? [
          'handover:',
          `  legal bases: ${h.bases.join(', ')}`,
          ...h.approvals.map(
            (a) =>
              `  approvals: ${a.count} × ${a.role}${a.organisations > 1 ? ` from ${a.organisations} distinct organisations` : ''}`,
          ),
          `  notice: ${h.notice.text} before any release`,
          `  quorum: ${h.quorum} custodians in a handover ceremony`,
          `  recipients: RSA of at least ${h.recipients.minRsaBits} bits${h.recipients.allow ? `, one of ${count(h.recipients.allow.length, 'allowed key')}` : ''}`,
          `  scope: at most ${count(h.maxKeys, 'key')} per request, from include ${h.keys.include.join(', ')}${h.keys.exclude.length ? ` exclude ${h.keys.exclude.join(', ')}` : ''}`,
        ]
      : ['handover: not allowed (no handover section)']),
  ]);
}
