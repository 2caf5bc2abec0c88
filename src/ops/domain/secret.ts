/** The domain secret back from a quorum, checked against the domain's core, and what it opens. */
import { CustosError } from '../../core/errors.js';
import type { DomainSeal } from '../../core/bundle.js';
import type { DomainBody } from '../../core/domain.js';
import type { QuorumState } from '../../core/quorum.js';
import { decryptBytesWithIdentity } from '../../crypto/age.js';
import { authoritySigner, recipientOfIdentity } from '../../crypto/domain-keys.js';
import { combineShares } from '../../crypto/shamir.js';
import { wipe } from '../../crypto/wipe.js';

/**
 * Combines an authenticated quorum into the domain's age identity. It must give the core's seal
 * recipient and authority key back, or the shares and the domain do not belong together.
 * The caller wipes the result.
 */
export async function assembleDomainIdentity(
  core: DomainBody,
  state: QuorumState,
): Promise<Buffer> {
  const identity = combineShares(
    state.accepted.map((a) => a.share),
    core.seal.identityLength,
  );
  const matches =
    !!identity &&
    (await recipientOfIdentity(identity)) === core.seal.recipient &&
    authoritySigner(identity).publicKey.toString('base64') === core.authority.publicKey;
  if (!identity || !matches) {
    wipe(identity);
    throw new CustosError(
      'E_KEK_MISMATCH',
      `the shares do not reassemble the secret of domain ${core.domainId} (generation ${core.generation})`,
      'the shares and the domain do not belong together; nothing was written',
    );
  }
  return identity;
}

/** The bundle's KEK, opened with the domain identity a quorum reassembles. */
export async function openSealedKek(seal: DomainSeal, state: QuorumState): Promise<Buffer> {
  const identity = await assembleDomainIdentity(seal.core, state);
  try {
    const kek = await decryptBytesWithIdentity(seal.sealedKek.age, identity);
    if (!kek || kek.length !== 32) {
      throw new CustosError(
        'E_BUNDLE_TAMPERED',
        "the domain secret does not open the bundle's sealed key: the bundle was changed",
        'restore from an intact copy of the bundle; nothing was written',
      );
    }
    return Buffer.from(kek);
  } finally {
    wipe(identity);
  }
}
