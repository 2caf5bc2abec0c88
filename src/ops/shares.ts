/** Reading bundles and custodian shares, and turning an authenticated quorum back into the KEK. */
import { createPublicKey } from 'node:crypto';
import { resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { BUNDLE_MAC_PURPOSE, parseBundle, type ParsedBundle } from '../core/bundle.js';
import { parseShare } from '../core/share.js';
import {
  evaluateShares,
  type Candidate,
  type QuorumState,
  type QuorumSubject,
} from '../core/quorum.js';
import { aesKcv, equalBytes, hmacWithKek } from '../crypto/aes.js';
import {
  decryptWithAny,
  decryptWithPassphrase,
  isPassphraseFile,
  parseIdentityFile,
  type NamedIdentity,
} from '../crypto/age.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { verifyEcdsaP256 } from '../crypto/domain-keys.js';
import { chainOf, domainSubject } from './domain/load.js';
import { openSealedKek } from './domain/secret.js';
import { combineShares, shareIndex } from '../crypto/shamir.js';
import { sha256Hex, spkiOf } from '../crypto/check-values.js';
import { describeKey, type KeyRecord } from '../core/keys.js';
import { readInputFile } from '../io/files.js';
import { isTokenStub } from '../core/token-stub.js';
import { tokenIdentityFromStub } from './token-identity.js';
import type { Context } from './context.js';
import { wipe } from '../crypto/wipe.js';

export interface LoadedBundle extends ParsedBundle {
  path: string;
  /** SHA-256 of the authenticated bytes, as the shares of a single-use bundle record it. */
  digest: string;
  /** SHA-256 of the whole file, for the audit log. */
  fileDigest: string;
  /** What the custodians' shares are judged against: the bundle itself, or its escrow domain. */
  quorum: QuorumSubject;
}

export function loadBundle(ctx: Context, path: string): LoadedBundle {
  const file = readInputFile(resolve(ctx.cwd, path), 'bundle', {
    tooLargeCode: 'E_BUNDLE_FORMAT',
    tooLargeHint: BUNDLE_HINT,
  });
  const parsed = parseBundle(path, file);
  checkKeyRecords(path, parsed.body.keys);
  const digest = sha256Hex(parsed.authenticated);
  const quorum = parsed.domain ? domainSubject(parsed.domain.core) : { body: parsed.body, digest };
  return { ...parsed, path, digest, fileDigest: sha256Hex(file), quorum };
}

const BUNDLE_HINT =
  'the bundle is damaged or not a custos bundle; use an intact copy (docs/bundle-format.md)';

/**
 * What the field types alone do not say about a bundle's keys (SPEC.md B2a, B2b): each key is
 * listed once; an EC key's curve parameters are one DER value; and the public key recorded for an
 * RSA or EC key that can sign, which a restore proves the key with, is a key node:crypto can read.
 * Checked before any share is opened.
 */
function checkKeyRecords(path: string, keys: readonly KeyRecord[]): void {
  const bad = (i: number, problem: string) =>
    new CustosError(
      'E_BUNDLE_FORMAT',
      `${path}: keys[${i}] (${describeKey(keys[i] as KeyRecord)}) ${problem}`,
      BUNDLE_HINT,
    );
  const seen = new Map<string, number>();
  keys.forEach((k, i) => {
    const key = JSON.stringify([k.class, k.label, k.id]);
    const first = seen.get(key);
    if (first !== undefined)
      throw bad(i, `is listed twice (also keys[${first}]): a bundle lists each key once`);
    seen.set(key, i);
    for (const params of [k.ecParams, k.publicKey?.ecParams]) {
      if (params !== undefined && !isOneDerValue(Buffer.from(params, 'hex')))
        throw bad(i, 'has curve parameters (ecParams) that are not one DER value');
    }
    if ((k.keyType !== 'RSA' && k.keyType !== 'EC') || !k.usage.sign) return;
    const spki = spkiOf({
      modulus: k.modulus,
      publicExponent: k.publicExponent,
      ecParams: k.publicKey?.ecParams ?? k.ecParams,
      ecPoint: k.publicKey?.ecPoint,
    });
    if (spki && !readablePublicKey(spki, k.keyType === 'RSA' ? 'rsa' : 'ec')) {
      throw bad(
        i,
        `records a public key that is not a valid ${k.keyType} key (its ${k.keyType === 'RSA' ? 'modulus or exponent' : 'curve parameters or point'} are malformed)`,
      );
    }
  });
}

/**
 * True when the bytes are exactly one DER tag-length-value (definite length, at most 4 length
 * bytes).
 */
function isOneDerValue(der: Buffer): boolean {
  if (der.length < 2) return false;
  const first = der[1] as number;
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || der.length < 2 + n) return false;
    length = 0;
    for (let j = 0; j < n; j++) length = length * 256 + (der[2 + j] as number);
    header += n;
  }
  return header + length === der.length;
}

function readablePublicKey(spki: Buffer, type: 'rsa' | 'ec'): boolean {
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' }).asymmetricKeyType === type;
  } catch {
    return false;
  }
}

