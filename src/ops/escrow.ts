/**
 * Sealing a secret for custodians: the bundle file (authenticated with a MAC keyed from the
 * secret) and one signed, age-encrypted share per custodian, proved by recombining a random
 * quorum before anything is written. Used for bundle KEKs and for escrowed token PINs.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { CustosError } from '../core/errors.js';
import type { Policy } from '../core/policy.js';
import {
  BUNDLE_MAC_PURPOSE,
  bundleAuthenticatedBytes,
  serialiseBundle,
  type BundleBody,
  type BundleWrap,
  type EscrowCustodian,
  type PinEscrow,
  type PolicyRecord,
  type TokenIdentity,
} from '../core/bundle.js';
import type { KeyRecord, SkippedKey } from '../core/keys.js';
import { parseShare, serialiseShare, shareSignedBytes, type ShareDocument } from '../core/share.js';
import { evaluateShares, type QuorumSubject } from '../core/quorum.js';
import { aesKcv, equalBytes, hmacWithKek } from '../crypto/aes.js';
import { freshSigner, verifyEd25519, type Signer } from '../crypto/ed25519.js';
import { combineShares, shareIndex, splitSecret } from '../crypto/shamir.js';
import { encryptToRecipient, isUsableRecipient } from '../crypto/age.js';
import { sha256Hex } from '../crypto/check-values.js';
import { createFilesAtomically, refuseExisting, type NewFile } from '../io/files.js';
import { VERSION } from './version.js';
import { wipe } from '../crypto/wipe.js';

export interface Sealed {
  body: BundleBody;
  /** SHA-256 of the bundle file as written. */
  bundleFileDigest: string;
  /** Each share file, with the SHA-256 of its bytes as written. */
  shareFiles: { custodian: string; name: string; index: number; path: string; digest: string }[];
  /** Custodians whose shares were recombined to prove the split before anything was written. */
  provedWith: string[];
}

/** Refuses existing outputs and recipients that cannot be encrypted to, before any HSM work. */
export async function checkEscrowInputs(
  policyPath: string,
  policy: Policy,
  outputs: readonly string[],
): Promise<void> {
  refuseExisting(outputs);
  for (const c of policy.custodians) {
    if (!(await isUsableRecipient(c.recipient))) {
      throw new CustosError(
        'E_POLICY',
        `${policyPath}: the recipient of custodian "${c.id}" is not a valid age key (checksum or key value wrong)`,
        'ask the custodian for their recipient again (age-keygen -y THEIR-KEY-FILE) and copy it exactly',
      );
    }
  }
}

function bundleBody(
  source: TokenIdentity,
  kek: Buffer,
  policy: Policy,
  dealerPublicKey: Buffer,
  keys: KeyRecord[],
  skipped: SkippedKey[],
  wrap: BundleWrap,
  escrowOf?: PinEscrow,
  policyRecord?: PolicyRecord,
): BundleBody {
  return {
    bundleId: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
    tool: `custos ${VERSION}`,
    source,
    kek: { algorithm: 'AES-256', kcv: aesKcv(kek) },
    wrap,
    escrow: {
      scheme: 'shamir-gf256',
      threshold: policy.threshold,
      total: policy.custodians.length,
      custodians: policy.custodians.map((c, i) => ({ ...c, index: i + 1 })),
    },
    dealer: { algorithm: 'Ed25519', publicKey: dealerPublicKey.toString('base64') },
    keys,
    skipped,
    ...(escrowOf ? { escrowOf } : {}),
    ...(policyRecord ? { policy: policyRecord } : {}),
  };
}

/** Recombines a random threshold subset of the fresh shares, as a restore would, and compares. */
function proveSplit(subject: QuorumSubject, plaintexts: string[], secret: Buffer): string[] {
  const { escrow } = subject.body;
  const order = plaintexts.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const subset = order.slice(0, escrow.threshold);
  const state = evaluateShares(
    subject,
    subset.map((i) => {
      const custodian = escrow.custodians[i];
      return {
        source: custodian?.id ?? '?',
        opened: {
          share: parseShare('new share', plaintexts[i] as string),
          recipient: custodian?.recipient ?? '',
        },
      };
    }),
    verifyEd25519,
    shareIndex,
  );
  const again =
    state.missing === 0
      ? combineShares(
          state.accepted.map((a) => a.share),
          secret.length,
        )
      : null;
  const same = !!again && equalBytes(again, secret);
  wipe(again);
  if (!same) {
    throw new CustosError(
      'E_VERIFY',
      'the new shares did not reassemble the secret they were split from; nothing was written',
      'this is a defect in custos: please report it',
    );
  }
  return state.accepted.map((a) => a.custodian);
}

