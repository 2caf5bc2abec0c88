/**
 * custos handover request: the legal process, the keys it names and the recipient, recorded in a
 * request file, refused at once when the policy the backup was made under does not allow it.
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, relative, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { hasUnsafeText } from '../../core/text.js';
import { isTimestamp } from '../../core/fields.js';
import { parsePolicy } from '../../core/policy.js';
import {
  requestRules,
  requestSignedBytes,
  serialiseRequest,
  type RequestBody,
} from '../../core/handover.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { readRsaPublicKey, requestRecipient, usableExponent } from '../../crypto/rsa-aes-wrap.js';
import { createFilesAtomically, readInputFile, refuseExisting } from '../../io/files.js';
import { loadBundle } from '../shares.js';
import { requireKeyBundle } from '../restore.js';
import { audited } from '../audit.js';
import type { Context } from '../context.js';
import { inScope, refuse, requirePolicyOfBundle, type LoadedRequest } from './load.js';

export interface RequestInput {
  bundle: string;
  policy: string;
  matter: string;
  authority: string;
  basis: string;
  document: string;
  keys: string[];
  recipient: string;
  out: string;
  noticeGiven?: string;
}

/** Makes the request file and records it in the audit log, whether it was made or refused. */
export function makeRequest(ctx: Context, req: RequestInput): Promise<LoadedRequest> {
  return audited(ctx, 'handover-request', async (note) => {
    note.detail = {
      matter: req.matter,
      authority: req.authority,
      basis: req.basis,
      keys: req.keys,
    };
    const made = writeRequest(ctx, req);
    note.bundle = made.body.bundle.bundleId;
    note.artifacts = {
      request: made.digest,
      document: made.body.document.sha256,
      policy: made.body.policy.sha256,
      recipient: made.body.recipient.sha256,
    };
    return made;
  });
}

function writeRequest(ctx: Context, req: RequestInput): LoadedRequest {
  for (const [flag, value] of [
    ['--matter', req.matter],
    ['--authority', req.authority],
    ['--basis', req.basis],
    ['--document', basename(req.document)],
  ] as const) {
    if (hasUnsafeText(value) || value.trim() === '')
      throw new CustosError(
        'E_USAGE',
        `${flag} must be printable text (no control characters or line breaks)`,
        'give it as plain text',
      );
  }
  const out = resolve(ctx.cwd, req.out);
  refuseExisting([out]);
  const policyText = readInputFile(resolve(ctx.cwd, req.policy), 'policy file').toString('utf8');
  const policy = parsePolicy(req.policy, policyText);
  if (!policy.handover)
    throw new CustosError(
      'E_POLICY',
      `${req.policy} has no handover section, so it allows no handover`,
      "use the institution's custodial policy (see policies/dfs-custodial.yaml)",
    );
  const bundle = loadBundle(ctx, req.bundle);
  requireKeyBundle(bundle);
  requirePolicyOfBundle(bundle, req.policy, sha256Hex(Buffer.from(policyText, 'utf8')));
  const scope = req.keys.map((label) => {
    const found = bundle.body.keys.filter((k) => k.label === label);
    if (found.length !== 1) {
      throw new CustosError(
        'E_USAGE',
        found.length
          ? `label "${label}" names ${found.length} keys in ${req.bundle}`
          : `${req.bundle} has no key labelled "${label}"`,
        'name each key by a label the bundle holds exactly once (custos inventory shows them)',
      );
    }
    const k = found[0] as (typeof found)[number];
    return {
      class: k.class,
      keyType: k.keyType,
      label: k.label,
      id: k.id,
      checkValue: k.checkValue,
    };
  });
  if (new Set(req.keys).size !== req.keys.length)
    throw new CustosError('E_USAGE', 'a key is named twice in --keys', 'name each key once');
  const pem = readInputFile(resolve(ctx.cwd, req.recipient), 'recipient public key').toString(
    'utf8',
  );
  const rsa = readRsaPublicKey(pem);
  if (!rsa)
    throw new CustosError(
      'E_USAGE',
      `${req.recipient} is not an RSA public key in PEM form`,
      'ask the recipient for their RSA public key (openssl pkey -in KEY -pubout)',
    );
  if (!usableExponent(rsa)) {
    throw new CustosError(
      'E_USAGE',
      `${req.recipient} has public exponent 0x${rsa.publicExponent.toString('hex')}; custos wraps only to RSA keys with an odd exponent of at least 65537`,
      'ask the recipient for a key made with the usual exponent 65537 (openssl genpkey -algorithm RSA)',
    );
  }
  const noticeGiven = req.noticeGiven ?? new Date().toISOString();
  // A time with its zone, never in the future: the notice period counts from it.
  if (
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(noticeGiven) ||
    Number.isNaN(Date.parse(noticeGiven))
  ) {
    throw new CustosError(
      'E_USAGE',
      `--notice-given ${noticeGiven} is not a time with its zone`,
      'give it as 2026-12-01T09:00:00Z (or with an offset, +01:00)',
    );
  }
  if (Date.parse(noticeGiven) > Date.now() + 60_000)
    throw new CustosError(
      'E_USAGE',
      `--notice-given ${noticeGiven} is in the future`,
      'give the time the institution was actually given notice',
    );
  // Recorded in UTC as toISOString writes it, the one form a request's reader accepts (years 0000
  // to 9999).
  const noticeRecorded = new Date(noticeGiven).toISOString();
  if (!isTimestamp(noticeRecorded))
    throw new CustosError(
      'E_USAGE',
      `--notice-given ${noticeGiven} is not a time custos can record`,
      'give it as 2026-12-01T09:00:00Z (or with an offset, +01:00)',
    );
  const document = readInputFile(resolve(ctx.cwd, req.document), 'legal document');
  const body: RequestBody = {
    requestId: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
    requestedBy: ctx.actor,
    matter: req.matter,
    authority: req.authority,
    basis: req.basis,
    document: { name: basename(req.document), sha256: sha256Hex(document) },
    bundle: {
      file: relative(dirname(out), resolve(ctx.cwd, req.bundle)),
      bundleId: bundle.body.bundleId,
      bundleDigest: bundle.digest,
    },
    scope,
    recipient: { spki: rsa.spki.toString('base64'), sha256: sha256Hex(rsa.spki), bits: rsa.bits },
    noticeGiven: noticeRecorded,
    policy: {
      name: basename(req.policy),
      sha256: sha256Hex(Buffer.from(policyText, 'utf8')),
      text: policyText,
    },
  };
  // The same check every later step makes: a key none of them would accept is refused now.
  requestRecipient(req.recipient, body.recipient);
  const unmet = requestRules(policy, body, inScope(policy)).filter((r) => !r.met);
  if (unmet.length > 0)
    throw refuse(
      `the policy does not allow this request (${unmet.map((r) => r.rule).join(', ')})`,
      unmet,
    );
  const signed = requestSignedBytes(body);
  const file = serialiseRequest(signed, []);
  createFilesAtomically([{ path: out, data: file, mode: 0o644 }]);
  return { path: req.out, file, body, signed, approvals: [], digest: sha256Hex(signed), policy };
}
