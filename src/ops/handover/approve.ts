/**
 * custos handover approve: one of the policy's approvers signs the request, one approval at a
 * time.
 */
import { createPrivateKey } from 'node:crypto';
import { resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { approvalSignedBytes, serialiseRequest } from '../../core/handover.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { signerFromSecret } from '../../crypto/ed25519.js';
import { readInputFile, replaceFileAtomically } from '../../io/files.js';
import { acquireLock, describeOwner, type HeldLock } from '../../io/lock.js';
import { identityPassphrase } from '../shares.js';
import { audited } from '../audit.js';
import type { Context } from '../context.js';
import { loadRequest, type LoadedRequest } from './load.js';

export interface ApproveInput {
  request: string;
  as: string;
  key: string;
  /** The legal document as the approver reviewed it: must match the request's digest. */
  document?: string;
}

/** How long an approval waits for another one of the same request being written. */
const LOCK_WAIT_MS = 10_000;

export interface Approved {
  request: LoadedRequest;
  approver: string;
  organisation: string;
}

/** Signs the approval into the request and records it in the audit log, or its refusal. */
export function approve(ctx: Context, req: ApproveInput): Promise<Approved> {
  return audited(ctx, 'handover-approve', async (note) => {
    note.detail = { as: req.as };
    const done = await approveOnce(ctx, req);
    note.bundle = done.request.body.bundle.bundleId;
    note.artifacts = { request: done.request.digest };
    Object.assign(note.detail, {
      approver: done.approver,
      organisation: done.organisation,
      matter: done.request.body.matter,
    });
    return done;
  });
}

async function approveOnce(ctx: Context, req: ApproveInput): Promise<Approved> {
  // Approvers may sign at the same moment: one at a time, so no approval is lost in the rewrite.
  const path = `${resolve(ctx.cwd, req.request)}.lock`;
  let lock: HeldLock;
  try {
    lock = acquireLock(path, {
      command: 'handover approve',
      waitMs: LOCK_WAIT_MS,
      busy: (owner) =>
        new CustosError(
          'E_FILE',
          `another approval of ${req.request} is being written (${describeOwner(owner)})`,
          `try again in a moment; if no custos is running, remove ${path}`,
        ),
    });
  } catch (e) {
    if (e instanceof CustosError) throw e;
    throw new CustosError(
      'E_FILE',
      `could not lock ${req.request} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      'check its directory is writable',
    );
  }
  try {
    return await approveLocked(ctx, req);
  } finally {
    lock.release();
  }
}

async function approveLocked(ctx: Context, req: ApproveInput): Promise<Approved> {
  const r = loadRequest(ctx, req.request);
  const pem = readInputFile(resolve(ctx.cwd, req.key), 'approver key').toString('utf8');
  const passphrase = pem.includes('ENCRYPTED PRIVATE KEY')
    ? await identityPassphrase(ctx, req.key, 'approval key')
    : undefined;
  let raw: Buffer;
  let signer;
  try {
    const pkcs8 = createPrivateKey({
      key: pem,
      ...(passphrase !== undefined ? { passphrase } : {}),
    }).export({ format: 'der', type: 'pkcs8' });
    signer = signerFromSecret(pkcs8);
    raw = signer.publicKey;
  } catch (e) {
    if (e instanceof CustosError) throw e;
    throw new CustosError(
      'E_IDENTITY',
      passphrase !== undefined
        ? `the passphrase does not open ${req.key}, or it is not an Ed25519 key`
        : `${req.key} is not an Ed25519 private key in PEM form`,
      'pass the approval key made with openssl genpkey -algorithm ed25519 (and its passphrase, if it has one)',
    );
  }
  const approver = r.policy.approvers.find((a) => a.key === raw.toString('base64'));
  if (!approver)
    throw new CustosError(
      'E_IDENTITY',
      `the key in ${req.key} belongs to no approver in the request's policy (${r.body.policy.name})`,
      'use the approval key whose public half the policy lists',
    );
  if (approver.role !== req.as) {
    throw new CustosError(
      'E_USAGE',
      `${approver.id} approves as "${approver.role}", not "${req.as}"`,
      `run again with --as ${approver.role}`,
    );
  }
  if (req.document) {
    const seen = sha256Hex(readInputFile(resolve(ctx.cwd, req.document), 'legal document'));
    if (seen !== r.body.document.sha256) {
      throw new CustosError(
        'E_HANDOVER_REFUSED',
        `${req.document} is not the document the request names (SHA-256 ${seen.slice(0, 16)}…, the request has ${r.body.document.sha256.slice(0, 16)}…)`,
        'do not approve: the document you reviewed is not the one in the request; nothing was written',
      );
    }
  }
  if (r.approvals.some((a) => a.approver === approver.id))
    throw new CustosError(
      'E_USAGE',
      `${approver.id} has already approved this request`,
      'nothing more is needed from this approver',
    );
  const approval = { role: approver.role, approver: approver.id, time: new Date().toISOString() };
  const signature = signer.sign(approvalSignedBytes(r.digest, approval)).toString('base64');
  const approvals = [...r.approvals, { ...approval, signature }];
  replaceFileAtomically(
    resolve(ctx.cwd, req.request),
    serialiseRequest(r.signed, approvals),
    0o644,
  );
  return {
    request: { ...r, approvals },
    approver: approver.id,
    organisation: approver.organisation,
  };
}
