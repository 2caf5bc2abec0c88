/**
 * A handover request, `custos-handover-request/1` (docs/legal-process.md): the legal case, the
 * document's digest, the keys named, the recipient, and the policy in force, followed by
 * approvals signed over the request's digest. Any change to the request after an approval
 * makes that approval fail, and the ceremony is bound to the same digest.
 */
import { CustosError } from './errors.js';
import { oneCodeRules } from './signed-file.js';
import { readKeyName } from './key-name.js';
import { BASE64, FieldReader, readCheckValue } from './fields.js';
import {
  envelopeBytes,
  isCanonical,
  openEnvelope,
  parseBoundedJson,
  withTrailers,
} from './envelope.js';
import { BUNDLE_ID } from './bundle.js';
import type { CheckValue } from './keys.js';
import type { Policy } from './policy.js';
import type { VerifySignature } from './quorum.js';

export const REQUEST_FORMAT = 'custos-handover-request/1';
const APPROVAL_TAG = 'approval';
const SHA256 = /^[0-9a-f]{64}$/;

export interface ScopedKey {
  class: 'secret' | 'private';
  keyType: string;
  label: string;
  id: string;
  checkValue: CheckValue;
}

export interface RequestBody {
  requestId: string;
  created: string;
  requestedBy: string;
  matter: string;
  authority: string;
  basis: string;
  document: { name: string; sha256: string };
  bundle: { file: string; bundleId: string; bundleDigest: string };
  scope: ScopedKey[];
  /** The recipient's RSA public key (SPKI DER, base64), its SHA-256 and size. */
  recipient: { spki: string; sha256: string; bits: number };
  /** When the institution was given notice of the legal process. */
  noticeGiven: string;
  /** The policy in force, verbatim, so the rules cannot change under an approved request. */
  policy: { name: string; sha256: string; text: string };
}

export interface Approval {
  role: string;
  approver: string;
  time: string;
  /** Ed25519 over approvalSignedBytes, base64. */
  signature: string;
}

export interface ParsedRequest {
  body: RequestBody;
  /** The bytes approvals and the ceremony are bound to (header and body). */
  signed: Buffer;
  approvals: Approval[];
}

export function requestSignedBytes(body: RequestBody): Buffer {
  return envelopeBytes(REQUEST_FORMAT, body);
}

export function approvalSignedBytes(requestDigest: string, a: Omit<Approval, 'signature'>): Buffer {
  return Buffer.from(
    `custos-handover-approval/1\nrequest: ${requestDigest}\nrole: ${a.role}\napprover: ${a.approver}\ntime: ${a.time}\n`,
    'utf8',
  );
}

/** The value of an approval line: its four members, in this order, as JSON with no whitespace. */
function approvalLine(a: Approval): string {
  return JSON.stringify({
    role: a.role,
    approver: a.approver,
    time: a.time,
    signature: a.signature,
  });
}

export function serialiseRequest(signed: Buffer, approvals: readonly Approval[]): Buffer {
  return withTrailers(
    signed,
    approvals.map((a) => ({ tag: APPROVAL_TAG, value: approvalLine(a) })),
  );
}

const HINT =
  'the request is damaged or is not a custos handover request; ask whoever made it for their copy';

/**
 * A request may carry no approval yet, so no trailer is required; every trailer there is must be an
 * approval.
 */
const RULES = oneCodeRules(REQUEST_FORMAT, 'handover request', 'E_HANDOVER_FORMAT', HINT, {
  body: 'request body',
});

/**
 * Parses a request; `signed` is the file's own bytes of header and body, so its digest is the
 * digest of what is on disk.
 */
