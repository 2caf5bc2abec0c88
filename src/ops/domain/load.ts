/**
 * Reading escrow domains and judging what they vouch for: the authority's signature on the core
 * and on each enrolment, the chain from a bundle's signing key up to the authority, and whether
 * a later generation has replaced the domain.
 */
import { dirname, relative, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import {
  domainCoreBytes,
  enrolmentChain,
  enrolmentSignedBytes,
  parseDomain,
  supersessionSignedBytes,
  type DomainBody,
  type Enrolment,
  type ParsedDomain,
} from '../../core/domain.js';
import type { QuorumSubject } from '../../core/quorum.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { verifyEd25519 } from '../../crypto/ed25519.js';
import { spkiFingerprint, verifyEcdsaP256 } from '../../crypto/domain-keys.js';
import { readInputFile } from '../../io/files.js';
import type { Context } from '../context.js';

export interface LoadedDomain extends ParsedDomain {
  path: string;
  /** SHA-256 of the whole file, for the audit log. */
  fileDigest: string;
}

const TAMPERED_HINT =
  'use an intact copy of the domain file; ask whoever keeps the domain for theirs';

/**
 * Reads a domain file and checks every signature in it; refuses a file whose core or any line was
 * changed.
 */
export function loadDomain(ctx: Context, path: string): LoadedDomain {
  const file = readInputFile(resolve(ctx.cwd, path), 'domain file', {
    tooLargeCode: 'E_DOMAIN',
    tooLargeHint: TAMPERED_HINT,
  });
  const parsed = parseDomain(path, file, sha256Hex);
  const authority = Buffer.from(parsed.body.authority.publicKey, 'base64');
  if (!verifyEd25519(authority, parsed.core, parsed.coreSignature)) {
    throw new CustosError(
      'E_DOMAIN_TAMPERED',
      `${path} fails its signature: the domain was changed after it was made`,
      TAMPERED_HINT,
    );
  }
  for (const e of parsed.enrolments) {
    const chain = enrolmentChain(
      parsed.digest,
      parsed.enrolments,
      e.publicKey,
      enrolmentVerifier(parsed.body),
      spkiFingerprint,
    );
    if (typeof chain === 'string') {
      throw new CustosError(
        'E_DOMAIN_TAMPERED',
        `${path}: the enrolment of token "${e.source.label}" does not hold: ${chain}`,
        TAMPERED_HINT,
      );
    }
  }
  const s = parsed.superseded;
  if (
    s &&
    (s.domain !== parsed.digest ||
      !verifyEd25519(authority, supersessionSignedBytes(s), Buffer.from(s.signature, 'base64')))
  ) {
    throw new CustosError(
      'E_DOMAIN_TAMPERED',
      `${path}: the line saying the domain was replaced does not verify`,
      TAMPERED_HINT,
    );
  }
  return { ...parsed, path, fileDigest: sha256Hex(file) };
}

/** Refuses a domain a rotation has replaced, naming its successor. */
export function requireCurrent(ctx: Context, domain: LoadedDomain): void {
  const s = domain.superseded;
  if (!s) return;
  // The line names the new file from the old one's directory; say where it is from here.
  const next =
    relative(ctx.cwd, resolve(dirname(resolve(ctx.cwd, domain.path)), s.by.file)) || s.by.file;
  throw new CustosError(
    'E_DOMAIN_SUPERSEDED',
    `${domain.path} is generation ${domain.body.generation} of domain ${domain.body.domainId}, replaced by generation ${s.by.generation} (${next}) on ${s.time}`,
    `use the new domain file: --domain ${next}; shares of generation ${domain.body.generation} no longer open new backups`,
  );
}

export function domainDigest(core: DomainBody): string {
  return sha256Hex(domainCoreBytes(core));
}

/** What a domain's custodian shares are judged against. */
export function domainSubject(core: DomainBody, digest = domainDigest(core)): QuorumSubject {
  return {
    kind: 'domain',
    body: { bundleId: core.domainId, dealer: core.dealer, escrow: core.escrow },
    digest,
    generation: core.generation,
  };
}

export function enrolmentVerifier(core: DomainBody) {
  const authority = Buffer.from(core.authority.publicKey, 'base64');
  return (e: Enrolment, by: { kind: 'authority' } | { kind: 'ecdsa'; spki: string }): boolean => {
    const signed = enrolmentSignedBytes(e);
    const signature = Buffer.from(e.signature, 'base64');
    return by.kind === 'authority'
      ? verifyEd25519(authority, signed, signature)
      : verifyEcdsaP256(by.spki, signed, signature);
  };
}

/** The chain from an enrolled key up to the authority, or why there is none. */
export function chainOf(
  core: DomainBody,
  digest: string,
  enrolments: readonly Enrolment[],
  publicKey: string,
): Enrolment[] | string {
  return enrolmentChain(digest, enrolments, publicKey, enrolmentVerifier(core), spkiFingerprint);
}