export const PASSPHRASE_ENV = 'CUSTOS_PASSPHRASE';

/**
 * The passphrase of an identity file encrypted with `age -p`: from CUSTOS_PASSPHRASE, else asked
 * without echo.
 */
export async function identityPassphrase(
  ctx: Context,
  source: string,
  what = 'identity file',
  onCancel?: () => CustosError,
): Promise<string> {
  const fromEnv = ctx.env[PASSPHRASE_ENV];
  if (fromEnv) return fromEnv;
  const { askSecret } = await import('../io/terminal.js');
  return askSecret(
    `passphrase of ${what} ${source}:`,
    `set ${PASSPHRASE_ENV} to its passphrase to run without a terminal`,
    onCancel,
  );
}

/**
 * Reads an age identity from its text; for an identity file encrypted with a passphrase, by
 * opening it; for a token identity file (custos custodian enroll), as the key on that token.
 */
export async function identityFromFile(
  ctx: Context,
  source: string,
  file: Buffer,
  onCancel?: () => CustosError,
): Promise<NamedIdentity[]> {
  if (isTokenStub(file)) return [tokenIdentityFromStub(ctx, source, file)];
  if (!isPassphraseFile(file)) return parseIdentityFile(source, file.toString('utf8'));
  const text = await decryptWithPassphrase(
    file,
    await identityPassphrase(ctx, source, 'identity file', onCancel),
  );
  if (text === null) {
    throw new CustosError(
      'E_IDENTITY',
      `the passphrase does not open identity file ${source}`,
      'check the passphrase and try again; an identity encrypted to another key cannot be used',
    );
  }
  return parseIdentityFile(source, text);
}

export async function loadIdentities(
  ctx: Context,
  paths: readonly string[],
): Promise<NamedIdentity[]> {
  const all: NamedIdentity[] = [];
  for (const p of paths) {
    if (/AGE-SECRET-KEY-/i.test(p)) {
      // Someone pasted the key itself; never echo it back in an error.
      throw new CustosError(
        'E_IDENTITY',
        'an identity argument is an age secret key, not the path of a file holding one',
        'save the key in a file readable only by you (chmod 600) and pass its path; clear your shell history of the pasted key',
      );
    }
    all.push(
      ...(await identityFromFile(ctx, p, readInputFile(resolve(ctx.cwd, p), 'identity file'))),
    );
  }
  return all;
}

/**
 * Opens each share file with whichever identity fits; a failure becomes a named rejection, not an
 * exception.
 */
export async function openShares(
  ctx: Context,
  paths: readonly string[],
  identities: readonly NamedIdentity[],
): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const [i, source] of paths.entries()) {
    const file = readInputFile(resolve(ctx.cwd, source), 'share file');
    const opened = await decryptWithAny(file, identities, i);
    if ('failure' in opened) {
      out.push(
        opened.failure === 'damaged'
          ? {
              source,
              opened: {
                failure: 'malformed',
                detail: 'the file is damaged (its age armor is truncated or edited)',
              },
            }
          : {
              source,
              opened: {
                failure: 'unopened',
                detail:
                  'none of the identities given opens it (wrong identity file, or not an age share file)',
              },
            },
      );
      continue;
    }
    try {
      out.push({
        source,
        opened: {
          share: parseShare(source, opened.plaintext),
          recipient: opened.identity.recipient,
        },
      });
    } catch (e) {
      out.push({
        source,
        opened: {
          failure: 'malformed',
          detail:
            e instanceof CustosError ? e.message.replace(`${source}: `, '') : 'not a custos share',
        },
      });
    }
  }
  return out;
}

export function judgeShares(subject: QuorumSubject, candidates: readonly Candidate[]): QuorumState {
  return evaluateShares(subject, candidates, verifyEd25519, shareIndex);
}

/** The share files given on a command line, opened with its identity files and judged. */
export async function judgeShareFiles(
  ctx: Context,
  subject: QuorumSubject,
  shares: readonly string[],
  identities: readonly string[],
): Promise<QuorumState> {
  return judgeShares(subject, await openShares(ctx, shares, await loadIdentities(ctx, identities)));
}

export function rejectionLines(state: QuorumState): string[] {
  return state.rejected.map((r) => `rejected ${r.source}: ${r.message}`);
}

/**
 * Stops, naming every rejected share, unless the accepted shares make a quorum for an unchanged
 * bundle. For a domain bundle the quorum proves the domain's core, and the core's authority
 * then proves who made the bundle: an unsigned bundle, or one signed by a key the domain does
 * not list, is refused here, before anything reaches a token.
 */
