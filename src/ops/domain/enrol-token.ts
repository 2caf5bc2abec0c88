/**
 * Enrolling one source HSM in a domain: its signing key is found or made on the token, and the
 * enrolment naming it is signed by whoever vouches for it (the authority, or an enrolled HSM).
 * A key made by a run that then fails is removed again.
 */
import type { Enrolment } from '../../core/domain.js';
import {
  createDomainSigningKey,
  destroyDomainSigningKey,
  domainSigningKeys,
} from '../../hsm/domain-key.js';
import { openHsm } from '../hsm.js';
import type { Context } from '../context.js';

export interface EnrolSession {
  enrolment: Enrolment;
  /** True when the token already held a signing key for this domain. */
  reused: boolean;
  /** Closes the token; without `keep`, first removes a key this run made. */
  finish(keep: boolean): void;
}

export type Endorse = (e: Omit<Enrolment, 'signature'>) => Buffer;

export async function enrolToken(
  ctx: Context,
  hsm: string,
  domainId: string,
  digest: string,
  endorser: string,
  endorse: Endorse,
): Promise<EnrolSession> {
  const token = await openHsm(ctx, hsm, true);
  try {
    const existing = domainSigningKeys(token, domainId)[0];
    const key = existing ?? createDomainSigningKey(token, domainId);
    const unsigned: Omit<Enrolment, 'signature'> = {
      domain: digest,
      source: token.identity,
      keyId: key.keyId,
      publicKey: key.publicKey,
      enrolled: new Date().toISOString(),
      endorser,
    };
    const enrolment: Enrolment = { ...unsigned, signature: endorse(unsigned).toString('base64') };
    return {
      enrolment,
      reused: !!existing,
      finish(keep) {
        try {
          if (!keep && !existing) destroyDomainSigningKey(token, domainId, key);
        } finally {
          token.close();
        }
      },
    };
  } catch (e) {
    token.close();
    throw e;
  }
}
