/**
 * Closing a ceremony: with a quorum accepted and the ceremony unexpired, do what it was opened
 * for — restore a bundle into a token, open an escrowed backup token and copy its keys out, or a
 * drill — then sign the closing entry with the ceremony key and destroy the host's secrets.
 */
import { basename, dirname, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { CustosError } from '../core/errors.js';
import { expired } from '../core/ceremony.js';
import type { TokenIdentity } from '../core/bundle.js';
import type { QuorumState } from '../core/quorum.js';
import { withScratchToken } from './scratch.js';
import { audited } from './audit.js';
import { claimHost, destroyHostSecrets, openHost, type Host, type LoadedCeremony } from './ceremony.js';
import { judgeSubmissions } from './submissions.js';
import { copyKeys, type CopyResult } from './copy.js';
import { openHsm } from './hsm.js';
import { escrowedPin, loadPinEscrow, PIN_ESCROW_FILE } from './pin-escrow.js';
import { restoreWithQuorum, requireKeyBundle, type RestoreResult } from './restore.js';
import { loadBundle, requireQuorum, type LoadedBundle } from './shares.js';
import type { Context } from './context.js';

export interface CloseRequest {
  /** The token to restore into, or (for a PIN-escrow drill) the escrowed token. */
  hsm?: string;
  /** For a PIN-escrow restore: the escrowed backup token to copy from. */
  fromHsm?: string;
  /** Where the subject is, when not where the ceremony file says. */
  subject?: string;
}

export type Outcome =
  | { kind: 'restore'; result: RestoreResult }
  | { kind: 'drill'; result: RestoreResult; scratchDestroyed: boolean }
  | { kind: 'copy'; result: CopyResult }
  | { kind: 'pin-drill'; token: TokenIdentity; keys: number };

export interface Closing {
  ceremony: LoadedCeremony;
  custodians: string[];
  outcome: Outcome;
}

/** Checks everything that can be checked before any HSM is touched: host, expiry, quorum, subject. */
export async function prepareClose(ctx: Context, c: LoadedCeremony, req: CloseRequest, host: Host): Promise<{ state: QuorumState; subject: LoadedBundle }> {
  const { body } = c;
  if (body.purpose === 'handover') {
    throw new CustosError('E_USAGE', `ceremony ${body.nonce} is for a handover`, `it is closed by custos handover execute REQUEST --ceremony ${c.path}`);
  }
  if (expired(body, new Date())) {
    throw new CustosError('E_CEREMONY', `ceremony ${body.nonce} expired at ${body.expires}`, 'open a new ceremony; the custodians submit again');
  }
  const needs = body.subject.kind === 'bundle'
    ? (body.purpose === 'restore' ? ['hsm'] : [])
    : (body.purpose === 'restore' ? ['fromHsm', 'hsm'] : ['hsm']);
  const flag = { hsm: '--hsm', fromHsm: '--from-hsm' } as const;
  for (const n of ['hsm', 'fromHsm'] as const) {
    if (needs.includes(n) && !req[n]) throw new CustosError('E_USAGE', `closing this ${body.purpose} ceremony needs ${flag[n]} NAME`, closeHint(c));
    if (!needs.includes(n) && req[n]) throw new CustosError('E_USAGE', `closing this ${body.purpose} ceremony takes no ${flag[n]}`, closeHint(c));
  }
  const { state } = await judgeSubmissions(c, host, []);
  const given = req.subject ? resolve(ctx.cwd, req.subject) : undefined;
  const subjectPath = given ?? resolve(dirname(resolve(ctx.cwd, c.path)), body.subject.file);
  // A PIN escrow is named by its directory, as in ceremony open --pin-escrow DIR (or by its record file).
  const escrowDir = given && existsSync(given) && statSync(given).isDirectory() ? given : dirname(subjectPath);
  if (body.subject.kind === 'pin-escrow' && given && escrowDir !== given && basename(given) !== PIN_ESCROW_FILE) {
    throw new CustosError('E_USAGE', `--subject ${req.subject} is neither a PIN escrow directory nor its ${PIN_ESCROW_FILE}`, 'pass the directory made by custos escrow-pin');
  }
  const subject = body.subject.kind === 'bundle' ? loadBundle(ctx, subjectPath) : loadPinEscrow(ctx, escrowDir);
  if (body.subject.kind === 'bundle') requireKeyBundle(subject);
  if (subject.body.bundleId !== body.subject.bundleId || subject.digest !== body.subject.bundleDigest) {
    throw new CustosError('E_CEREMONY', `${subjectPath} is not the ${body.subject.kind === 'bundle' ? 'bundle' : 'PIN escrow'} ceremony ${body.nonce} was opened for (id or digest differs)`,
      'pass the right file with --subject FILE; nothing was written');
  }
  requireQuorum(subject, state);
  return { state, subject };
}

export function closeHint(c: LoadedCeremony): string {
  const { purpose, subject } = c.body;
  if (purpose === 'handover') return `custos handover execute REQUEST --ceremony ${c.path} --out PACKAGE`;
  if (subject.kind === 'bundle') return purpose === 'restore' ? `custos ceremony close ${c.path} --hsm TARGET` : `custos ceremony close ${c.path}`;
  return purpose === 'restore' ? `custos ceremony close ${c.path} --from-hsm ESCROWED-TOKEN --hsm TARGET` : `custos ceremony close ${c.path} --hsm ESCROWED-TOKEN`;
}

export async function closeCeremony(ctx: Context, c: LoadedCeremony, req: CloseRequest): Promise<Closing> {
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
      claim = claimHost(ctx, c, host, `ceremony close${req.hsm ? ` --hsm ${req.hsm}` : ''}${req.fromHsm ? ` --from-hsm ${req.fromHsm}` : ''}`);
      const prepared = await prepareClose(ctx, c, req, host);
      custodians = prepared.state.accepted.map((a) => a.custodian);
      note.artifacts[c.body.subject.kind] = prepared.subject.digest;
      note.detail.quorum = custodians;
      const done = await perform(ctx, c, req, prepared.subject, prepared.state);
      performed = true;
      Object.assign(note.detail, outcomeDetail(done));
      return done;
    });
    return { ceremony: c, custodians, outcome };
  } finally {
    // Once the purpose is done the ceremony is spent, even if its closing entry could not be written.
    if (performed && host) destroyHostSecrets(ctx, c, host, `${c.body.purpose} completed`);
    else claim?.release();
  }
}

