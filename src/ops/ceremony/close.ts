/**
 * Closing a ceremony: with a quorum accepted and the ceremony unexpired, do what it was opened
 * for — restore a bundle into a token, open an escrowed backup token and copy its keys out, or a
 * drill — then sign the closing entry with the ceremony key and destroy the host's secrets.
 */
import { basename, dirname, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { CustosError } from '../../core/errors.js';
import { bundlesOf, expired } from '../../core/ceremony.js';
import type { TokenIdentity } from '../../core/bundle.js';
import type { QuorumState } from '../../core/quorum.js';
import { withScratchToken } from '../scratch.js';
import { audited } from '../audit.js';
import { claimHost, destroyHostSecrets, openHost, type Host, type LoadedCeremony } from './host.js';
import { judgeSubmissions } from './judge.js';
import { copyKeys, type CopyResult } from '../copy.js';
import { lookForHsm, openHsm } from '../hsm.js';
import { sameTokenIdentity, tokenName } from '../../hsm/quirks.js';
import { escrowedPin, escrowedToken, loadPinEscrow, PIN_ESCROW_FILE } from '../escrowed-pin.js';
import { restoreWithQuorum, requireKeyBundle, type RestoreResult } from '../restore.js';
import { loadBundle, rejectionLines, requireQuorum, type LoadedBundle } from '../shares.js';
import { loadDomain, type LoadedDomain } from '../domain/load.js';
import { assembleDomainIdentity } from '../domain/secret.js';
import type { Context } from '../context.js';
import { wipe } from '../../crypto/wipe.js';

export interface CloseRequest {
  /**
   * The token to restore into, or (for a PIN-escrow drill) the escrowed token. For a ceremony over
   * several bundles: one token for them all, or one per bundle in the ceremony's order.
   */
  hsm?: string | string[];
  /** For a PIN-escrow restore: the escrowed backup token to copy from. */
  fromHsm?: string;
  /** Where the subject is, when not where the ceremony file says. */
  subject?: string;
}

export type Outcome =
  | { kind: 'restore'; results: RestoreResult[] }
  | { kind: 'drill'; results: RestoreResult[]; scratchDestroyed: boolean }
  | { kind: 'domain-drill'; domainId: string; generation: number }
  | { kind: 'copy'; result: CopyResult }
  | { kind: 'pin-drill'; token: TokenIdentity; keys: number };

export interface Closing {
  ceremony: LoadedCeremony;
  custodians: string[];
  outcome: Outcome;
}

export interface Prepared {
  state: QuorumState;
  /**
   * The (first) bundle or PIN escrow record, loaded and checked against the ceremony; none for a
   * domain.
   */
  subject?: LoadedBundle;
  /** The further bundles of a ceremony over several, in the ceremony's order. */
  more: LoadedBundle[];
  /** For a ceremony over an escrow domain itself. */
  domain?: LoadedDomain;
  /** The tokens the bundles go into, one per bundle. */
  targets: string[];
}

/**
 * Checks everything that can be checked before any HSM is touched: host, expiry, quorum, subject.
 */
export async function prepareClose(
  ctx: Context,
  c: LoadedCeremony,
  req: CloseRequest,
  host: Host,
): Promise<Prepared> {
  const { body } = c;
  const s = body.subject;
  if (body.purpose === 'handover') {
    throw new CustosError(
      'E_USAGE',
      `ceremony ${body.nonce} is for a handover`,
      `it is closed by custos handover execute REQUEST --ceremony ${c.path}`,
    );
  }
  if (body.purpose === 'rotate') {
    throw new CustosError(
      'E_USAGE',
      `ceremony ${body.nonce} is for a rotation`,
      `it is closed by ${closeHint(c)}`,
    );
  }
  if (expired(body, new Date())) {
    throw new CustosError(
      'E_CEREMONY',
      `ceremony ${body.nonce} expired at ${body.expires}`,
      'open a new ceremony; the custodians submit again',
    );
  }
  const hsms = req.hsm === undefined ? [] : Array.isArray(req.hsm) ? req.hsm : [req.hsm];
  const bundleCount = bundlesOf(s).length;
  const needs =
    s.kind === 'bundle'
      ? body.purpose === 'restore'
        ? ['hsm']
        : []
      : s.kind === 'domain'
        ? []
        : body.purpose === 'restore'
          ? ['fromHsm', 'hsm']
          : ['hsm'];
  const flag = { hsm: '--hsm', fromHsm: '--from-hsm' } as const;
  for (const n of ['hsm', 'fromHsm'] as const) {
    const given = n === 'hsm' ? hsms.length > 0 : !!req[n];
    if (needs.includes(n) && !given)
      throw new CustosError(
        'E_USAGE',
        `closing this ${body.purpose} ceremony needs ${flag[n]} NAME`,
        closeHint(c),
      );
    if (!needs.includes(n) && given)
      throw new CustosError(
        'E_USAGE',
        `closing this ${body.purpose} ceremony takes no ${flag[n]}`,
        closeHint(c),
      );
  }
  const allowed = s.kind === 'bundle' && bundleCount > 1 ? [1, bundleCount] : [1];
  if (hsms.length > 0 && !allowed.includes(hsms.length)) {
    throw new CustosError(
      'E_USAGE',
      `this ceremony restores ${bundleCount} bundles: give one --hsm for all, or one per bundle (${bundleCount})`,
      closeHint(c),
    );
  }
  if (req.subject && bundleCount > 1)
    throw new CustosError(
      'E_USAGE',
      '--subject names one file; this ceremony concerns several bundles',
      'keep the bundles where the ceremony file says (beside it, by the names it lists)',
    );
  const { state } = await judgeSubmissions(c, host, []);
  const given = req.subject ? resolve(ctx.cwd, req.subject) : undefined;
  const besideCeremony = (file: string) => resolve(dirname(resolve(ctx.cwd, c.path)), file);
  const subjectPath = given ?? besideCeremony(s.file);
  const mismatch = (path: string, what: string) =>
    new CustosError(
      'E_CEREMONY',
      `${path} is not the ${what} ceremony ${body.nonce} was opened for (id or digest differs)`,
      'pass the right file with --subject FILE; nothing was written',
    );
  if (s.kind === 'domain') {
    const domain = loadDomain(ctx, subjectPath);
    if (domain.body.domainId !== s.bundleId || domain.digest !== s.bundleDigest)
      throw mismatch(subjectPath, 'domain');
    if (state.missing > 0) {
      throw new CustosError(
        'E_QUORUM',
        `${state.accepted.length} of ${state.threshold} shares accepted: ${state.missing} more needed`,
        'wait for more custodians to submit; nothing was done',
        rejectionLines(state),
      );
    }
    return { state, more: [], domain, targets: [] };
  }
  // A PIN escrow is named by its directory, as in ceremony open --pin-escrow DIR (or by its record
  // file).
  const escrowDir =
    given && existsSync(given) && statSync(given).isDirectory() ? given : dirname(subjectPath);
  if (
    s.kind === 'pin-escrow' &&
    given &&
    escrowDir !== given &&
    basename(given) !== PIN_ESCROW_FILE
  ) {
    throw new CustosError(
      'E_USAGE',
      `--subject ${req.subject} is neither a PIN escrow directory nor its ${PIN_ESCROW_FILE}`,
      'pass the directory made by custos escrow-pin',
    );
  }
  const subject =
    s.kind === 'bundle' ? loadBundle(ctx, subjectPath) : loadPinEscrow(ctx, escrowDir);
  if (s.kind === 'bundle') requireKeyBundle(subject);
  if (subject.body.bundleId !== s.bundleId || subject.digest !== s.bundleDigest)
    throw mismatch(subjectPath, s.kind === 'bundle' ? 'bundle' : 'PIN escrow');
  const more = bundlesOf(s)
    .slice(1)
    .map((ref) => {
      const path = besideCeremony(ref.file);
      const b = loadBundle(ctx, path);
      requireKeyBundle(b);
      if (b.body.bundleId !== ref.bundleId || b.digest !== ref.bundleDigest)
        throw mismatch(path, 'bundle');
      return b;
    });
  for (const b of [subject, ...more]) requireQuorum(b, state);
  const targets =
    s.kind === 'bundle' && hsms.length > 0
      ? bundlesOf(s).map((_, i) => hsms[hsms.length === 1 ? 0 : i] as string)
      : hsms;
  return { state, subject, more, targets };
}

/** A token named for a PIN escrow's close that is not the token whose PIN was escrowed. */
export class NotTheEscrowedToken extends CustosError {}

/**
 * Finds the token named for a PIN escrow's close, without logging in, and refuses one that is not
 * the token whose PIN was escrowed. Both refusals name that token; where no token was found in the
 * embedded store, its hint (make one with custos hsm init) is dropped: a new token is never it.
 */
export function findEscrowedToken(ctx: Context, name: string, escrowed: TokenIdentity): void {
  let token: TokenIdentity;
  try {
    token = lookForHsm(ctx, name);
  } catch (e) {
    if (!(e instanceof CustosError) || e.code !== 'E_TOKEN_NOT_FOUND') throw e;
    const hint =
      !e.hint || /custos hsm init/.test(e.hint)
        ? nameTheEscrowed(escrowed)
        : `${e.hint}; then ${nameTheEscrowed(escrowed)}`;
    throw new CustosError(e.code, e.message, hint, e.details);
  }
  requireEscrowedToken(name, token, escrowed);
}

function requireEscrowedToken(name: string, token: TokenIdentity, escrowed: TokenIdentity): void {
  if (!sameTokenIdentity(token, escrowed)) {
    throw new NotTheEscrowedToken(
      'E_PIN_SOURCE',
      `"${name}" is token ${tokenName(token)}; the escrowed PIN is for ${tokenName(escrowed)}`,
      nameTheEscrowed(escrowed),
    );
  }
}

const nameTheEscrowed = (escrowed: TokenIdentity) =>
  `name the profile or embedded token of token ${tokenName(escrowed)}, whose PIN the custodians hold`;

export function closeHint(c: LoadedCeremony): string {
  const { purpose, subject } = c.body;
  if (purpose === 'handover')
    return `custos handover execute REQUEST --ceremony ${c.path} --out PACKAGE`;
  if (purpose === 'rotate')
    return `custos domain rotate --ceremony ${c.path} --policy NEW-POLICY --out NEW.domain`;
  if (subject.kind === 'domain') return `custos ceremony close ${c.path}`;
  if (subject.kind === 'bundle') {
    const n = bundlesOf(subject).length;
    return purpose === 'restore'
      ? `custos ceremony close ${c.path} --hsm TARGET${n > 1 ? ` (or one --hsm per bundle, ${n} in all)` : ''}`
      : `custos ceremony close ${c.path}`;
  }
  return purpose === 'restore'
    ? `custos ceremony close ${c.path} --from-hsm ESCROWED-TOKEN --hsm TARGET`
    : `custos ceremony close ${c.path} --hsm ESCROWED-TOKEN`;
}

/** A word as the shell reads it: quoted when it holds anything but plain characters. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The exact command that closes this ceremony with these options (the hint's placeholders filled
 * in).
 */
export function closeCommand(c: LoadedCeremony, req: CloseRequest): string {
  const { purpose, subject } = c.body;
  const hsms = req.hsm === undefined ? [] : [req.hsm].flat();
  const needsHsm =
    (purpose === 'restore' && subject.kind !== 'domain') || subject.kind === 'pin-escrow';
  if (
    purpose === 'handover' ||
    purpose === 'rotate' ||
    (needsHsm && hsms.length === 0) ||
    (subject.kind === 'pin-escrow' && purpose === 'restore' && !req.fromHsm)
  )
    return closeHint(c);
  return commandWith('close', c, req);
}

/** `custos ceremony VERB CEREMONY` with the options of the request, as typed. */
export function commandWith(verb: 'close' | 'run', c: LoadedCeremony, req: CloseRequest): string {
  const hsms = req.hsm === undefined ? [] : [req.hsm].flat();
  return [
    `custos ceremony ${verb}`,
    shellWord(c.path),
    ...(req.fromHsm ? ['--from-hsm', shellWord(req.fromHsm)] : []),
    ...hsms.flatMap((h) => ['--hsm', shellWord(h)]),
    ...(req.subject ? ['--subject', shellWord(req.subject)] : []),
  ].join(' ');
}

export async function closeCeremony(
  ctx: Context,
  c: LoadedCeremony,
  req: CloseRequest,
): Promise<Closing> {
  let host: Host | undefined;
  let claim: { release: () => void } | undefined;
  let performed = false;
  let custodians: string[] = [];
  try {
    const outcome = await audited(ctx, 'ceremony-close', async (note) => {
      note.ceremony = c.body.nonce;
      note.bundle = c.body.subject.bundleId;
      note.artifacts = { ceremony: c.digest };
      note.detail = { purpose: c.body.purpose };
      // The host key first: every entry of this ceremony, a refused close too, is signed with it.
      host = await openHost(ctx, c);
      note.signer = host.signer;
      claim = claimHost(
        ctx,
        c,
        host,
        `ceremony close${req.hsm ? ` --hsm ${req.hsm}` : ''}${req.fromHsm ? ` --from-hsm ${req.fromHsm}` : ''}`,
      );
      const prepared = await prepareClose(ctx, c, req, host);
      custodians = prepared.state.accepted.map((a) => a.custodian);
      note.artifacts[c.body.subject.kind] =
        prepared.domain?.fileDigest ?? prepared.subject?.digest ?? '';
      for (const b of prepared.more) note.artifacts[`bundle:${b.body.bundleId}`] = b.digest;
      note.detail.quorum = custodians;
      const done = await perform(ctx, c, req, prepared);
      performed = true;
      Object.assign(note.detail, outcomeDetail(done));
      return done;
    });
    return { ceremony: c, custodians, outcome };
  } finally {
    // Once the purpose is done the ceremony is spent, even if its closing entry could not be
    // written.
    if (performed && host) destroyHostSecrets(ctx, c, host, `${c.body.purpose} completed`);
    else claim?.release();
  }
}

async function perform(
  ctx: Context,
  c: LoadedCeremony,
  req: CloseRequest,
  prepared: Prepared,
): Promise<Outcome> {
  const { purpose } = c.body;
  const { state, subject, more, targets, domain } = prepared;
  if (domain) {
    // A domain drill: the quorum reassembles the domain's secret, checked against the domain; no
    // HSM.
    wipe(await assembleDomainIdentity(domain.body, state));
    return {
      kind: 'domain-drill',
      domainId: domain.body.domainId,
      generation: domain.body.generation,
    };
  }
  if (!subject) throw new CustosError('E_INTERNAL', 'a ceremony close with nothing to act on');
  if (c.body.subject.kind === 'bundle') {
    const bundles = [subject, ...more];
    if (purpose === 'restore') {
      const results: RestoreResult[] = [];
      for (const [i, b] of bundles.entries())
        results.push(await restoreWithQuorum(ctx, b, state, targets[i] as string));
      return { kind: 'restore', results };
    }
    return drill(ctx, bundles, state);
  }
  // The very record prepareClose loaded and checked against the ceremony.
  const escrow = subject as Parameters<typeof escrowedPin>[0];
  const tokenName = (purpose === 'restore' ? req.fromHsm : targets[0]) as string;
  const escrowed = escrowedToken(escrow);
  findEscrowedToken(ctx, tokenName, escrowed);
  const unlocked: Context = {
    ...ctx,
    pinOverride: {
      hsm: tokenName,
      pin: async (token) => {
        requireEscrowedToken(tokenName, token, escrowed);
        return escrowedPin(escrow, state);
      },
    },
  };
  if (purpose === 'restore')
    return {
      kind: 'copy',
      result: await copyKeys(unlocked, { from: tokenName, to: targets[0] as string }),
    };
  const token = await openHsm(unlocked, tokenName, false);
  try {
    return {
      kind: 'pin-drill',
      token: token.identity,
      keys: token.contents().keys.filter((k) => k.class !== 'public').length,
    };
  } finally {
    token.close();
  }
}

/**
 * A drill: every key of each bundle restored into a scratch SoftHSM token made for the purpose,
 * each proved and compared with its bundle, then the scratch store destroyed.
 */
async function drill(
  ctx: Context,
  bundles: readonly LoadedBundle[],
  state: QuorumState,
): Promise<Outcome> {
  const results: RestoreResult[] = [];
  let scratchDestroyed = true;
  for (const bundle of bundles) {
    const { result, destroyed } = await withScratchToken(ctx, async (scratch, token) => {
      const restored = await restoreWithQuorum(scratch, bundle, state, token);
      const mismatched = restored.keys
        .filter((k) => k.proof === 'none' || k.checkValue !== k.record.checkValue.value)
        .map((k) => k.record.label);
      if (mismatched.length > 0) {
        throw new CustosError(
          'E_VERIFY',
          `drill: ${mismatched.length} of ${restored.keys.length} keys of bundle ${bundle.body.bundleId} could not be shown to match it`,
          'the bundle cannot be trusted to restore these keys: make a new backup and keep this one as evidence',
          mismatched.map((l) => `not proved: ${l}`),
        );
      }
      return restored;
    });
    results.push(result);
    scratchDestroyed &&= destroyed;
  }
  return { kind: 'drill', results, scratchDestroyed };
}

function outcomeDetail(o: Outcome): Record<string, string | number | boolean | string[]> {
  switch (o.kind) {
    case 'restore':
      return {
        token: oneOrMany(o.results.map((r) => r.token)),
        ...(o.results.length > 1 ? { bundles: o.results.map((r) => r.bundleId) } : {}),
        restored: sum(o.results, (r) => r.keys.filter((k) => k.status === 'restored').length),
        present: sum(o.results, (r) => r.keys.filter((k) => k.status === 'present').length),
      };
    case 'drill':
      return {
        ...(o.results.length > 1 ? { bundles: o.results.map((r) => r.bundleId) } : {}),
        keys: sum(o.results, (r) => r.keys.length),
        proved: sum(o.results, (r) => r.keys.length),
        scratchDestroyed: o.scratchDestroyed,
      };
    case 'domain-drill':
      return { domainId: o.domainId, generation: o.generation };
    case 'copy':
      return {
        from: o.result.source.label,
        token: o.result.target.label,
        copied: o.result.keys.filter((k) => k.status === 'restored').length,
        mechanism: o.result.mechanism,
      };
    case 'pin-drill':
      return { token: o.token.label, serial: o.token.serial, keys: o.keys };
  }
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  return items.reduce((n, t) => n + f(t), 0);
}

/** One bundle's entry reads as it always has; several bundles give a list. */
function oneOrMany(values: string[]): string | string[] {
  return values.length === 1 ? (values[0] as string) : values;
}