/**
 * Splits a secret among the subject's custodians: one share document each, signed by the dealer,
 * the split proved by recombining a random quorum. Nothing is written here.
 */
export function dealShares(
  subject: QuorumSubject,
  dealer: Signer,
  secret: Buffer,
): { plaintexts: string[]; provedWith: string[] } {
  const { escrow } = subject.body;
  const shares = splitSecret(secret, escrow.total, escrow.threshold);
  const plaintexts = escrow.custodians.map((c, i) => {
    const doc: ShareDocument = {
      ...(subject.kind ? { kind: subject.kind } : {}),
      bundleId: subject.body.bundleId,
      bundleDigest: subject.digest,
      custodian: c.id,
      index: c.index,
      threshold: escrow.threshold,
      total: escrow.total,
      share: shares[i] as string,
    };
    const signed = shareSignedBytes(doc);
    return serialiseShare(signed, dealer.sign(signed));
  });
  return { plaintexts, provedWith: proveSplit(subject, plaintexts, secret) };
}

/** Each custodian's share, age-encrypted (armored) to their recipient. */
export function encryptShares(
  custodians: readonly EscrowCustodian[],
  plaintexts: readonly string[],
): Promise<string[]> {
  return Promise.all(
    custodians.map((c, i) => encryptToRecipient(c.recipient, plaintexts[i] as string)),
  );
}

export interface SealRequest {
  source: TokenIdentity;
  /** The 32-byte secret custodians will hold: a bundle KEK, or the seed of an escrowed PIN. */
  secret: Buffer;
  policy: Policy;
  keys: KeyRecord[];
  skipped: SkippedKey[];
  /**
   * How the source token wrapped the keys (Token.wrapRecord); a PIN escrow, which wraps nothing,
   * records the default.
   */
  wrap?: BundleWrap;
  escrowOf?: PinEscrow;
  /** The policy file's name and digest, recorded in the bundle. */
  policyRecord?: PolicyRecord;
  bundlePath: string;
  sharePaths: string[];
}

/**
 * The bundle file and the digest its shares bind. The authenticated bytes are not kept beyond this
 * (in the async sealAndSplit they would live until it returns: a large bundle held twice).
 */
function bundleFileOf(body: BundleBody, secret: Buffer): { file: Buffer; digest: string } {
  const authenticated = bundleAuthenticatedBytes(body);
  return {
    file: serialiseBundle(authenticated, hmacWithKek(secret, BUNDLE_MAC_PURPOSE, authenticated)),
    digest: sha256Hex(authenticated),
  };
}

export async function sealAndSplit(req: SealRequest): Promise<Sealed> {
  const { policy, secret } = req;
  const dealer = freshSigner();
  const body = bundleBody(
    req.source,
    secret,
    policy,
    dealer.publicKey,
    req.keys,
    req.skipped,
    req.wrap ?? { mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' },
    req.escrowOf,
    req.policyRecord,
  );
  const { file: bundleFile, digest } = bundleFileOf(body, secret);

  const { plaintexts, provedWith } = dealShares({ body, digest }, dealer, secret);
  const encrypted = await encryptShares(body.escrow.custodians, plaintexts);

  // The bundle is placed last: a crash part-way leaves share files without their bundle (useless
  // alone, and refused by the next run as existing) rather than a bundle some custodians lack.
  const files: NewFile[] = [
    ...encrypted.map((data, i) => ({ path: req.sharePaths[i] as string, data, mode: 0o600 })),
    { path: req.bundlePath, data: bundleFile, mode: 0o600 },
  ];
  createFilesAtomically(files);
  return {
    body,
    bundleFileDigest: sha256Hex(bundleFile),
    shareFiles: body.escrow.custodians.map((c, i) => ({
      custodian: c.id,
      name: c.name,
      index: c.index,
      path: req.sharePaths[i] as string,
      digest: sha256Hex(Buffer.from(encrypted[i] as string, 'utf8')),
    })),
    provedWith,
  };
}