async function perform(ctx: Context, c: LoadedCeremony, req: CloseRequest, subject: LoadedBundle, state: QuorumState): Promise<Outcome> {
  const { purpose } = c.body;
  if (c.body.subject.kind === 'bundle') {
    if (purpose === 'restore') return { kind: 'restore', result: await restoreWithQuorum(ctx, subject, state, req.hsm as string) };
    return drill(ctx, subject, state);
  }
  // The very record prepareClose loaded and checked against the ceremony.
  const escrow = subject as Parameters<typeof escrowedPin>[0];
  const tokenName = (purpose === 'restore' ? req.fromHsm : req.hsm) as string;
  const unlocked: Context = {
    ...ctx,
    pinOverride: {
      hsm: tokenName,
      pin: async (token) => {
        const e = escrow.body.escrowOf;
        if (e.tokenSerial !== token.serial || e.tokenLabel !== token.label) {
          throw new CustosError('E_PIN_SOURCE', `"${tokenName}" is token "${token.label}" (serial ${token.serial}); the escrowed PIN is for "${e.tokenLabel}" (serial ${e.tokenSerial})`,
            'name the escrowed token; nothing was written');
        }
        return escrowedPin(escrow, state);
      },
    },
  };
  if (purpose === 'restore') return { kind: 'copy', result: await copyKeys(unlocked, { from: tokenName, to: req.hsm as string }) };
  const token = await openHsm(unlocked, tokenName, false);
  try {
    return { kind: 'pin-drill', token: token.identity, keys: token.contents().keys.filter((k) => k.class !== 'public').length };
  } finally {
    token.close();
  }
}

/**
 * A drill: every key restored into a scratch SoftHSM token made for the purpose, each proved
 * and compared with the bundle, then the scratch store destroyed.
 */
async function drill(ctx: Context, bundle: LoadedBundle, state: QuorumState): Promise<Outcome> {
  const { result, destroyed } = await withScratchToken(ctx, async (scratch, token) => {
    const restored = await restoreWithQuorum(scratch, bundle, state, token);
    const mismatched = restored.keys.filter((k) => k.proof === 'none' || k.checkValue !== k.record.checkValue.value).map((k) => k.record.label);
    if (mismatched.length > 0) {
      throw new CustosError('E_VERIFY', `drill: ${mismatched.length} of ${restored.keys.length} keys could not be shown to match the bundle`,
        'the bundle cannot be trusted to restore these keys: make a new backup and keep this one as evidence', mismatched.map((l) => `not proved: ${l}`));
    }
    return restored;
  });
  return { kind: 'drill', result, scratchDestroyed: destroyed };
}

function outcomeDetail(o: Outcome): Record<string, string | number | boolean | string[]> {
  switch (o.kind) {
    case 'restore':
      return { token: o.result.token, restored: o.result.keys.filter((k) => k.status === 'restored').length, present: o.result.keys.filter((k) => k.status === 'present').length };
    case 'drill':
      return { keys: o.result.keys.length, proved: o.result.keys.length, scratchDestroyed: o.scratchDestroyed };
    case 'copy':
      return { from: o.result.source.label, token: o.result.target.label, copied: o.result.keys.filter((k) => k.status === 'restored').length, mechanism: o.result.mechanism };
    case 'pin-drill':
      return { token: o.token.label, serial: o.token.serial, keys: o.keys };
  }
}
