/**
 * Backup to a bundle: wrap every selected key inside the HSM under a fresh KEK, write the bundle,
 * split the KEK into signed custodian shares, and prove a quorum of them reassembles it.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { join, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { parsePolicy, type Policy } from '../core/policy.js';
import { BUNDLE_MAC_PURPOSE, bundleAuthenticatedBytes, serialiseBundle, type BundleBody, type TokenIdentity } from '../core/bundle.js';
import { describeKey, type KeyRecord, type SkippedKey } from '../core/keys.js';
import { parseShare, serialiseShare, shareSignedBytes, type ShareDocument } from '../core/share.js';
import { evaluateShares } from '../core/quorum.js';
import { aesKcv, equalBytes, freshKek, hmacWithKek } from '../crypto/aes.js';
import { freshSigner, verifyEd25519 } from '../crypto/ed25519.js';
import { combineShares, shareIndex, splitSecret } from '../crypto/shamir.js';
import { encryptToRecipient, isUsableRecipient } from '../crypto/age.js';
import { sha256Hex } from '../crypto/check-values.js';
import { createFilesAtomically, readInputFile, refuseExisting, type NewFile } from '../io/files.js';
import { recordKeys, selectKeys } from './records.js';
import { openHsm } from './hsm.js';
import type { Context } from './context.js';
import { VERSION } from './version.js';

export interface BackupRequest {
  hsm: string;
  policyPath: string;
  out: string;
  sharesDir?: string;
}

export interface BackupResult {
  bundlePath: string;
  body: BundleBody;
  shareFiles: { custodian: string; name: string; index: number; path: string }[];
  /** Custodians whose shares were recombined to prove the split before anything was written. */
  provedWith: string[];
}

function bundleBody(source: TokenIdentity, kek: Buffer, policy: Policy, dealerPublicKey: Buffer, keys: KeyRecord[], skipped: SkippedKey[]): BundleBody {
  return {
    bundleId: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
    tool: `custos ${VERSION}`,
    source,
    kek: { algorithm: 'AES-256', kcv: aesKcv(kek) },
    wrap: { mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' },
    escrow: {
      scheme: 'shamir-gf256',
      threshold: policy.threshold,
      total: policy.custodians.length,
      custodians: policy.custodians.map((c, i) => ({ ...c, index: i + 1 })),
    },
    dealer: { algorithm: 'Ed25519', publicKey: dealerPublicKey.toString('base64') },
    keys,
    skipped,
  };
}

/** Recombines a random threshold subset of the fresh shares, as a restore would, and compares. */
function proveSplit(body: BundleBody, digest: string, plaintexts: string[], kek: Buffer): string[] {
  const order = plaintexts.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const subset = order.slice(0, body.escrow.threshold);
  const state = evaluateShares({ body, digest }, subset.map((i) => {
    const custodian = body.escrow.custodians[i];
    return { source: custodian?.id ?? '?', opened: { share: parseShare('new share', plaintexts[i] as string), recipient: custodian?.recipient ?? '' } };
  }), verifyEd25519, shareIndex);
  const again = state.missing === 0 ? combineShares(state.accepted.map((a) => a.share), kek.length) : null;
  if (!again || !equalBytes(again, kek)) {
    throw new CustosError('E_VERIFY', 'the new shares did not reassemble the backup key; nothing was written', 'this is a defect in custos: please report it');
  }
  return state.accepted.map((a) => a.custodian);
}

export async function backup(ctx: Context, req: BackupRequest): Promise<BackupResult> {
  const policy = parsePolicy(req.policyPath, readInputFile(resolve(ctx.cwd, req.policyPath), 'policy file').toString('utf8'));
  const bundlePath = resolve(ctx.cwd, req.out);
  const sharesDir = resolve(ctx.cwd, req.sharesDir ?? `${req.out}.shares`);
  const sharePaths = policy.custodians.map((c) => join(sharesDir, `${c.id}.share`));
  // Fail on existing outputs and unusable recipients before touching the HSM; the atomic writer
  // checks the outputs again at the end.
  refuseExisting([bundlePath, ...sharePaths]);
  for (const c of policy.custodians) {
    if (!(await isUsableRecipient(c.recipient))) {
      throw new CustosError('E_POLICY', `${req.policyPath}: the recipient of custodian "${c.id}" is not a valid age key (checksum or key value wrong)`,
        'ask the custodian for their recipient again (age-keygen -y THEIR-KEY-FILE) and copy it exactly');
    }
  }

  const token = await openHsm(ctx, req.hsm, false);
  let kek: Buffer | undefined;
  try {
    token.requireWrapMechanism('wrap');
    const contents = token.contents();
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

    const dealer = freshSigner();
    const body = bundleBody(token.identity, kek, policy, dealer.publicKey, keys, selection.skipped);
    const authenticated = bundleAuthenticatedBytes(body);
    const digest = sha256Hex(authenticated);
    const bundleFile = serialiseBundle(authenticated, hmacWithKek(kek, BUNDLE_MAC_PURPOSE, authenticated));

    const shares = splitSecret(kek, policy.custodians.length, policy.threshold);
    const plaintexts = body.escrow.custodians.map((c, i) => {
      const doc: ShareDocument = { bundleId: body.bundleId, bundleDigest: digest, custodian: c.id, index: c.index, threshold: policy.threshold, total: policy.custodians.length, share: shares[i] as string };
      const signed = shareSignedBytes(doc);
      return serialiseShare(signed, dealer.sign(signed));
    });
    const provedWith = proveSplit(body, digest, plaintexts, kek);
    const encrypted = await Promise.all(body.escrow.custodians.map((c, i) => encryptToRecipient(c.recipient, plaintexts[i] as string)));

    // The bundle is placed last: a crash part-way leaves share files without their bundle (useless
    // alone, and refused by the next run as existing) rather than a bundle some custodians lack.
    const files: NewFile[] = [
      ...encrypted.map((data, i) => ({ path: sharePaths[i] as string, data, mode: 0o600 })),
      { path: bundlePath, data: bundleFile, mode: 0o600 },
    ];
    createFilesAtomically(files);
    return {
      bundlePath,
      body,
      shareFiles: body.escrow.custodians.map((c, i) => ({ custodian: c.id, name: c.name, index: c.index, path: sharePaths[i] as string })),
      provedWith,
    };
  } finally {
    kek?.fill(0);
    token.close();
  }
}

