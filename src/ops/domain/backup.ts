/**
 * Backup under an escrow domain: no custodian takes part. The keys are wrapped inside the HSM
 * under a fresh KEK as for any bundle; the KEK is sealed to the domain's public recipient, and
 * the bundle is signed inside the HSM with the key the domain enrolled there.
 */
import { resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import {
  BUNDLE_MAC_PURPOSE,
  domainBundleAuthenticatedBytes,
  parseBundle,
  serialiseBundle,
  type BundleContents,
  type DomainSeal,
} from '../../core/bundle.js';
import { describeKey, type KeyRecord } from '../../core/keys.js';
import { parseKeySelection, type KeySelection } from '../../core/policy.js';
import { aesKcv, freshKek, hmacWithKek } from '../../crypto/aes.js';
import { encryptBytesToRecipient } from '../../crypto/age.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { verifyEcdsaP256 } from '../../crypto/domain-keys.js';
import { domainSigningKeys, isDomainKeyLabel, signWithDomainKey } from '../../hsm/domain-key.js';
import { createFilesAtomically, readInputFile, refuseExisting } from '../../io/files.js';
import { labelFilter, recordKeys, selectKeys } from '../records.js';
import { openHsm } from '../hsm.js';
import { VERSION } from '../version.js';
import type { Context } from '../context.js';
import { audited } from '../audit.js';
import { chainOf, loadDomain, requireCurrent, type LoadedDomain } from './load.js';
import { wipe } from '../../crypto/wipe.js';

export interface DomainBackupRequest {
  hsm: string;
  domain: string;
  out: string;
  /** A policy file whose keys section picks the keys; every extractable key when absent. */
  keysPolicy?: string;
}

export interface DomainBackupResult {
  bundlePath: string;
  bundleFileDigest: string;
  contents: BundleContents;
  domain: LoadedDomain;
}

/** The backup to a domain, recorded in the audit log (`backup`) whether it succeeds or fails. */
export function backupToDomain(
  ctx: Context,
  req: DomainBackupRequest,
): Promise<DomainBackupResult> {
  return audited(ctx, 'backup', async (note) => {
    note.detail = { hsm: req.hsm, domain: req.domain };
    const done = await writeDomainBackup(ctx, req);
    note.bundle = done.contents.bundleId;
    note.artifacts.bundle = done.bundleFileDigest;
    note.artifacts.domain = done.domain.fileDigest;
    Object.assign(note.detail, {
      token: done.contents.source.label,
      keys: done.contents.keys.length,
      skipped: done.contents.skipped.length,
      domainId: done.domain.body.domainId,
      generation: done.domain.body.generation,
    });
    return done;
  });
}

async function writeDomainBackup(
  ctx: Context,
  req: DomainBackupRequest,
): Promise<DomainBackupResult> {
  const domain = loadDomain(ctx, req.domain);
  requireCurrent(ctx, domain);
  const selection: KeySelection = req.keysPolicy
    ? parseKeySelection(
        req.keysPolicy,
        readInputFile(resolve(ctx.cwd, req.keysPolicy), 'policy file').toString('utf8'),
      )
    : { include: ['*'], exclude: [] };
  const bundlePath = resolve(ctx.cwd, req.out);
  refuseExisting([bundlePath]);
  const core = domain.body;

  const token = await openHsm(ctx, req.hsm, false);
  let kek: Buffer | undefined;
  try {
    const enrolled = domainSigningKeys(token, core.domainId)
      .map((key) => ({
        key,
        chain: chainOf(core, domain.digest, domain.enrolments, key.publicKey),
      }))
      .find((k) => typeof k.chain !== 'string');
    if (!enrolled || typeof enrolled.chain === 'string') {
      throw new CustosError(
        'E_DOMAIN',
        `token "${token.identity.label}" is not enrolled in domain ${core.domainId} (${req.domain})`,
        `enrol it once: custos domain enroll --domain ${req.domain} --hsm ${req.hsm} --endorser AN-ENROLLED-HSM`,
      );
    }
    token.requireWrapMechanism('wrap');
    const contents = token.contents(labelFilter(selection));
    // Domain signing keys (this domain's or another's) never leave the token: not worth a warning.
    const chosen = selectKeys(
      contents.keys.filter((k) => !isDomainKeyLabel(k.label)),
      selection,
    );
    if (chosen.chosen.length === 0) {
      throw new CustosError(
        'E_USAGE',
        `no extractable key on token "${token.identity.label}" matches the selection`,
        chosen.skipped.length
          ? `skipped: ${chosen.skipped.map((s) => `${describeKey(s)}: ${s.reason}`).join('; ')}`
          : 'check the keys.include patterns, and that the token holds secret or private keys',
      );
    }
    kek = freshKek();
    const kekHandle = token.importKek(kek);
    let keys: KeyRecord[];
    try {
      const total = chosen.chosen.length;
      keys = recordKeys(token, kekHandle, chosen, contents, (n) =>
        ctx.out.progress(`wrapping keys: ${n}/${total}`),
      );
    } finally {
      token.destroy(kekHandle);
      ctx.out.progressDone();
    }
    const bundleContents: BundleContents = {
      bundleId: token.generateRandom(16).toString('hex'),
      created: new Date().toISOString(),
      tool: `custos ${VERSION}`,
      source: token.identity,
      kek: { algorithm: 'AES-256', kcv: aesKcv(kek) },
      wrap: token.wrapRecord(),
      keys,
      skipped: chosen.skipped,
      // The custodial rules a handover of these keys is judged by are the domain's.
      policy: core.policy,
    };
    const seal: DomainSeal = {
      core,
      chain: enrolled.chain,
      sealedKek: {
        recipient: core.seal.recipient,
        age: await encryptBytesToRecipient(core.seal.recipient, kek),
      },
    };
    const authenticated = domainBundleAuthenticatedBytes(bundleContents, seal);
    const signature = signWithDomainKey(token, core.domainId, enrolled.key, authenticated);
    const file = serialiseBundle(
      authenticated,
      hmacWithKek(kek, BUNDLE_MAC_PURPOSE, authenticated),
      { by: 'source', value: signature },
    );
    proveBundle(req.out, file, enrolled.key.publicKey);
    createFilesAtomically([{ path: bundlePath, data: file, mode: 0o600 }]);
    return { bundlePath, bundleFileDigest: sha256Hex(file), contents: bundleContents, domain };
  } finally {
    wipe(kek);
    token.close();
  }
}

/**
 * Reads the new bundle back as a restore would and checks the token's signature, before it is
 * written.
 */
function proveBundle(where: string, file: Buffer, publicKey: string): void {
  const parsed = parseBundle(where, file);
  if (
    !parsed.signature ||
    !verifyEcdsaP256(publicKey, parsed.authenticated, parsed.signature.value)
  ) {
    throw new CustosError(
      'E_VERIFY',
      "the token's signature on the new bundle does not verify; nothing was written",
      'check the token, then run the backup again',
    );
  }
}
