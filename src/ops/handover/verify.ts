/**
 * The recipient's check of a handover package: the receipt's signature under the ceremony key,
 * the ceremony bound to the request, every approval, the scope; and, with the recipient's private
 * key, each delivered key unwrapped and its check value compared.
 */
import { resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { parseCeremony } from '../../core/ceremony.js';
import { parsePackage, type PackagedKey } from '../../core/handover-package.js';
import {
  approvalSignedBytes,
  evaluateRequest,
  parseRequest,
  type Approval,
} from '../../core/handover.js';
import { isSelected, parsePolicy } from '../../core/policy.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { verifyEd25519 } from '../../crypto/ed25519.js';
import {
  readPrivateKey,
  requestRecipient,
  softwareCheckValue,
  unwrapRsaAes,
} from '../../crypto/rsa-aes-wrap.js';
import { createPublicKey } from 'node:crypto';
import { readInputFile } from '../../io/files.js';
import { audited, fileDigest } from '../audit.js';
import type { Context } from '../context.js';
import { wipe } from '../../crypto/wipe.js';

export interface PackageCheck {
  matter: string;
  authority: string;
  basis: string;
  documentSha256: string;
  ceremony: string;
  approvals: { approver: string; role: string; time: string }[];
  custodianTranscript: number;
  /**
   * With --key: each key's check value recomputed from the unwrapped bytes; matches is null when
   * its method cannot be recomputed.
   */
  keys: (PackagedKey & { unwrapped?: { checkValue: string; matches: boolean | null } })[];
}

/** The recipient's check, recorded in the audit log whatever its verdict. */
export function verifyHandover(
  ctx: Context,
  path: string,
  privateKeyPath?: string,
): Promise<PackageCheck> {
  return audited(ctx, 'handover-verify', async (note) => {
    note.artifacts = { package: fileDigest(resolve(ctx.cwd, path)) };
    const checked = verifyPackage(ctx, path, privateKeyPath);
    note.ceremony = checked.ceremony;
    note.detail = {
      matter: checked.matter,
      keys: checked.keys.map((k) => k.label),
      unwrapped: !!privateKeyPath,
    };
    return checked;
  });
}

export function verifyPackage(ctx: Context, path: string, privateKeyPath?: string): PackageCheck {
  const pkg = parsePackage(path, readInputFile(resolve(ctx.cwd, path), 'handover package'));
  const problems: string[] = [];
  const faulty: string[] = [];
  /**
   * A part the package carries (its ceremony, its request, the request's policy) that does not read
   * makes the package invalid: named, with the part's own message as the detail, and the checks
   * that do not need that part still made.
   */
  const embedded = <T>(part: string, read: () => T): T | undefined => {
    try {
      return read();
    } catch (e) {
      if (!(e instanceof CustosError)) throw e;
      faulty.push(part);
      problems.push(e.details.length ? `${e.message} (${e.details.join('; ')})` : e.message);
      return undefined;
    }
  };
  const ceremony = embedded('ceremony', () =>
    parseCeremony(`${path} (its ceremony)`, Buffer.from(pkg.body.ceremony, 'utf8'), verifyEd25519),
  );
  if (
    ceremony &&
    !verifyEd25519(Buffer.from(ceremony.body.signingKey, 'base64'), pkg.signed, pkg.signature)
  )
    problems.push(
      "the receipt's signature does not verify with the ceremony key: the package was changed",
    );
  if (ceremony && Date.parse(pkg.body.created) >= Date.parse(ceremony.body.expires))
    problems.push('the package was made after the ceremony had expired');
  const request = embedded('request', () =>
    parseRequest(`${path} (its request)`, Buffer.from(pkg.body.request, 'utf8')),
  );
  const policy = request
    ? embedded('policy', () => parsePolicy(`${path} (its policy)`, request.body.policy.text))
    : undefined;
  const digest = request ? sha256Hex(request.signed) : undefined;
  let approvals: Approval[] = [];
  if (request && digest) {
    try {
      requestRecipient(`${path} (its request)`, request.body.recipient);
    } catch {
      problems.push(
        'the recipient key in the request does not match the digest and size recorded with it',
      );
    }
    if (sha256Hex(Buffer.from(request.body.policy.text, 'utf8')) !== request.body.policy.sha256)
      problems.push('the policy inside the request does not match its recorded digest');
    if (digest !== pkg.body.requestDigest)
      problems.push('the request in the package is not the one the receipt names');
    if (ceremony && (ceremony.body.purpose !== 'handover' || ceremony.body.request !== digest))
      problems.push('the ceremony was not opened for this request');
    if (
      ceremony &&
      (ceremony.body.subject.bundleId !== request.body.bundle.bundleId ||
        ceremony.body.subject.bundleDigest !== request.body.bundle.bundleDigest)
    ) {
      problems.push(
        'the ceremony concerns another backup (or another copy of it) than the request',
      );
    }
    if (pkg.body.recipientSha256 !== request.body.recipient.sha256)
      problems.push('the package was made for another recipient than the request names');
    if (policy) {
      // The policy's rules, as they stood when the package was made; the quorum is the ceremony's
      // to prove.
      const rules = evaluateRequest(
        request,
        policy,
        digest,
        verifyEd25519,
        new Date(pkg.body.created),
        (l) => !!policy.handover && isSelected(l, policy.handover.keys),
      ).filter((r) => r.rule !== 'custodian quorum');
      for (const r of rules.filter((x) => !x.met))
        problems.push(`policy rule not met when the package was made: ${r.rule}: ${r.detail}`);
      approvals = request.approvals.filter((a) => {
        const approver = policy.approvers.find((x) => x.id === a.approver && x.role === a.role);
        return (
          !!approver &&
          verifyEd25519(
            Buffer.from(approver.key, 'base64'),
            approvalSignedBytes(digest, a),
            Buffer.from(a.signature, 'base64'),
          )
        );
      });
    }
    const scope = request.body.scope
      .map((k) => `${k.class}/${k.label}/${k.id}=${k.checkValue.method}:${k.checkValue.value}`)
      .sort();
    const delivered = pkg.body.keys
      .map((k) => `${k.class}/${k.label}/${k.id}=${k.checkValue.method}:${k.checkValue.value}`)
      .sort();
    if (scope.join('\n') !== delivered.join('\n'))
      problems.push(
        `the package holds other keys than the request names (named: ${request.body.scope.map((k) => k.label).join(', ')}; delivered: ${pkg.body.keys.map((k) => k.label).join(', ')})`,
      );
  }
  if (problems.length > 0 || !ceremony || !request) {
    const parts = faulty.map((p) => (p === 'policy' ? 'the policy in its request' : `its ${p}`));
    throw new CustosError(
      'E_PACKAGE_INVALID',
      `${path} fails verification${parts.length ? `: ${parts.join(' and ')} ${parts.length === 1 ? 'is' : 'are'} not valid` : ''}`,
      'do not rely on this package; ask the institution for an intact one',
      problems,
    );
  }

  let keys: PackageCheck['keys'] = pkg.body.keys;
  if (privateKeyPath) {
    const privateKey = readPrivateKey(
      readInputFile(resolve(ctx.cwd, privateKeyPath), 'recipient private key').toString('utf8'),
    );
    if (!privateKey)
      throw new CustosError(
        'E_IDENTITY',
        `${privateKeyPath} is not an RSA private key in PEM form`,
        'pass the private key that goes with the recipient public key in the request',
      );
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    if (sha256Hex(spki) !== pkg.body.recipientSha256)
      throw new CustosError(
        'E_IDENTITY',
        `${privateKeyPath} is not the private key of the package's recipient`,
        'pass the private key that goes with the recipient public key in the request',
      );
    const hash = pkg.body.oaep.hash === 'SHA-256' ? 'sha256' : 'sha1';
    keys = pkg.body.keys.map((k) => {
      let bytes: Buffer | undefined;
      try {
        bytes = unwrapRsaAes(privateKey, Buffer.from(k.wrapped, 'base64'), hash);
        const cv = softwareCheckValue(k.checkValue.method, k.class, bytes);
        // A token-kept check value (or none) cannot be recomputed outside an HSM: it unwrapped,
        // nothing more is known.
        if (cv.method === 'none') return { ...k, unwrapped: { checkValue: '', matches: null } };
        return {
          ...k,
          unwrapped: {
            checkValue: cv.value,
            matches: cv.method === k.checkValue.method && cv.value === k.checkValue.value,
          },
        };
      } catch {
        return { ...k, unwrapped: { checkValue: '', matches: false } };
      } finally {
        wipe(bytes);
      }
    });
    const bad = keys.filter((k) => k.unwrapped?.matches === false);
    if (bad.length > 0) {
      throw new CustosError(
        'E_PACKAGE_INVALID',
        `${bad.length} of ${keys.length} delivered keys do not unwrap to their recorded check value`,
        'do not rely on these keys; ask the institution',
        bad.map(
          (k) =>
            `${k.label}: ${k.unwrapped?.checkValue ? `check value ${k.unwrapped.checkValue}, recorded ${k.checkValue.value}` : 'does not unwrap with this key'}`,
        ),
      );
    }
  }
  return {
    matter: request.body.matter,
    authority: request.body.authority,
    basis: request.body.basis,
    documentSha256: request.body.document.sha256,
    ceremony: ceremony.body.nonce,
    approvals: approvals.map((a) => ({ approver: a.approver, role: a.role, time: a.time })),
    custodianTranscript: pkg.body.transcript.length,
    keys,
  };
}
