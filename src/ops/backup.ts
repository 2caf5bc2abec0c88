/**
 * Backup to a bundle: wrap every selected key inside the HSM under a fresh KEK, then seal the
 * bundle and split the KEK among the custodians (escrow.ts).
 */
import { basename, join, resolve } from 'node:path';
import { sha256Hex } from '../crypto/check-values.js';
import { CustosError } from '../core/errors.js';
import { parsePolicy } from '../core/policy.js';
import { describeKey, type KeyRecord } from '../core/keys.js';
import { freshKek } from '../crypto/aes.js';
import { readInputFile } from '../io/files.js';
import { labelFilter, recordKeys, selectKeys } from './records.js';
import { checkEscrowInputs, sealAndSplit, type Sealed } from './escrow.js';
import { openHsm } from './hsm.js';
import type { Context } from './context.js';

export interface BackupRequest {
  hsm: string;
  policyPath: string;
  out: string;
  sharesDir?: string;
}

export interface BackupResult extends Sealed {
  bundlePath: string;
}

export async function backup(ctx: Context, req: BackupRequest): Promise<BackupResult> {
  const policyFile = readInputFile(resolve(ctx.cwd, req.policyPath), 'policy file');
  const policy = parsePolicy(req.policyPath, policyFile.toString('utf8'));
  const bundlePath = resolve(ctx.cwd, req.out);
  const sharesDir = resolve(ctx.cwd, req.sharesDir ?? `${req.out}.shares`);
  const sharePaths = policy.custodians.map((c) => join(sharesDir, `${c.id}.share`));
  // Fail on existing outputs and unusable recipients before touching the HSM.
  await checkEscrowInputs(req.policyPath, policy, [bundlePath, ...sharePaths]);

  const token = await openHsm(ctx, req.hsm, false);
  let kek: Buffer | undefined;
  try {
    token.requireWrapMechanism('wrap');
    const contents = token.contents(labelFilter(policy.keys));
    const selection = selectKeys(contents.keys, policy.keys);
    if (selection.chosen.length === 0) {
      throw new CustosError('E_USAGE', `no extractable key on token "${token.identity.label}" matches the policy`,
        selection.skipped.length ? `skipped: ${selection.skipped.map((s) => `${describeKey(s)}: ${s.reason}`).join('; ')}` : 'check the keys.include patterns, and that the token holds secret or private keys');
    }
    kek = freshKek();
    const total = selection.chosen.length;
    const kekHandle = token.importKek(kek);
    let keys: KeyRecord[];
    try {
      keys = recordKeys(token, kekHandle, selection, contents, (n) => ctx.out.progress(`wrapping keys: ${n}/${total}`));
    } finally {
      token.destroy(kekHandle);
      ctx.out.progressDone();
    }

    const sealed = await sealAndSplit({ source: token.identity, secret: kek, policy, keys, skipped: selection.skipped, bundlePath, sharePaths,
      policyRecord: { name: basename(req.policyPath), sha256: sha256Hex(policyFile) } });
    return { bundlePath, ...sealed };
  } finally {
    kek?.fill(0);
    token.close();
  }
}

