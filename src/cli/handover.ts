/**
 * custos handover request / approve / status / execute / verify: releasing named keys under legal
 * process.
 */
import { relative, resolve } from 'node:path';
import { audited, fileDigest } from '../ops/audit.js';
import { makeRequest, type RequestInput } from '../ops/handover/request.js';
import { approve } from '../ops/handover/approve.js';
import { handoverStatus } from '../ops/handover/status.js';
import { executeHandover } from '../ops/handover/execute.js';
import { verifyPackage } from '../ops/handover/verify.js';
import type { Context } from '../ops/context.js';
import { checkValueText, count } from './render.js';

export async function runRequest(
  ctx: Context,
  o: RequestInput & { json?: boolean },
): Promise<void> {
  const r = await audited(ctx, 'handover-request', async (note) => {
    note.detail = { matter: o.matter, authority: o.authority, basis: o.basis, keys: o.keys };
    const made = makeRequest(ctx, o);
    note.bundle = made.body.bundle.bundleId;
    note.artifacts = {
      request: made.digest,
      document: made.body.document.sha256,
      policy: made.body.policy.sha256,
      recipient: made.body.recipient.sha256,
    };
    return made;
  });
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

export async function runApprove(
  ctx: Context,
  o: { request: string; as: string; key: string; document?: string },
): Promise<void> {
  const r = await audited(ctx, 'handover-approve', async (note) => {
    note.detail = { as: o.as };
    const done = await approve(ctx, o);
    note.bundle = done.request.body.bundle.bundleId;
    note.artifacts = { request: done.request.digest };
    Object.assign(note.detail, {
      approver: done.approver,
      organisation: done.organisation,
      matter: done.request.body.matter,
    });
    return done;
  });
  ctx.out.data(
    `approved by ${r.approver} (${r.organisation}) as ${o.as}: request ${r.request.digest}, matter ${r.request.body.matter}`,
  );
}

export async function runStatus(
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

export async function runExecute(
  ctx: Context,
  o: { request: string; ceremony: string; out: string; bundle?: string; json?: boolean },
): Promise<void> {
  const r = await executeHandover(ctx, o);
  if (o.json) {
    return ctx.out.json({
      package: relative(ctx.cwd, r.packagePath),
      digest: r.packageDigest,
      ceremony: r.ceremony.body.nonce,
      quorum: r.custodians,
      oaep: r.oaep,
      keys: r.keys.map((k) => ({
        label: k.label,
        id: k.id,
        class: k.class,
        keyType: k.keyType,
        checkValue: k.checkValue,
      })),
      scratchDestroyed: r.scratchDestroyed,
    });
  }
  ctx.out.table(
    ['label', 'id', 'class', 'type', 'check value'],
    r.keys.map((k) => [k.label, k.id || '-', k.class, k.keyType, checkValueText(k.checkValue)]),
  );
  ctx.out.data([
    `handover package ${relative(ctx.cwd, r.packagePath)} written (sha256 ${r.packageDigest}): ${count(r.keys.length, 'key')} wrapped to the recipient by RSA-OAEP-${r.oaep.hash} + AES-KWP`,
    `the keys were unwrapped only inside a scratch token, which was ${r.scratchDestroyed ? 'destroyed' : 'NOT destroyed'}; quorum: ${r.custodians.join(', ')}`,
    `ceremony ${r.ceremony.body.nonce} closed; its key was destroyed after signing the receipt`,
  ]);
}

export async function runVerify(
  ctx: Context,
  o: { package: string; key?: string; json?: boolean },
): Promise<void> {
  const r = await audited(ctx, 'handover-verify', async (note) => {
    note.artifacts = { package: fileDigest(resolve(ctx.cwd, o.package)) };
    const checked = verifyPackage(ctx, o.package, o.key);
    note.ceremony = checked.ceremony;
    note.detail = {
      matter: checked.matter,
      keys: checked.keys.map((k) => k.label),
      unwrapped: !!o.key,
    };
    return checked;
  });
  if (o.json) return ctx.out.json(r);
  ctx.out.table(
    ['label', 'id', 'class', 'type', 'recorded check value', 'unwrapped'],
    r.keys.map((k) => [
      k.label,
      k.id || '-',
      k.class,
      k.keyType,
      checkValueText(k.checkValue),
      !k.unwrapped
        ? 'not checked (no --key)'
        : k.unwrapped.matches === null
          ? 'unwrapped; no check value to compare'
          : k.unwrapped.matches
            ? `matches (${k.unwrapped.checkValue})`
            : 'MISMATCH',
    ]),
  );
  ctx.out.data([
    `package ${o.package} verifies: signed by ceremony ${r.ceremony}, which was opened for this request`,
    `  matter ${r.matter}: ${r.basis} from ${r.authority}; document sha256 ${r.documentSha256}`,
    `  approvals: ${r.approvals.map((a) => `${a.approver} as ${a.role}`).join(', ') || 'none'}; ${r.custodianTranscript} ceremony audit entr${r.custodianTranscript === 1 ? 'y' : 'ies'} in the transcript`,
    o.key
      ? `  every key unwrapped with ${o.key}${r.keys.some((k) => k.unwrapped?.matches === null) ? '; those with a check value matched it' : ' and matched its check value'}`
      : '  run again with --key RECIPIENT-PRIVATE.pem to unwrap and check each key',
  ]);
}
