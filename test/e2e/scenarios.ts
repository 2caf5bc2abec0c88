/**
 * The set-up most end-to-end files begin with, written once: a workspace; a source token with keys
 * and a target token, each with a profile in custos.yaml (its PIN in an env var); custodians with
 * age identities and a policy naming them; and, when a file asks, backups of the source.
 */
import {
  custos,
  expectOk,
  initToken,
  makeCustodians,
  makeStandardKeys,
  profileFor,
  workspace,
  writeConfig,
  writePolicy,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';

/** A token's label, and the name of its profile in custos.yaml when that is not the label. */
export type TokenSpec = string | { label: string; profile: string };

export interface ScenarioSpec {
  /** Names the workspace's temp directory. */
  workspace: string;
  source: TokenSpec;
  /**
   * Whether the source gets the standard key set (the default). A file that makes other keys makes
   * them once this returns, and backs the source up itself.
   */
  standardKeys?: boolean;
  /** The custodians' ids, in the policy's order. */
  custodians: string[];
  threshold: number;
  /** Bundles the source is backed up to (with policy.yaml), in this order, once all is in place. */
  backups?: string[];
}

export interface Scenario {
  ws: Workspace;
  source: TokenRef;
  /** What custos.yaml holds: push more and call writeConfig again to add profiles. */
  profiles: Profile[];
  custodians: Custodian[];
  /** policy.yaml in the workspace. */
  policy: string;
}

const labelOf = (t: TokenSpec) => (typeof t === 'string' ? t : t.label);
const profileOf = (t: TokenSpec) => (typeof t === 'string' ? t : t.profile);

function build(spec: ScenarioSpec, targetSpec?: TokenSpec): Scenario & { target?: TokenRef } {
  const ws = workspace(spec.workspace);
  const source = initToken(ws, labelOf(spec.source));
  const target = targetSpec === undefined ? undefined : initToken(ws, labelOf(targetSpec));
  if (spec.standardKeys !== false) makeStandardKeys(ws, source);
  const profiles: Profile[] = [];
  profileFor(ws, profiles, source, profileOf(spec.source));
  if (target && targetSpec) profileFor(ws, profiles, target, profileOf(targetSpec));
  writeConfig(ws, profiles);
  const custodians = makeCustodians(ws, spec.custodians);
  const policy = writePolicy(ws, 'policy.yaml', spec.threshold, custodians);
  for (const out of spec.backups ?? []) backUp(ws, profileOf(spec.source), out);
  return { ws, source, target, profiles, custodians, policy };
}

/** The scenario with the source token only. */
export function sourceOnly(spec: ScenarioSpec): Scenario {
  const { ws, source, profiles, custodians, policy } = build(spec);
  return { ws, source, profiles, custodians, policy };
}

/** The scenario with an empty target token too, made right after the source. */
export function sourceAndTarget(
  spec: ScenarioSpec & { target: TokenSpec },
): Scenario & { target: TokenRef } {
  const s = build(spec, spec.target);
  return { ...s, target: s.target as TokenRef };
}

/** `custos backup` of a profile's token under policy.yaml into `out`; the run must succeed. */
export function backUp(ws: Workspace, hsm: string, out: string, extra: string[] = []): Run {
  return expectOk(
    custos(ws, ['backup', '--hsm', hsm, '--policy', 'policy.yaml', '--out', out, ...extra]),
  );
}
