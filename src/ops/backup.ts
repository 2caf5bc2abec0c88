/**
 * Backup to a bundle: wrap every selected key inside the HSM under a fresh KEK, then seal the
 * bundle and split the KEK among the custodians (escrow.ts).
 */
import { basename, join, resolve } from 'node:path';
import { sha256Hex } from '../crypto/check-values.js';
import { CustosError } from '../core/errors.js';
import { parsePolicy, type Policy } from '../core/policy.js';
import type { BundleWrap, TokenIdentity } from '../core/bundle.js';
import type { Token } from '../hsm/token.js';
import { describeKey, type KeyRecord, type SkippedKey } from '../core/keys.js';
import { freshKek } from '../crypto/aes.js';
import { readInputFile } from '../io/files.js';
import { recordTokenKeys } from './records.js';
import { checkEscrowInputs, sealAndSplit, type Sealed } from './escrow.js';
import { openHsm } from './hsm.js';
import type { Context } from './context.js';
import { auditedSealing } from './audit.js';
import { wipe } from '../crypto/wipe.js';

export interface BackupRequest {
  hsm: string;
  policyPath: string;
  out: string;
  sharesDir?: string;
}

export interface BackupResult extends Sealed {
  bundlePath: string;
}

/** The backup, recorded in the audit log (`backup`) whether it succeeds or fails. */
export function backup(ctx: Context, req: BackupRequest): Promise<BackupResult> {
  return auditedSealing(ctx, 'backup', 'bundle', req, async (note) => {
    const done = await writeBackup(ctx, req);
    Object.assign(note.detail, {
      token: done.body.source.label,
      keys: done.body.keys.length,
      skipped: done.body.skipped.length,
    });
    return done;
  });
}

async function writeBackup(ctx: Context, req: BackupRequest): Promise<BackupResult> {
  const policyFile = readInputFile(resolve(ctx.cwd, req.policyPath), 'policy file');
  const policy = parsePolicy(req.policyPath, policyFile.toString('utf8'));
  const bundlePath = resolve(ctx.cwd, req.out);
  const sharesDir = resolve(ctx.cwd, req.sharesDir ?? `${req.out}.shares`);
  const sharePaths = policy.custodians.map((c) => join(sharesDir, `${c.id}.share`));
  // Fail on existing outputs and unusable recipients before touching the HSM.
  await checkEscrowInputs(req.policyPath, policy, [bundlePath, ...sharePaths]);

  const token = await openHsm(ctx, req.hsm, false);
  let wrapped: Wrapped;
  try {
    wrapped = wrapSelected(ctx, token, policy);
  } finally {
    token.close();
  }
  // Only the records and the KEK outlive the HSM work: the token's object descriptions are garbage
  // now.
  const { kek, keys, skipped, wrap, source } = wrapped;
  try {
    const sealed = await sealAndSplit({
      source,
      secret: kek,
      policy,
      keys,
      skipped,
      wrap,
      bundlePath,
      sharePaths,
      policyRecord: { name: basename(req.policyPath), sha256: sha256Hex(policyFile) },
    });
    return { bundlePath, ...sealed };
  } finally {
    wipe(kek);
  }
}

interface Wrapped {
  kek: Buffer;
  keys: KeyRecord[];
  skipped: SkippedKey[];
  wrap: BundleWrap;
  source: TokenIdentity;
}

/**
 * The HSM part of a backup: each selected key wrapped inside the token under a fresh KEK imported
 * as a session object, one key at a time (records.ts), so only the records stay in memory.
 */
function wrapSelected(ctx: Context, token: Token, policy: Policy): Wrapped {
  // The token's own RFC 5649 mechanism, proved by a known-answer test; the bundle records which.
  const wrap = token.wrapRecord();
  const kek = freshKek();
  try {
    const kekHandle = token.importKek(kek);
    let recorded: { keys: KeyRecord[]; skipped: SkippedKey[] };
    try {
      recorded = recordTokenKeys(token, kekHandle, policy.keys, (n) =>
        ctx.out.progress(`wrapping keys: ${n}`),
      );
    } finally {
      token.destroy(kekHandle);
      ctx.out.progressDone();
    }
    const { keys, skipped } = recorded;
    if (keys.length === 0) {
      throw new CustosError(
        'E_USAGE',
        `no extractable key on token "${token.identity.label}" matches the policy`,
        skipped.length
          ? `skipped: ${skipped.map((s) => `${describeKey(s)}: ${s.reason}`).join('; ')}`
          : 'check the keys.include patterns, and that the token holds secret or private keys',
      );
    }
    return { kek, keys, skipped, wrap, source: token.identity };
  } catch (e) {
    wipe(kek);
    throw e;
  }
}
