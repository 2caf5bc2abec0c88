/**
 * Restore from a bundle into a token: authenticate a quorum of shares, log in, reassemble the KEK
 * inside the token as a session key, and apply the bundle's keys (see apply.ts).
 */
import { CustosError } from '../core/errors.js';
import type { Handle } from '../hsm/module.js';
import { applyRecords, rollback, type Applied } from './apply.js';
import { holdToken, type HeldToken } from './run-marker.js';
import { openHsm } from './hsm.js';
import {
  assembleKek,
  judgeShareFiles,
  loadBundle,
  requireQuorumWarning,
  type LoadedBundle,
} from './shares.js';
import type { QuorumState } from '../core/quorum.js';
import type { Context } from './context.js';
import { audited } from './audit.js';
import { wipe } from '../crypto/wipe.js';

export interface RestoreRequest {
  bundlePath: string;
  hsm: string;
  shares: string[];
  identities: string[];
}

export interface RestoreResult extends Applied {
  bundleId: string;
  /** For a domain bundle: the domain and the generation its KEK is sealed to. */
  domain?: { domainId: string; generation: number };
  bundleFileDigest: string;
  token: string;
  custodians: string[];
  rejected: string[];
}

/** A restore from a bundle, recorded in the audit log as `restore`, whatever its outcome. */
export function restore(ctx: Context, req: RestoreRequest): Promise<RestoreResult> {
  return audited(ctx, 'restore', async (note) => {
    note.detail = { hsm: req.hsm };
    const done = await restoreFromBundle(ctx, req);
    note.bundle = done.bundleId;
    note.artifacts.bundle = done.bundleFileDigest;
    Object.assign(note.detail, {
      ...(done.domain ?? {}),
      token: done.token,
      quorum: done.custodians,
      restored: done.keys.filter((k) => k.status === 'restored').length,
      present: done.keys.filter((k) => k.status === 'present').length,
    });
    return done;
  });
}

async function restoreFromBundle(ctx: Context, req: RestoreRequest): Promise<RestoreResult> {
  const bundle = loadBundle(ctx, req.bundlePath);
  requireKeyBundle(bundle);
  const state = await judgeShareFiles(ctx, bundle.quorum, req.shares, req.identities);
  return restoreWithQuorum(ctx, bundle, state, req.hsm);
}

export function requireKeyBundle(bundle: LoadedBundle): void {
  if (bundle.body.escrowOf) {
    throw new CustosError(
      'E_USAGE',
      `${bundle.path} is a PIN escrow record, not a key bundle`,
      'a PIN escrow is used through pin: escrow:DIR in custos.yaml; restore takes a bundle made by custos backup',
    );
  }
}

/** Restores every key of the bundle into the token once the judged shares make a quorum. */
export async function restoreWithQuorum(
  ctx: Context,
  bundle: LoadedBundle,
  state: QuorumState,
  hsm: string,
): Promise<RestoreResult> {
  const rejected = requireQuorumWarning(ctx, bundle, state);

  // Log in and check the token before the KEK exists, so it is never in memory while a PIN is
  // typed.
  const token = await openHsm(ctx, hsm, true);
  let kekHandle: Handle | undefined;
  let held: HeldToken | undefined;
  let completed = false;
  try {
    // One writer per token: held from before the plan (in applyRecords) to the end.
    held = holdToken(ctx, token, 'restore');
    const marker = held.marker;
    token.requireWrapMechanism('unwrap');
    const kek = await assembleKek(bundle, state);
    try {
      kekHandle = token.importKek(kek);
    } finally {
      wipe(kek);
    }
    const applied = applyRecords(
      token,
      kekHandle,
      bundle.body.keys,
      'the bundle',
      (done, total) => ctx.out.progress(`restoring keys: ${done}/${total}`),
      {
        onPlan: (objects) => marker.planned(objects),
        leftovers: marker.leftovers,
        warn: (line) => ctx.out.warn(line),
      },
    );
    completed = true;
    return {
      bundleId: bundle.body.bundleId,
      ...(bundle.domain
        ? {
            domain: {
              domainId: bundle.domain.core.domainId,
              generation: bundle.domain.core.generation,
            },
          }
        : {}),
      bundleFileDigest: bundle.fileDigest,
      token: token.identity.label,
      custodians: state.accepted.map((a) => a.custodian),
      rejected,
      ...applied,
    };
  } finally {
    ctx.out.progressDone();
    if (kekHandle) rollback(token, [kekHandle]);
    try {
      held?.release(completed);
    } finally {
      token.close();
    }
  }
}
