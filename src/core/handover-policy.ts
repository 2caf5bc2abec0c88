/**
 * The custodial policy's handover rules (docs/policy.md#handover): who may approve a release of
 * keys under legal process, on what legal bases, after what notice, to which recipients, how
 * many keys at once, and how many custodians must act together.
 */
import type { Node } from 'yaml';
import type { YamlSource } from './yaml-source.js';
import { readKeySelection, type KeySelection } from './key-selection.js';
import { CUSTODIAN_ID } from './fields.js';
import { ED25519_SPKI_PREFIX } from './der.js';
import { durationMs } from './duration.js';
import { canonicalBase64 } from './envelope.js';

export interface Approver {
  id: string;
  name: string;
  organisation: string;
  role: string;
  /** Raw Ed25519 public key, base64. */
  key: string;
}

export interface ApprovalRule {
  role: string;
  count: number;
  /** Distinct organisations the approvals under this rule must come from. */
  organisations: number;
}

export interface HandoverRules {
  bases: string[];
  approvals: ApprovalRule[];
  notice: { text: string; ms: number };
  /** Custodians who must act together for a handover (at least the bundle's threshold). */
  quorum: number;
  recipients: { minRsaBits: number; allow: string[] | null };
  maxKeys: number;
  keys: KeySelection;
}

export const ROLE = /^[a-z][a-z0-9-]{0,63}$/;
const BASIS = /^[a-z][a-z0-9-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * An approver key as `openssl pkey -pubout` prints it: the base64 line of an Ed25519 public key.
 */
export function readApproverKey(src: YamlSource, node: Node | undefined, what: string): string {
  const text = src.string(node, what);
  const der = canonicalBase64(text, 44);
  if (!der || !der.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
    throw src.fail(
      src.lineOf(node),
      `${what} must be an Ed25519 public key: the base64 line between BEGIN and END PUBLIC KEY of \`openssl pkey -in KEY.pem -pubout\``,
    );
  }
  return der.subarray(12).toString('base64');
}

/** The role custodians with an approver key have; an approver who holds no share cannot take it. */
export const CUSTODIAN_ROLE = 'custodian';

export function readApprover(src: YamlSource, node: Node): Approver {
  const f = src.map(node, 'an approver', ['id', 'name', 'organisation', 'role', 'key']);
  const id = src.string(
    src.required(f, 'id', node, 'an approver'),
    'approver id',
    CUSTODIAN_ID,
    'must be lower-case letters, digits, ".", "_" or "-"',
  );
  const approver: Approver = {
    id,
    name: f.has('name') ? src.string(f.get('name'), `name of approver "${id}"`) : id,
    organisation: src.string(
      src.required(f, 'organisation', node, `approver "${id}"`),
      `organisation of approver "${id}"`,
    ),
    role: src.string(
      src.required(f, 'role', node, `approver "${id}"`),
      `role of approver "${id}"`,
      ROLE,
      'must be lower-case letters, digits and "-" (e.g. general-counsel)',
    ),
    key: readApproverKey(
      src,
      src.required(f, 'key', node, `approver "${id}"`),
      `key of approver "${id}"`,
    ),
  };
  if (approver.role === CUSTODIAN_ROLE) {
    throw src.fail(
      src.lineOf(f.get('role')),
      `role "${CUSTODIAN_ROLE}" belongs to custodians who hold a share (give them an approver-key); approver "${id}" holds none`,
    );
  }
  return approver;
}

export function readHandoverRules(
  src: YamlSource,
  node: Node,
  approvers: readonly Approver[],
  threshold: number,
  custodians: number,
): HandoverRules {
  const f = src.map(node, 'handover', [
    'bases',
    'approvals',
    'notice',
    'quorum',
    'recipients',
    'max-keys',
    'keys',
  ]);
  const bases = src
    .seq(src.required(f, 'bases', node, 'handover'), 'handover.bases')
    .map((b) =>
      src.string(
        b,
        'a legal basis',
        BASIS,
        'must be lower-case letters, digits and "-" (e.g. court-order)',
      ),
    );
  if (bases.length === 0)
    throw src.fail(src.lineOf(f.get('bases')), 'handover.bases allows no legal basis');

  const roles = new Set(approvers.map((a) => a.role));
  const approvalsNode = src.required(f, 'approvals', node, 'handover');
  const seenRoles = new Set<string>();
  const approvals = src.seq(approvalsNode, 'handover.approvals').map((n): ApprovalRule => {
    const r = src.map(n, 'an approval rule', ['role', 'count', 'organisations']);
    const role = src.string(src.required(r, 'role', n, 'an approval rule'), 'approval role', ROLE);
    if (seenRoles.has(role))
      throw src.fail(
        src.lineOf(n),
        `a second rule for role "${role}": put the count and organisations in one rule`,
      );
    seenRoles.add(role);
    const holders = approvers.filter((a) => a.role === role);
    if (!roles.has(role))
      throw src.fail(
        src.lineOf(n),
        `no approver has the role "${role}", so this rule could never be met`,
      );
    const count = src.integer(
      src.required(r, 'count', n, `the "${role}" rule`),
      `count of "${role}" approvals`,
      1,
      holders.length,
    );
    const orgs = new Set(holders.map((a) => a.organisation)).size;
    const organisations = r.has('organisations')
      ? src.integer(
          r.get('organisations'),
          `organisations of "${role}" approvals`,
          1,
          Math.min(count, orgs),
        )
      : 1;
    return { role, count, organisations };
  });
  if (approvals.length === 0)
    throw src.fail(
      src.lineOf(approvalsNode),
      'handover.approvals is empty: a handover needs at least one approval',
    );

  const noticeNode = src.required(f, 'notice', node, 'handover');
  const noticeText = src.string(noticeNode, 'handover.notice');
  const noticeMs = durationMs(noticeText, ['h', 'd']);
  if (noticeMs === null)
    throw src.fail(
      src.lineOf(noticeNode),
      'handover.notice must be hours or days, e.g. 72h or 14d',
    );
  const notice = { text: noticeText, ms: noticeMs };

  const quorum = src.integer(
    src.required(f, 'quorum', node, 'handover'),
    'handover.quorum',
    threshold,
    custodians,
  );

  const rNode = src.required(f, 'recipients', node, 'handover');
  const rf = src.map(rNode, 'handover.recipients', ['min-rsa-bits', 'allow']);
  const minRsaBits = src.integer(
    src.required(rf, 'min-rsa-bits', rNode, 'handover.recipients'),
    'handover.recipients.min-rsa-bits',
    2048,
    16384,
  );
  const allow = rf.has('allow')
    ? src
        .seq(rf.get('allow'), 'handover.recipients.allow')
        .map((n) =>
          src.string(
            n,
            'an allowed recipient',
            SHA256,
            "must be the SHA-256 (hex) of the recipient's public key (openssl pkey -pubin -in R.pem -outform DER | sha256sum)",
          ),
        )
    : null;
  if (allow?.length === 0)
    throw src.fail(
      src.lineOf(rf.get('allow')),
      'handover.recipients.allow is empty, which would refuse every recipient: list their digests, or leave allow out',
    );

  const maxKeys = src.integer(
    src.required(f, 'max-keys', node, 'handover'),
    'handover.max-keys',
    1,
    100_000,
  );
  return {
    bases,
    approvals,
    notice,
    quorum,
    recipients: { minRsaBits, allow },
    maxKeys,
    keys: readKeySelection(src, f.get('keys')),
  };
}
