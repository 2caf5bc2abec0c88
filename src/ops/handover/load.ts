/**
 * What every handover command shares: the request file as read and judged (its embedded policy
 * checked against its digest), the keys the policy puts in scope, the refusal that names each
 * unmet rule, and the rule that a bundle's handover rules are those of the policy it was made
 * under.
 */
import { resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { parsePolicy, isSelected, type Policy } from '../../core/policy.js';
import { parseRequest, type ParsedRequest, type RuleCheck } from '../../core/handover.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { requestRecipient } from '../../crypto/rsa-aes-wrap.js';
import { readInputFile } from '../../io/files.js';
import type { LoadedBundle } from '../shares.js';
import type { Context } from '../context.js';

export interface LoadedRequest extends ParsedRequest {
  path: string;
  /** The file as read and judged. */
  file: Buffer;
  digest: string;
  policy: Policy;
}

export function loadRequest(ctx: Context, path: string): LoadedRequest {
  const file = readInputFile(resolve(ctx.cwd, path), 'handover request');
  const parsed = parseRequest(path, file);
  if (sha256Hex(Buffer.from(parsed.body.policy.text, 'utf8')) !== parsed.body.policy.sha256) {
    throw new CustosError(
      'E_HANDOVER_FORMAT',
      `${path}: the policy it carries does not match its recorded digest`,
      'the request was edited; ask for the request as it was made',
    );
  }
  requestRecipient(path, parsed.body.recipient);
  const policy = parsePolicy(
    `${path} (embedded policy ${parsed.body.policy.name})`,
    parsed.body.policy.text,
  );
  return { ...parsed, path, file, digest: sha256Hex(parsed.signed), policy };
}

export function inScope(policy: Policy): (label: string) => boolean {
  return (label) => !!policy.handover && isSelected(label, policy.handover.keys);
}

export function refuse(message: string, unmet: readonly RuleCheck[]): CustosError {
  return new CustosError(
    'E_HANDOVER_REFUSED',
    message,
    'nothing was released and nothing was written; meet each rule named above, or ask for a request the policy allows',
    unmet.map((r) => `${r.rule}: ${r.detail}`),
  );
}

/**
 * The rules of a handover are those of the policy the backup was made under, whose digest the
 * bundle records (and the custodians' shares sign, through the bundle's digest): a request cannot
 * bring laxer rules of its own.
 */
export function requirePolicyOfBundle(
  bundle: LoadedBundle,
  policyName: string,
  policyDigest: string,
): void {
  const recorded = bundle.body.policy;
  if (!recorded) {
    throw new CustosError(
      'E_HANDOVER_REFUSED',
      `${bundle.path} records no policy, so no handover rules bind it`,
      'back up again under the custodial policy (custos backup --policy POLICY); the new bundle records it',
      [],
    );
  }
  if (recorded.sha256 !== policyDigest) {
    throw new CustosError(
      'E_HANDOVER_REFUSED',
      `${policyName} is not the policy ${bundle.path} was made under (that was ${recorded.name}, sha256 ${recorded.sha256.slice(0, 16)}…)`,
      'use the policy file the backup was made under, unchanged; nothing was written',
    );
  }
}