export function parseRequest(where: string, file: Buffer): ParsedRequest {
  const opened = openEnvelope(where, file, RULES);
  const r = new FieldReader('E_HANDOVER_FORMAT', where, HINT);
  const body = readBody(r, opened.json);
  if (!isCanonical(opened, body))
    throw new CustosError(
      'E_HANDOVER_FORMAT',
      `${where}: the request body is not in custos's form (it was edited by hand)`,
      HINT,
    );
  const approvals = opened.trailers.map((t, i): Approval => {
    const path = `approval ${i + 1}`;
    if (t.tag !== APPROVAL_TAG) throw r.fail(path, 'is not an approval line');
    const parsed = parseBoundedJson(t.value);
    if ('problem' in parsed) throw r.fail(path, parsed.problem);
    const a = r.object(parsed.value, path);
    const approval = {
      role: r.string(a, 'role', path),
      approver: r.string(a, 'approver', path),
      time: r.string(a, 'time', path),
      signature: r.base64Of(a, 'signature', path, 64, 'an Ed25519 signature (64 bytes)'),
    };
    // Only the line custos writes: no other member, order, spacing or escaping of the same
    // approval.
    if (approvalLine(approval) !== t.value)
      throw r.fail(path, "is not in custos's form (it was edited by hand)");
    return approval;
  });
  return { body, signed: opened.authenticated, approvals };
}

function readBody(r: FieldReader, v: unknown): RequestBody {
  const o = r.object(v, 'body');
  const doc = r.object(o.document, 'document');
  const bundle = r.object(o.bundle, 'bundle');
  const rec = r.object(o.recipient, 'recipient');
  const pol = r.object(o.policy, 'policy');
  return {
    requestId: r.string(o, 'requestId', 'body', /^[0-9a-f]{32}$/),
    created: r.timestamp(o, 'created', 'body'),
    requestedBy: r.string(o, 'requestedBy', 'body'),
    matter: r.string(o, 'matter', 'body'),
    authority: r.string(o, 'authority', 'body'),
    basis: r.string(o, 'basis', 'body'),
    document: {
      name: r.string(doc, 'name', 'document'),
      sha256: r.string(doc, 'sha256', 'document', SHA256),
    },
    bundle: {
      file: r.string(bundle, 'file', 'bundle'),
      bundleId: r.string(bundle, 'bundleId', 'bundle', BUNDLE_ID),
      bundleDigest: r.string(bundle, 'bundleDigest', 'bundle', SHA256),
    },
    scope: r.array(o.scope, 'scope').map((k, i) => {
      const p = `scope[${i}]`;
      const ko = r.object(k, p);
      return {
        ...readKeyName(r, ko, p),
        checkValue: readCheckValue(r, ko.checkValue, `${p}.checkValue`),
      };
    }),
    recipient: {
      spki: r.string(rec, 'spki', 'recipient', BASE64),
      sha256: r.string(rec, 'sha256', 'recipient', SHA256),
      bits: r.integer(rec, 'bits', 'recipient', 1024, 16384),
    },
    noticeGiven: r.timestamp(o, 'noticeGiven', 'body'),
    policy: {
      name: r.string(pol, 'name', 'policy'),
      sha256: r.string(pol, 'sha256', 'policy', SHA256),
      text: r.string(pol, 'text', 'policy'),
    },
  };
}

// ---------------------------------------------------------------- the rules

export interface RuleCheck {
  rule: string;
  met: boolean;
  detail: string;
}

export interface CeremonyFacts {
  purpose: string;
  request?: string;
  bundleId: string;
  bundleDigest: string;
  accepted: number;
  expired: boolean;
}

/** The rules a request must meet when it is made: basis, scope, recipient. */
export function requestRules(
  policy: Policy,
  body: Pick<RequestBody, 'basis' | 'scope' | 'recipient'>,
  inPolicyScope: (label: string) => boolean,
): RuleCheck[] {
  const rules = policy.handover;
  if (!rules)
    return [
      {
        rule: 'policy',
        met: false,
        detail: 'the policy has no handover section: it allows no handover',
      },
    ];
  const outside = body.scope.filter((k) => !inPolicyScope(k.label)).map((k) => k.label);
  const allowed = rules.recipients.allow;
  return [
    {
      rule: 'legal basis',
      met: rules.bases.includes(body.basis),
      detail: rules.bases.includes(body.basis)
        ? `${body.basis} is an accepted basis`
        : `${body.basis} is not an accepted basis (accepted: ${rules.bases.join(', ')})`,
    },
    {
      rule: 'scope',
      met: body.scope.length >= 1 && body.scope.length <= rules.maxKeys && outside.length === 0,
      detail: outside.length
        ? `the policy never allows handing over ${outside.join(', ')}`
        : `${body.scope.length} key${body.scope.length === 1 ? '' : 's'} named (at most ${rules.maxKeys} in one request)`,
    },
    {
      rule: 'recipient',
      met:
        body.recipient.bits >= rules.recipients.minRsaBits &&
        (!allowed || allowed.includes(body.recipient.sha256)),
      detail:
        body.recipient.bits < rules.recipients.minRsaBits
          ? `RSA-${body.recipient.bits} is below the policy's ${rules.recipients.minRsaBits} bits`
          : allowed && !allowed.includes(body.recipient.sha256)
            ? `recipient key ${body.recipient.sha256.slice(0, 16)}… is not on the policy's allow list`
            : `RSA-${body.recipient.bits}, sha256 ${body.recipient.sha256.slice(0, 16)}…`,
    },
  ];
}

