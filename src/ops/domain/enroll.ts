/**
 * `custos domain enroll`: a further source HSM joins a domain. Its enrolment is vouched for by a
 * token already enrolled (which signs it inside that HSM), or by a quorum of custodians through
 * the domain's authority key, when no enrolled HSM is left (after a disaster).
 */
import { resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { enrolmentSignedBytes, serialiseDomain, type Enrolment } from '../../core/domain.js';
import { authoritySigner, spkiFingerprint } from '../../crypto/domain-keys.js';
import { domainSigningKeys, signWithDomainKey } from '../../hsm/domain-key.js';
import { replaceFileAtomically } from '../../io/files.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { judgeShareFiles, rejectionLines } from '../shares.js';
import { openHsm } from '../hsm.js';
import type { Context } from '../context.js';
import { audited } from '../audit.js';
import { chainOf, domainSubject, loadDomain, requireCurrent, type LoadedDomain } from './load.js';
import { assembleDomainIdentity } from './secret.js';
import { enrolToken, type Endorse } from './enrol-token.js';
import type { Token } from '../../hsm/token.js';
import { wipe } from '../../crypto/wipe.js';

export interface EnrollRequest {
  domain: string;
  hsm: string;
  /** An enrolled HSM that vouches for the new one. */
  endorser?: string;
  /** Or a quorum of custodians. */
  shares?: string[];
  identities?: string[];
}

export interface EnrollResult {
  domain: LoadedDomain;
  enrolment: Enrolment;
  /** Already enrolled: nothing was written. */
  already: boolean;
  endorsedBy: string;
  fileDigest?: string;
}

/** The enrolment, recorded in the audit log (`domain-enroll`) whether it succeeds or fails. */
export function domainEnroll(ctx: Context, req: EnrollRequest): Promise<EnrollResult> {
  return audited(ctx, 'domain-enroll', async (note) => {
    const { domain, hsm, endorser } = req;
    note.detail = { domain, hsm, ...(endorser ? { endorser } : {}) };
    const done = await enrol(ctx, req);
    if (done.fileDigest) note.artifacts.domain = done.fileDigest;
    Object.assign(note.detail, {
      domainId: done.domain.body.domainId,
      generation: done.domain.body.generation,
      token: done.enrolment.source.label,
      already: done.already,
    });
    return done;
  });
}

async function enrol(ctx: Context, req: EnrollRequest): Promise<EnrollResult> {
  const domain = loadDomain(ctx, req.domain);
  requireCurrent(ctx, domain);
  const { body, digest } = domain;
  if (!req.endorser && !req.shares?.length) {
    throw new CustosError(
      'E_USAGE',
      'domain enroll needs someone to vouch for the new HSM: --endorser HSM, or --share and --identity of a quorum',
      'name an HSM already enrolled in the domain (custos domain show lists them), or bring a quorum of custodians',
    );
  }
  let endorserToken: Token | undefined;
  let authority: Buffer | undefined;
  try {
    let endorse: Endorse;
    let endorser: string;
    let endorsedBy: string;
    if (req.endorser) {
      const token = await openHsm(ctx, req.endorser, false);
      endorserToken = token;
      const key = domainSigningKeys(token, body.domainId).find(
        (k) => typeof chainOf(body, digest, domain.enrolments, k.publicKey) !== 'string',
      );
      if (!key) {
        throw new CustosError(
          'E_DOMAIN',
          `token "${token.identity.label}" is not enrolled in domain ${body.domainId}, so it cannot vouch for another`,
          'name an enrolled HSM with --endorser, or bring a quorum of custodians with --share and --identity',
        );
      }
      endorser = spkiFingerprint(key.publicKey);
      endorsedBy = `token "${token.identity.label}"`;
      endorse = (e) => signWithDomainKey(token, body.domainId, key, enrolmentSignedBytes(e));
    } else {
      const state = await judgeShareFiles(
        ctx,
        domainSubject(body, digest),
        req.shares ?? [],
        req.identities ?? [],
      );
      if (state.missing > 0) {
        throw new CustosError(
          'E_QUORUM',
          `${state.accepted.length} of ${state.threshold} shares of domain ${body.domainId} accepted: ${state.missing} more needed`,
          "bring more custodians' shares with the identities that open them; nothing was written",
          rejectionLines(state),
        );
      }
      authority = await assembleDomainIdentity(body, state);
      const signer = authoritySigner(authority);
      endorser = 'authority';
      endorsedBy = `a quorum (${state.accepted.map((a) => a.custodian).join(', ')})`;
      endorse = (e) => signer.sign(enrolmentSignedBytes(e));
    }
    const session = await enrolToken(ctx, req.hsm, body.domainId, digest, endorser, endorse);
    let written = false;
    try {
      const known = domain.enrolments.find((e) => e.publicKey === session.enrolment.publicKey);
      if (known) return { domain, enrolment: known, already: true, endorsedBy };
      const file = serialiseDomain(domain.core, domain.coreSignature, [
        ...domain.enrolments,
        session.enrolment,
      ]);
      replaceFileAtomically(resolve(ctx.cwd, req.domain), file, 0o644);
      written = true;
      return {
        domain,
        enrolment: session.enrolment,
        already: false,
        endorsedBy,
        fileDigest: sha256Hex(file),
      };
    } finally {
      session.finish(written || session.reused);
    }
  } finally {
    wipe(authority);
    endorserToken?.close();
  }
}
