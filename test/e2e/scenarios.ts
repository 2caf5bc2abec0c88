/**
 * The set-ups several end-to-end files begin with, written once: the usual one (a workspace; a
 * source token with keys and a target token, each with a profile in custos.yaml, its PIN in an env
 * var; custodians with age identities and a policy naming them; backups of the source when a file
 * asks), custodians who hold their keys on tokens, and profiles that also name an SO PIN.
 */
import { writeFileSync } from 'node:fs';
import {
  MODULE,
  custos,
  expectOk,
  initToken,
  makeKey,
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

/** `custos backup` arguments: a profile's token, under policy.yaml, into `out`. */
export const backupArgs = (hsm: string, out: string, extra: string[] = []) => [
  'backup',
  '--hsm',
  hsm,
  '--policy',
  'policy.yaml',
  '--out',
  out,
  ...extra,
];

/** That backup, which must succeed. */
export function backUp(ws: Workspace, hsm: string, out: string, extra: string[] = []): Run {
  return expectOk(custos(ws, backupArgs(hsm, out, extra)));
}

export interface TokenCustodians {
  ws: Workspace;
  /** Holds one AES key, "payments" (id 01). */
  vault: TokenRef;
  dr: TokenRef;
  /** The custodians' own tokens, enrolled. */
  ca: TokenRef;
  cb: TokenRef;
  /** A custodian with an age identity file. */
  dd: Custodian;
  /** The recipient lines `custodian enroll` printed for ca and cb. */
  recipients: { ca: string; cb: string };
}

/**
 * Custodians who hold their keys on tokens: tokens vault, dr, ca and cb, each with a profile of its
 * own name (PIN in PIN_<NAME>) in `config`; ca and cb enrolled by `custodian enroll` (key
 * "custodian", identity file <id>.token-identity); and dd, a custodian with an age identity.
 */
export function tokenCustodians(name: string, config = 'custos.yaml'): TokenCustodians {
  const ws = workspace(name);
  const [vault, dr, ca, cb] = ['vault', 'dr', 'ca', 'cb'].map((l) => initToken(ws, l)) as [
    TokenRef,
    TokenRef,
    TokenRef,
    TokenRef,
  ];
  const profiles: Profile[] = [];
  for (const t of [vault, dr, ca, cb]) profileFor(ws, profiles, t);
  writeConfig(ws, profiles, config);
  makeKey(ws, vault, { kind: 'aes', label: 'payments', id: '01' });
  const [dd] = makeCustodians(ws, ['dd']) as [Custodian];
  const enroll = (id: string) =>
    expectOk(
      custos(ws, [
        ...(config === 'custos.yaml' ? [] : ['--config', config]),
        'custodian',
        'enroll',
        '--hsm',
        id,
        '--label',
        'custodian',
        '--out',
        `${id}.token-identity`,
      ]),
    )
      .stdout.trim()
      .split('\n')
      .pop() as string;
  const recipients = { ca: enroll('ca'), cb: enroll('cb') };
  return { ws, vault, dr, ca, cb, dd, recipients };
}

/** The env var of a profile's user PIN (`PIN_<NAME>`) or SO PIN (`SO_<NAME>`). */
export const pinVar = (name: string, what: 'PIN' | 'SO') =>
  `${what}_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

/**
 * Tokens with profiles in a custos.yaml that also names each SO PIN (from SO_<NAME>), the user PIN
 * coming from PIN_<NAME> until usePin says otherwise (escrow:DIR): the file is written again at
 * each change.
 */
export class SoPinProfiles {
  /** Tokens by profile name. */
  readonly tokens = new Map<string, TokenRef>();
  /** Where each profile's user PIN comes from (`env:VAR` or `escrow:DIR`). */
  readonly pinSource = new Map<string, string>();

  constructor(
    private readonly ws: Workspace,
    private readonly file: string,
  ) {}

  /** A new token with a profile under this name. */
  add(name: string, label = name): TokenRef {
    const t = initToken(this.ws, label);
    this.tokens.set(name, t);
    this.ws.env[pinVar(name, 'PIN')] = t.pin;
    this.ws.env[pinVar(name, 'SO')] = t.soPin;
    this.pinSource.set(name, `env:${pinVar(name, 'PIN')}`);
    this.write();
    return t;
  }

  token(name: string): TokenRef {
    return this.tokens.get(name) as TokenRef;
  }

  usePin(name: string, source: string): void {
    this.pinSource.set(name, source);
    this.write();
  }

  private write(): void {
    const lines = ['hsms:'];
    for (const [name, t] of this.tokens) {
      lines.push(
        `  ${name}:`,
        `    module: ${MODULE}`,
        `    token: ${t.label}`,
        `    pin: ${this.pinSource.get(name)}`,
        `    so-pin: env:${pinVar(name, 'SO')}`,
      );
    }
    writeFileSync(this.file, `${lines.join('\n')}\n`);
  }
}
