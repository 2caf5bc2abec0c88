/**
 * The backup policy: who the custodians are, how many must act together, which keys are in scope.
 */
import { YamlSource } from './yaml-source.js';
import { readKeySelection, type KeySelection } from './key-selection.js';

export { isSelected, type KeySelection } from './key-selection.js';
export { AGE_RECIPIENT, CUSTODIAN_ID } from './fields.js';
import { AGE_RECIPIENT, CUSTODIAN_ID } from './fields.js';
import { SSH_RSA_RECIPIENT } from './token-stub.js';
import {
  CUSTODIAN_ROLE,
  readApprover,
  readApproverKey,
  readHandoverRules,
  type Approver,
  type HandoverRules,
} from './handover-policy.js';

/** A post-quantum hybrid age recipient (ML-KEM-768 + X25519), as age-encryption 0.3 writes it. */
export const AGE_PQ_RECIPIENT = /^age1pq1[02-9ac-hj-np-z]{1900,2100}$/;

/**
 * What a custodian's share can be encrypted to: an age X25519 recipient, a post-quantum hybrid
 * one (`age1pq1…`), or an RSA key held on the custodian's token (`ssh-rsa AAAA…`, age's ssh-rsa
 * recipient; see custos custodian enroll). Every file that lists custodians reads it so.
 */
export const CUSTODIAN_RECIPIENT = new RegExp(
  `(?:${[AGE_RECIPIENT, AGE_PQ_RECIPIENT, SSH_RSA_RECIPIENT].map((r) => r.source).join('|')})`,
);

export interface Custodian {
  id: string;
  name: string;
  /**
   * What the custodian's share file is encrypted to: `age1…` (X25519), `age1pq1…` (post-quantum
   * hybrid) or `ssh-rsa AAAA…` (a key on their token).
   */
  recipient: string;
}

export interface Policy {
  threshold: number;
  custodians: Custodian[];
  keys: KeySelection;
  /**
   * Who may approve a handover: listed approvers, and custodians that have an approver key (role
   * "custodian").
   */
  approvers: Approver[];
  /** Present only in a custodial policy: the rules for releasing keys under legal process. */
  handover?: HandoverRules;
  /**
   * For an escrow domain: how bundles are sealed to it (`x25519` unless the policy asks for
   * `post-quantum`).
   */
  seal: 'x25519' | 'post-quantum';
}

/** secrets.js-grempe in 8-bit mode numbers shares 1..255. */
export const MAX_CUSTODIANS = 255;

const POLICY_HINT = 'fix the policy file at the line named; docs/policy.md describes every field';

const POLICY_FIELDS = [
  'version',
  'name',
  'description',
  'threshold',
  'custodians',
  'keys',
  'approvers',
  'handover',
  'seal',
];

/**
 * Only the `keys` section of a policy file, for copies that escrow nothing (custodians optional).
 */
export function parseKeySelection(name: string, text: string): KeySelection {
  const src = new YamlSource(name, text, 'E_POLICY', POLICY_HINT);
  if (src.root === null) return { include: ['*'], exclude: [] };
  return readKeySelection(src, src.map(src.root, 'the policy', POLICY_FIELDS).get('keys'));
}

export function parsePolicy(name: string, text: string): Policy {
  const src = new YamlSource(name, text, 'E_POLICY', POLICY_HINT);
  const top = src.map(src.root, 'the policy', POLICY_FIELDS);
  if (top.has('version')) src.integer(top.get('version'), 'version', 1, 1);

  const custodianNodes = src.seq(
    src.required(top, 'custodians', src.root, 'the policy'),
    'custodians',
  );
  const custodians: Custodian[] = [];
  const approvers: Approver[] = [];
  const approverLines = new Map<string, number>();
  const seenIds = new Map<string, number>();
  const seenRecipients = new Map<string, number>();
  for (const node of custodianNodes) {
    const line = src.lineOf(node);
    const f = src.map(node, 'a custodian', [
      'id',
      'name',
      'recipient',
      'organisation',
      'contact',
      'approver-key',
    ]);
    const id = src.string(
      src.required(f, 'id', node, 'a custodian'),
      'custodian id',
      CUSTODIAN_ID,
      'must be lower-case letters, digits, ".", "_" or "-" (it names the share file)',
    );
    const nameText = f.has('name') ? src.string(f.get('name'), 'custodian name') : id;
    const recipient = src.string(
      src.required(f, 'recipient', node, `custodian "${id}"`),
      `recipient of "${id}"`,
      CUSTODIAN_RECIPIENT,
      'must be an age X25519 recipient (age1…, as age-keygen prints it), a post-quantum one (age1pq1…) or the ssh-rsa line custos custodian enroll printed for a token key',
    );
    const dupId = seenIds.get(id);
    if (dupId !== undefined)
      throw src.fail(line, `custodian id "${id}" is used twice (first at line ${dupId})`);
    const dupRecipient = seenRecipients.get(recipient);
    if (dupRecipient !== undefined) {
      throw src.fail(
        line,
        `custodian "${id}" has the same recipient as the custodian at line ${dupRecipient}; each custodian needs their own key`,
      );
    }
    seenIds.set(id, line);
    seenRecipients.set(recipient, line);
    custodians.push({ id, name: nameText, recipient });
    if (f.has('approver-key')) {
      const organisation = src.string(
        src.required(f, 'organisation', node, `custodian "${id}", who has an approver key,`),
        `organisation of "${id}"`,
      );
      approvers.push({
        id,
        name: nameText,
        organisation,
        role: CUSTODIAN_ROLE,
        key: readApproverKey(src, f.get('approver-key'), `approver-key of "${id}"`),
      });
      approverLines.set(id, line);
    }
  }
  if (custodians.length < 2)
    throw src.fail(src.lineOf(top.get('custodians')), 'at least two custodians are needed');
  if (custodians.length > MAX_CUSTODIANS)
    throw src.fail(
      src.lineOf(top.get('custodians')),
      `at most ${MAX_CUSTODIANS} custodians are supported`,
    );

  const threshold = src.integer(
    src.required(top, 'threshold', src.root, 'the policy'),
    'threshold',
    2,
    custodians.length,
  );

  if (top.has('approvers')) {
    for (const node of src.seq(top.get('approvers'), 'approvers')) {
      const a = readApprover(src, node);
      if (approvers.some((x) => x.id === a.id))
        throw src.fail(src.lineOf(node), `approver id "${a.id}" is used twice`);
      approvers.push(a);
      approverLines.set(a.id, src.lineOf(node));
    }
  }
  const keyOfApprover = new Map<string, string>();
  for (const a of approvers) {
    const other = keyOfApprover.get(a.key);
    if (other)
      throw src.fail(
        approverLines.get(a.id) ?? 1,
        `approvers "${other}" and "${a.id}" have the same key; each approver needs their own`,
      );
    keyOfApprover.set(a.key, a.id);
  }
  const seal = top.has('seal')
    ? (src.string(
        top.get('seal'),
        'seal',
        /^(?:x25519|post-quantum)$/,
        'must be x25519 or post-quantum',
      ) as Policy['seal'])
    : 'x25519';
  const policy: Policy = {
    threshold,
    custodians,
    keys: readKeySelection(src, top.get('keys')),
    approvers,
    seal,
  };
  const handover = top.get('handover');
  if (handover)
    policy.handover = readHandoverRules(src, handover, approvers, threshold, custodians.length);
  return policy;
}
