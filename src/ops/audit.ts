/** Every operation leaves one audit entry: what was done, by whom, on what, and how it ended. */
import { CustosError } from '../core/errors.js';
import type { AuditFacts, Detail } from '../core/audit/entry.js';
import type { Signer } from '../crypto/ed25519.js';
import { appendAudit } from '../io/audit-log.js';
import { readInputFile } from '../io/files.js';
import { sha256Hex } from '../crypto/check-values.js';
import type { Context } from './context.js';
import type { Sealed } from './escrow.js';

/**
 * What an operation learns as it runs, for its entry. Only names, ids and digests: never a secret.
 */
export interface AuditNote {
  ceremony?: string;
  bundle?: string;
  artifacts: Record<string, string>;
  detail: Detail;
  /** The ceremony key, for entries a ceremony signs. */
  signer?: Signer;
}

/**
 * A run that seals a secret for the custodians of a policy (a backup, a PIN escrow), recorded as
 * `op` like any `audited` run. Its entry names the HSM and the policy whatever the outcome; once
 * sealed, the bundle's id, the digest of the bundle file (as `artifact`) and of each share file,
 * and the split. `seal` adds to the detail what only it knows.
 */
export function auditedSealing<T extends Sealed>(
  ctx: Context,
  op: string,
  artifact: string,
  req: { hsm: string; policyPath: string },
  seal: (note: AuditNote) => Promise<T>,
): Promise<T> {
  return audited(ctx, op, async (note) => {
    note.detail = { hsm: req.hsm, policy: req.policyPath };
    const sealed = await seal(note);
    note.bundle = sealed.body.bundleId;
    note.artifacts[artifact] = sealed.bundleFileDigest;
    for (const s of sealed.shareFiles) note.artifacts[`share:${s.custodian}`] = s.digest;
    note.detail.threshold = sealed.body.escrow.threshold;
    note.detail.total = sealed.body.escrow.total;
    return sealed;
  });
}

/** SHA-256 of a file custos just wrote or read, for the artifacts of an entry. */
export function fileDigest(path: string): string {
  return sha256Hex(readInputFile(path, 'file'));
}

const REFUSALS = new Set([
  'E_CANCELLED',
  'E_HANDOVER_REFUSED',
  'E_QUORUM',
  'E_SUBMISSION_REJECTED',
  'E_SHARE_REJECTED',
]);

export function record(ctx: Context, facts: Omit<AuditFacts, 'actor'>, signer?: Signer): void {
  appendAudit(ctx.auditLog, { ...facts, actor: ctx.actor }, signer);
}

/**
 * Runs an operation and appends its entry, whether it succeeded or failed. A failure to write the
 * entry after a successful operation is an error of its own: the operation happened, unrecorded.
 */
export async function audited<T>(
  ctx: Context,
  op: string,
  run: (note: AuditNote) => Promise<T>,
): Promise<T> {
  const note: AuditNote = { artifacts: {}, detail: {} };
  let result: T;
  try {
    result = await run(note);
  } catch (e) {
    const code = e instanceof CustosError ? e.code : 'E_INTERNAL';
    // Refused: a rule or a person said no before anything was done. Failed: it went wrong.
    // Error messages name files, tokens and counts, never secrets (see errors.ts): the reason is
    // kept.
    if (e instanceof CustosError) {
      note.detail.error = e.message;
      if (e.details.length > 0) note.detail.problems = [...e.details];
    }
    try {
      record(
        ctx,
        { op, outcome: REFUSALS.has(code) ? 'refused' : 'failed', code, ...facts(note) },
        note.signer,
      );
    } catch (logError) {
      if (logError instanceof CustosError)
        ctx.out.warn(`${logError.message}; the failure reported below is not in the audit log`);
    }
    throw e;
  }
  recordDone(ctx, { op, outcome: 'ok', ...facts(note) }, note.signer);
  return result;
}

/**
 * Records an operation that has already happened: failing to append is an error that says it
 * happened.
 */
export function recordDone(ctx: Context, entry: Omit<AuditFacts, 'actor'>, signer?: Signer): void {
  try {
    record(ctx, entry, signer);
  } catch (e) {
    if (e instanceof CustosError) {
      throw new CustosError(
        'E_AUDIT_WRITE',
        `${entry.op} completed, but ${e.message}`,
        `record by hand that ${entry.op} ran at ${new Date().toISOString()}, then fix the log (custos audit verify ${ctx.auditLog})`,
      );
    }
    throw e;
  }
}

function facts(note: AuditNote): Pick<AuditFacts, 'ceremony' | 'bundle' | 'artifacts' | 'detail'> {
  return {
    ...(note.ceremony ? { ceremony: note.ceremony } : {}),
    ...(note.bundle ? { bundle: note.bundle } : {}),
    ...(Object.keys(note.artifacts).length ? { artifacts: note.artifacts } : {}),
    ...(Object.keys(note.detail).length ? { detail: note.detail } : {}),
  };
}
