/** custos ceremony open / add / status / close: the non-interactive ceremony, one step per command. */
import { relative } from 'node:path';
import { CustosError } from '../core/errors.js';
import { requiredQuorum } from '../core/ceremony.js';
import { readInputFile } from '../io/files.js';
import { cancelCeremony, ceremonyStatus, loadCeremony, openCeremony, openHost, type OpenRequest } from '../ops/ceremony.js';
import { addSubmissions, type AddResult } from '../ops/submissions.js';
import { closeCeremony, closeHint, type CloseRequest, type Closing } from '../ops/ceremony-close.js';
import type { Context } from '../ops/context.js';
import { describeCeremony, quorumLine, showStatus } from './ceremony-view.js';
import { resolve } from 'node:path';
import { count } from './render.js';
import { renderRestore } from './restore.js';
import { renderCopy } from './copy.js';

export async function runOpen(ctx: Context, o: OpenRequest & { json?: boolean }): Promise<void> {
  const { ceremony, hostDir } = await openCeremony(ctx, o);
  if (o.json) return ctx.out.json({ ceremony: ceremony.body, file: o.out, digest: ceremony.digest, hostDir: relative(ctx.cwd, hostDir) });
  ctx.out.data([
    ...describeCeremony(ceremony),
    '',
    `ceremony file ${o.out} written: send it to the custodians (it holds nothing secret)`,
    `its key stays on this host, in ${relative(ctx.cwd, hostDir)}/ (0600)`,
    'next: custodians run  custos share submit --ceremony FILE --share THEIR.share --identity THEIR.key --out THEM.submission',
    `      then here:       custos ceremony add ${o.out} SUBMISSION...   (or run it at this terminal: custos ceremony run ${o.out})`,
  ].join('\n'));
}

export async function runAdd(ctx: Context, o: { ceremony: string; submissions: string[]; json?: boolean }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const host = await openHost(ctx, c);
  const incoming = o.submissions.map((p) => ({ source: p, bytes: readInputFile(resolve(ctx.cwd, p), 'submission') }));
  const r = await addSubmissions(ctx, c, host, incoming);
  if (o.json) ctx.out.json(addJson(r, requiredQuorum(c.body)));
  else {
    for (const a of r.accepted) ctx.out.data(`accepted ${a.source}: ${a.custodian}'s share`);
    ctx.out.data(quorumLine(ceremonyStatus(ctx, c)));
  }
  if (r.rejected.length > 0) {
    throw new CustosError('E_SUBMISSION_REJECTED', `${count(r.rejected.length, 'submission')} rejected`,
      'ask each named custodian to submit again with the right share and identity for this ceremony; the accepted ones are kept',
      r.rejected.map((x) => `rejected ${x.source}${x.custodian ? ` (${x.custodian})` : ''}: ${x.message}`));
  }
}

function addJson(r: AddResult, quorum: number) {
  return {
    accepted: r.accepted,
    rejected: r.rejected.map((x) => ({ source: x.source, custodian: x.custodian ?? null, reason: x.reason, message: x.message })),
    quorum: { accepted: r.state.accepted.length, needed: quorum, missing: Math.max(0, quorum - r.state.accepted.length) },
  };
}

export async function runStatus(ctx: Context, o: { ceremony: string; json?: boolean }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const s = ceremonyStatus(ctx, c);
  if (o.json) {
    return ctx.out.json({ ceremony: c.body.nonce, purpose: c.body.purpose, expires: c.body.expires, expired: s.expired, closed: s.closed,
      threshold: c.body.threshold, quorum: requiredQuorum(c.body), accepted: s.accepted, custodians: s.custodians, unattributed: s.unattributed });
  }
  ctx.out.data(describeCeremony(c).join('\n'));
  showStatus(ctx.out, s);
  if (!s.closed && s.expired) ctx.out.data(`the ceremony expired and can no longer act; destroy the shares it holds: custos ceremony cancel ${o.ceremony}`);
  else if (!s.closed && s.accepted >= requiredQuorum(c.body)) ctx.out.data(`next: ${closeHint(c)}`);
}

export async function runCancel(ctx: Context, o: { ceremony: string }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const r = await cancelCeremony(ctx, c);
  ctx.out.data(`ceremony ${c.body.nonce} cancelled: its key and ${count(r.accepted, 'sealed share')} on this host were destroyed; it can no longer act`);
}

export async function runClose(ctx: Context, o: CloseRequest & { ceremony: string; json?: boolean }): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const closing = await closeCeremony(ctx, c, o);
  renderClosing(ctx, closing, o.json);
}

export function renderClosing(ctx: Context, closing: Closing, json?: boolean): void {
  const o = closing.outcome;
  const nonce = closing.ceremony.body.nonce;
  if (json) return ctx.out.json({ ceremony: nonce, custodians: closing.custodians, outcome: o });
  switch (o.kind) {
    case 'restore':
      for (const r of o.results) renderRestore(ctx, r);
      break;
    case 'drill':
      for (const r of o.results) renderRestore(ctx, r);
      for (const r of o.results) ctx.out.data(`drill passed: all ${count(r.keys.length, 'key')} of bundle ${r.bundleId} restored into a scratch token and matched`
        + (o.results.length === 1 ? `; the scratch token was ${o.scratchDestroyed ? 'destroyed' : 'NOT destroyed'}` : ''));
      if (o.results.length > 1) ctx.out.data(`the scratch tokens were ${o.scratchDestroyed ? 'destroyed' : 'NOT all destroyed'}`);
      break;
    case 'domain-drill':
      ctx.out.data(`drill passed: the quorum reassembled the secret of domain ${o.domainId} (generation ${o.generation}), checked against the domain file; no HSM was touched`);
      break;
    case 'copy':
      ctx.out.data(`escrowed token "${o.result.source.label}" opened with the reassembled PIN`);
      renderCopy(ctx, o.result);
      break;
    case 'pin-drill':
      ctx.out.data(`drill passed: the reassembled PIN opens token "${o.token.label}" (serial ${o.token.serial}), which holds ${count(o.keys, 'key')}; nothing was changed`);
      break;
  }
  ctx.out.data(`ceremony ${nonce} closed (quorum: ${closing.custodians.join(', ')}); its key and the sealed shares on this host were destroyed`);
}
