/**
 * Opening a PIN escrow: the record a `pin: escrow:DIR` profile points at, checked to be for the
 * token being opened, and the PIN reassembled from a quorum of custodian shares, in memory only.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { pinFromSecret, type PinEscrow, type TokenIdentity } from '../core/bundle.js';
import type { QuorumState } from '../core/quorum.js';
import { wipe } from '../crypto/wipe.js';
import { sameTokenIdentity, tokenName } from '../hsm/quirks.js';
import type { Context } from './context.js';
import {
  assembleOwnSecret,
  judgeShareFiles,
  loadBundle,
  requireQuorum,
  requireQuorumWarning,
  type LoadedBundle,
} from './shares.js';

/** The escrow record in an escrow directory; its shares lie beside it. */
export const PIN_ESCROW_FILE = 'pin-escrow.bundle';
/** Written beside the record when setting the escrowed PIN failed: the escrow opens nothing. */
export const VOID_FILE = 'VOID';

/** Loads the PIN escrow record in `dir`, refusing a void escrow or a key bundle. */
export function loadPinEscrow(
  ctx: Context,
  dirText: string,
): LoadedBundle & { body: { escrowOf: PinEscrow } } {
  const dir = resolve(ctx.cwd, dirText);
  if (existsSync(join(dir, VOID_FILE))) {
    throw new CustosError(
      'E_PIN_SOURCE',
      `the PIN escrow in ${dir} is void (setting that PIN failed)`,
      "use the escrow made after it, or the token's previous PIN source",
    );
  }
  const bundle = loadBundle(ctx, join(dir, PIN_ESCROW_FILE));
  if (!bundle.body.escrowOf)
    throw new CustosError(
      'E_PIN_SOURCE',
      `${bundle.path} is a key bundle, not a PIN escrow`,
      'point pin: escrow: at a directory made by custos escrow-pin',
    );
  return bundle as LoadedBundle & { body: { escrowOf: PinEscrow } };
}

/**
 * The token whose PIN the record escrows. The escrow names it by label and serial; its source (the
 * same token) also by maker and model, which tell tokens apart where serials are all zero (quirk
 * `zero-serial`).
 */
export function escrowedToken(bundle: LoadedBundle | undefined): TokenIdentity {
  const escrow = bundle?.body.escrowOf;
  if (!bundle || !escrow) throw new CustosError('E_INTERNAL', 'a PIN escrow record was expected');
  return { ...bundle.body.source, label: escrow.tokenLabel, serial: escrow.tokenSerial };
}

/** Reassembles an escrowed PIN for `token` from a quorum of custodian shares, in memory only. */
export async function unlockEscrowedPin(
  ctx: Context,
  dirText: string,
  token: TokenIdentity,
): Promise<string> {
  const dir = resolve(ctx.cwd, dirText);
  const bundle = loadPinEscrow(ctx, dirText);
  const escrowed = escrowedToken(bundle);
  if (!sameTokenIdentity(escrowed, token)) {
    throw new CustosError(
      'E_PIN_SOURCE',
      `the PIN escrow in ${dir} is for token ${tokenName(escrowed)}, not ${tokenName(token)}`,
      'point the profile at the escrow made for this token',
    );
  }
  const identities = ctx.escrow?.identities ?? [];
  if (identities.length === 0) {
    throw new CustosError(
      'E_QUORUM',
      `the PIN of token "${token.label}" is held by ${bundle.body.escrow.threshold} of ${bundle.body.escrow.total} custodians, and no custodian identity was given`,
      "give each present custodian's identity with --escrow-identity FILE (and their share with --escrow-share FILE if it is not in the escrow directory)",
    );
  }
  const shares = ctx.escrow?.shares.length
    ? ctx.escrow.shares
    : readdirSync(dir)
        .filter((f) => f.endsWith('.share'))
        .map((f) => join(dir, f));
  const state = await judgeShareFiles(ctx, bundle.quorum, shares, identities);
  // Shares that no given identity opens are simply other custodians' files in the directory.
  state.rejected = state.rejected.filter(
    (r) => r.reason !== 'unopened' || (ctx.escrow?.shares.length ?? 0) > 0,
  );
  requireQuorumWarning(ctx, bundle, state, 'PIN escrow: ');
  return escrowedPin(bundle, state);
}

/** The PIN a judged quorum reassembles; only in memory. */
export function escrowedPin(
  bundle: LoadedBundle & { body: { escrowOf: PinEscrow } },
  state: QuorumState,
): string {
  requireQuorum(bundle, state);
  const secret = assembleOwnSecret(bundle, state);
  try {
    return pinFromSecret(secret, bundle.body.escrowOf.pinLength);
  } finally {
    wipe(secret);
  }
}