/**
 * Every rule of the policy for this request, now: what it asks for, and the approvals, notice and
 * ceremony it has. Only verified approvals count; a bad one is listed as a rule that fails.
 */
export function evaluateRequest(
  parsed: ParsedRequest,
  policy: Policy,
  digest: string,
  verify: VerifySignature,
  now: Date,
  inPolicyScope: (label: string) => boolean,
  ceremony?: CeremonyFacts,
  bundleThreshold?: number,
): RuleCheck[] {
  const checks = requestRules(policy, parsed.body, inPolicyScope);
  const rules = policy.handover;
  if (!rules) return checks;
  const valid: { role: string; organisation: string; approver: string }[] = [];
  for (const a of parsed.approvals) {
    const approver = policy.approvers.find((x) => x.id === a.approver);
    const ok =
      !!approver &&
      approver.role === a.role &&
      verify(
        Buffer.from(approver.key, 'base64'),
        approvalSignedBytes(digest, a),
        Buffer.from(a.signature, 'base64'),
      );
    if (!ok) {
      checks.push({
        rule: `approval by ${a.approver}`,
        met: false,
        detail: approver
          ? 'its signature does not verify: the request was changed after this approval, or the approval was forged'
          : `${a.approver} is not an approver in the policy`,
      });
    } else if (!valid.some((v) => v.approver === a.approver)) {
      valid.push({ role: a.role, organisation: approver.organisation, approver: a.approver });
    }
  }
  for (const rule of rules.approvals) {
    const mine = valid.filter((v) => v.role === rule.role);
    const orgs = new Set(mine.map((v) => v.organisation)).size;
    checks.push({
      rule: `approvals: ${rule.role}`,
      met: mine.length >= rule.count && orgs >= rule.organisations,
      detail: `${mine.length} of ${rule.count}${rule.organisations > 1 ? `, from ${orgs} of ${rule.organisations} distinct organisations` : ''}${mine.length ? ` (${mine.map((m) => m.approver).join(', ')})` : ''}`,
    });
  }
  const ends = Date.parse(parsed.body.noticeGiven) + rules.notice.ms;
  const left = ends - now.getTime();
  checks.push({
    rule: 'notice period',
    met: left <= 0,
    detail:
      left <= 0
        ? `${rules.notice.text} from ${parsed.body.noticeGiven}: ended ${new Date(ends).toISOString()}`
        : `${rules.notice.text} from ${parsed.body.noticeGiven}: ${Math.ceil(left / 3_600_000)} h still to run (until ${new Date(ends).toISOString()})`,
  });
  if (ceremony) {
    const need = Math.max(rules.quorum, bundleThreshold ?? 0);
    const bound =
      ceremony.purpose === 'handover' &&
      ceremony.request === digest &&
      ceremony.bundleId === parsed.body.bundle.bundleId &&
      ceremony.bundleDigest === parsed.body.bundle.bundleDigest;
    checks.push({
      rule: 'ceremony',
      met: bound && !ceremony.expired,
      detail: !bound
        ? 'the ceremony is not a handover ceremony opened for this request and bundle'
        : ceremony.expired
          ? 'the ceremony has expired'
          : 'a handover ceremony bound to this request',
    });
    checks.push({
      rule: 'custodian quorum',
      met: ceremony.accepted >= need,
      detail: `${ceremony.accepted} of ${need} custodians have given their shares`,
    });
  } else {
    checks.push({
      rule: 'custodian quorum',
      met: false,
      detail: `no ceremony given: ${Math.max(rules.quorum, bundleThreshold ?? 0)} custodians must give their shares in a handover ceremony bound to this request`,
    });
  }
  return checks;
}
