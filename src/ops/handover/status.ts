/**
 * custos handover status: every rule of the request's policy, met or not; with a handover
 * ceremony, its quorum as judged on this host.
 */
import { evaluateRequest, type CeremonyFacts, type RuleCheck } from '../../core/handover.js';
import { expired } from '../../core/ceremony.js';
import type { QuorumState } from '../../core/quorum.js';
import { verifyEd25519 } from '../../crypto/ed25519.js';
import { loadCeremony, openHost, type Host, type LoadedCeremony } from '../ceremony/host.js';
import { judgeSubmissions } from '../ceremony/judge.js';
import type { Context } from '../context.js';
import { inScope, loadRequest, type LoadedRequest } from './load.js';

export interface HandoverState {
  request: LoadedRequest;
  checks: RuleCheck[];
  /** With a ceremony: it, its host key and its judged quorum. */
  ceremony?: LoadedCeremony;
  host?: Host;
  state?: QuorumState;
}

/**
 * The ceremony as the rules see it, with the host and judged quorum that execute goes on to use.
 */
async function ceremonyFacts(
  ctx: Context,
  c: LoadedCeremony,
): Promise<{ facts: CeremonyFacts; host: Host; state: QuorumState }> {
  const host = await openHost(ctx, c);
  const { state } = await judgeSubmissions(c, host, []);
  const facts = {
    purpose: c.body.purpose,
    request: c.body.request,
    bundleId: c.body.subject.bundleId,
    bundleDigest: c.body.subject.bundleDigest,
    accepted: state.accepted.length,
    expired: expired(c.body, new Date()),
  };
  return { facts, host, state };
}

export async function handoverStatus(
  ctx: Context,
  requestPath: string,
  ceremonyPath?: string,
): Promise<HandoverState> {
  const request = loadRequest(ctx, requestPath);
  const ceremony = ceremonyPath ? loadCeremony(ctx, ceremonyPath) : undefined;
  const held = ceremony ? await ceremonyFacts(ctx, ceremony) : undefined;
  const checks = evaluateRequest(
    request,
    request.policy,
    request.digest,
    verifyEd25519,
    new Date(),
    inScope(request.policy),
    held?.facts,
    ceremony?.body.threshold,
  );
  return { request, checks, ceremony, ...(held ? { host: held.host, state: held.state } : {}) };
}
