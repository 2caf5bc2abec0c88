/**
 * Escrow of a token's user PIN: a fresh PIN from the token's own RNG, split among custodians like
 * a bundle KEK, and set only after its shares are written and proved. A profile saying
 * `pin: escrow:DIR` then needs a quorum of those custodians to open the token.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { parsePolicy } from '../core/policy.js';
import {
  MAX_ESCROWED_PIN,
  MIN_ESCROWED_PIN,
  pinFromSecret,
  type PinEscrow,
  type TokenIdentity,
} from '../core/bundle.js';
import type { QuorumState } from '../core/quorum.js';
import { createFilesAtomically, readInputFile } from '../io/files.js';
import { sameTokenIdentity, tokenName } from '../hsm/quirks.js';
import { checkEscrowInputs, sealAndSplit, type Sealed } from './escrow.js';
import { openHsmAsSecurityOfficer } from './hsm.js';
import { lockToken, lockWaitMs } from '../io/token-lock.js';
import type { HeldLock } from '../io/lock.js';
import {
  assembleOwnSecret,
  judgeShareFiles,
  loadBundle,
  requireQuorum,
  requireQuorumWarning,
  type LoadedBundle,
} from './shares.js';
import type { Context } from './context.js';
import { auditedSealing } from './audit.js';
import { wipe } from '../crypto/wipe.js';

export const PIN_ESCROW_FILE = 'pin-escrow.bundle';
export const VOID_FILE = 'VOID';

export interface EscrowPinRequest {
  hsm: string;
  policyPath: string;
  outDir: string;
}

export interface EscrowPinResult extends Sealed {
  dir: string;
  token: TokenIdentity;
  pinLength: number;
}

/** A token's PIN escrowed to custodians, recorded in the audit log as `escrow-pin`. */
export function escrowPin(ctx: Context, req: EscrowPinRequest): Promise<EscrowPinResult> {
  return auditedSealing(ctx, 'escrow-pin', 'pin-escrow', req, async (note) => {
    const done = await writeEscrow(ctx, req);
    note.detail.token = `${done.token.label} (serial ${done.token.serial})`;
    return done;
  });
}

async function writeEscrow(ctx: Context, req: EscrowPinRequest): Promise<EscrowPinResult> {
  const policy = parsePolicy(
    req.policyPath,
    readInputFile(resolve(ctx.cwd, req.policyPath), 'policy file').toString('utf8'),
  );
  const dir = resolve(ctx.cwd, req.outDir);
  const bundlePath = join(dir, PIN_ESCROW_FILE);
  const sharePaths = policy.custodians.map((c) => join(dir, `${c.id}.share`));
  await checkEscrowInputs(req.policyPath, policy, [
    bundlePath,
    ...sharePaths,
    join(dir, VOID_FILE),
  ]);

  const token = await openHsmAsSecurityOfficer(ctx, req.hsm);
  let secret: Buffer | undefined;
  let lock: HeldLock | undefined;
  try {
    // One writer per token: no other custos run changes this token while its PIN is replaced.
    lock = lockToken(ctx.cwd, token, 'escrow-pin', lockWaitMs(ctx.env), (l) =>
      ctx.out.note(l),
    ).lock;
    const pinLength = Math.min(MAX_ESCROWED_PIN, token.pinLimits.max);
    if (pinLength < MIN_ESCROWED_PIN || pinLength < token.pinLimits.min) {
      throw new CustosError(
        'E_HSM',
        `token "${token.identity.label}" allows PINs of ${token.pinLimits.min} to ${token.pinLimits.max} characters; an escrowed PIN needs ${MIN_ESCROWED_PIN} (128 bits)`,
        'use a token that accepts longer PINs',
      );
    }
    secret = token.generateRandom(32);
    const pin = pinFromSecret(secret, pinLength);
    // Shares first, proved by recombination inside sealAndSplit; only then the new PIN.
    const sealed = await sealAndSplit({
      source: token.identity,
      secret,
      policy,
      keys: [],
      skipped: [],
      bundlePath,
      sharePaths,
      escrowOf: {
        kind: 'token-pin',
        tokenLabel: token.identity.label,
        tokenSerial: token.identity.serial,
        pinLength,
      },
    });
    try {
      token.setUserPin(pin);
    } catch (e) {
      createFilesAtomically([
        {
          path: join(dir, VOID_FILE),
          mode: 0o644,
          data: "custos: setting the new PIN failed, so the shares in this directory are void.\nThe token's previous user PIN still works. Remove this directory before escrowing again.\n",
        },
      ]);
      throw e instanceof CustosError
        ? new CustosError(
            e.code,
            `${e.message}; the new shares are void and the old PIN still works`,
            `remove ${dir} and run escrow-pin again`,
          )
        : e;
    }
    if (!token.proveUserPin(pin)) {
      throw new CustosError(
        'E_VERIFY',
        `token "${token.identity.label}" did not accept the PIN it was just given`,
        `the PIN is escrowed in ${dir}; try unlocking it with a quorum before anything else`,
      );
    }
    return { ...sealed, dir, token: token.identity, pinLength };
  } finally {
    wipe(secret);
    lock?.release();
    token.close();
  }
}

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

/** Reassembles an escrowed PIN for `token` from a quorum of custodian shares, in memory only. */
export async function unlockEscrowedPin(
  ctx: Context,
  dirText: string,
  token: TokenIdentity,
): Promise<string> {
  const dir = resolve(ctx.cwd, dirText);
  const bundle = loadPinEscrow(ctx, dirText);
  const escrow = bundle.body.escrowOf;
  // The escrow names its token by label and serial; its source (the same token) also by maker and
  // model, which tell tokens apart where serials are all zero (quirk `zero-serial`).
  const escrowed = { ...bundle.body.source, label: escrow.tokenLabel, serial: escrow.tokenSerial };
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
