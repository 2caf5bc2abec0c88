/**
 * `custos escrow-pin`: a fresh user PIN from the token's own RNG, split among custodians like a
 * bundle KEK, and set only after its shares are written and proved. A profile saying
 * `pin: escrow:DIR` then needs a quorum of those custodians to open the token (escrowed-pin.ts).
 */
import { join, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { parsePolicy } from '../core/policy.js';
import {
  MAX_ESCROWED_PIN,
  MIN_ESCROWED_PIN,
  pinFromSecret,
  type TokenIdentity,
} from '../core/bundle.js';
import { createFilesAtomically, readInputFile } from '../io/files.js';
import { checkEscrowInputs, sealAndSplit, type Sealed } from './escrow.js';
import { openHsmAsSecurityOfficer } from './hsm.js';
import { lockToken, lockWaitMs } from '../io/token-lock.js';
import type { HeldLock } from '../io/lock.js';
import type { Context } from './context.js';
import { auditedSealing } from './audit.js';
import { PIN_ESCROW_FILE, VOID_FILE } from './escrowed-pin.js';
import { wipe } from '../crypto/wipe.js';

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