export function requireQuorum(bundle: LoadedBundle, state: QuorumState): void {
  if (state.bundleChanged || state.dealerDisowned)
    throw bundleTampered(bundle.path, bundle.quorum, state);
  if (state.missing > 0) {
    const n = state.accepted.length;
    throw new CustosError(
      'E_QUORUM',
      `${n} of ${state.threshold} shares accepted: ${state.missing} more needed`,
      `bring ${state.missing} more custodian share${state.missing === 1 ? '' : 's'} (with the identities that open them); nothing was written`,
      [
        ...state.accepted.map((a) => `accepted ${a.source} (custodian ${a.custodian})`),
        ...rejectionLines(state),
      ],
    );
  }
  if (bundle.domain) requireDomainSigner(bundle);
}

/**
 * Stops unless the judged shares make a quorum (requireQuorum); then warns of each share that was
 * rejected all the same, `prefix` naming what they were for, and gives those lines back.
 */
export function requireQuorumWarning(
  ctx: Context,
  bundle: LoadedBundle,
  state: QuorumState,
  prefix = '',
): string[] {
  requireQuorum(bundle, state);
  const rejected = rejectionLines(state);
  for (const line of rejected) ctx.out.warn(`${prefix}${line}`);
  return rejected;
}

/**
 * The refusal that names the bundle (or domain file) as the damaged file, when the shares' story
 * points at it.
 */
export function bundleTampered(
  path: string,
  subject: QuorumSubject,
  state: QuorumState,
  details = rejectionLines(state),
): CustosError {
  const domain = subject.kind === 'domain';
  const message =
    state.originalId !== undefined
      ? `${path} has been changed since ${domain ? 'the domain was made' : 'the backup'}: it says ${domain ? 'domain' : 'bundle'} ${subject.body.bundleId}, but shares made by this very ${domain ? 'domain' : 'backup'} name ${domain ? 'domain' : 'bundle'} ${state.originalId}`
      : state.bundleChanged
        ? `${path} has been changed since ${domain ? 'the domain was made' : 'the backup'}: its digest does not match the one signed into the shares`
        : `${path} matches the signature of none of its shares: the ${domain ? 'file' : 'bundle'} has been changed`;
  return new CustosError(
    'E_BUNDLE_TAMPERED',
    message,
    `the shares are not at fault: use an intact copy of ${path}; nothing was written`,
    details,
  );
}

function requireDomainSigner(bundle: LoadedBundle): void {
  const { domain, signature } = bundle;
  if (!domain || !signature) throw new CustosError('E_INTERNAL', 'not a domain bundle');
  const refuse = (why: string) =>
    new CustosError(
      'E_BUNDLE_SIGNER',
      `${bundle.path} was not made by a source HSM of domain ${domain.core.domainId}: ${why}`,
      'restore only bundles written by custos backup --domain on an enrolled HSM; this one may be forged; nothing was written',
    );
  if (signature.by === 'authority') {
    if (
      !verifyEd25519(
        Buffer.from(domain.core.authority.publicKey, 'base64'),
        bundle.authenticated,
        signature.value,
      )
    )
      throw refuse("its re-sealing signature does not verify under the domain's authority key");
    return;
  }
  const signer = domain.chain[0];
  if (!signer) throw refuse('it names no signing key');
  const chain = chainOf(domain.core, bundle.quorum.digest, domain.chain, signer.publicKey);
  if (typeof chain === 'string') throw refuse(chain);
  if (!verifyEcdsaP256(signer.publicKey, bundle.authenticated, signature.value))
    throw refuse(`its signature does not verify under the key of token "${signer.source.label}"`);
}

/**
 * Turns an authenticated quorum into the KEK, checked by its check value and the bundle MAC. For
 * a domain bundle the quorum reassembles the domain's identity, which opens the sealed KEK.
 */
export async function assembleKek(bundle: LoadedBundle, state: QuorumState): Promise<Buffer> {
  if (!bundle.domain) return assembleOwnSecret(bundle, state);
  requireQuorum(bundle, state);
  return checkedKek(bundle, await openSealedKek(bundle.domain, state));
}

/** The secret of a single-use bundle or PIN escrow, whose shares split it directly. */
export function assembleOwnSecret(bundle: LoadedBundle, state: QuorumState): Buffer {
  if (bundle.domain)
    throw new CustosError('E_INTERNAL', "a domain bundle's key is sealed, not split");
  requireQuorum(bundle, state);
  return checkedKek(
    bundle,
    combineShares(
      state.accepted.map((a) => a.share),
      32,
    ),
  );
}

export function checkedKek(bundle: LoadedBundle, kek: Buffer | null): Buffer {
  if (!kek || aesKcv(kek) !== bundle.body.kek.kcv) {
    wipe(kek);
    throw new CustosError(
      'E_KEK_MISMATCH',
      'the shares reassemble a key whose check value does not match the bundle',
      'the shares and the bundle do not belong together; nothing was written',
    );
  }
  if (!equalBytes(hmacWithKek(kek, BUNDLE_MAC_PURPOSE, bundle.authenticated), bundle.mac)) {
    wipe(kek);
    throw new CustosError(
      'E_BUNDLE_TAMPERED',
      `${bundle.path} fails its MAC: the bundle was changed after the backup`,
      'restore from an intact copy of the bundle; nothing was written',
    );
  }
  return kek;
}
