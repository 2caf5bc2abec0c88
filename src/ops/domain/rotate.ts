/**
 * `custos domain rotate`: a quorum of the current custodians replaces the domain's secret with a
 * new one, split under a new policy. Named bundles are re-sealed to the new generation (their
 * wrapped keys untouched, never unwrapped), enrolled HSMs carry over, and the old domain file is
 * marked as replaced, so new backups cannot be made to it.
 */
import { basename, dirname, join, relative, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import {
  BUNDLE_MAC_PURPOSE,
  domainBundleAuthenticatedBytes,
  serialiseBundle,
  type DomainSeal,
} from '../../core/bundle.js';
import {
  enrolmentSignedBytes,
  serialiseDomain,
  supersessionSignedBytes,
  type DomainBody,
  type Enrolment,
  type Supersession,
} from '../../core/domain.js';
import type { QuorumState } from '../../core/quorum.js';
import { hmacWithKek } from '../../crypto/aes.js';
import { decryptBytesWithIdentity, encryptBytesToRecipient } from '../../crypto/age.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { authoritySigner } from '../../crypto/domain-keys.js';
import type { Signer } from '../../crypto/ed25519.js';
import { replaceFileAtomically, type NewFile } from '../../io/files.js';
import {
  checkedKek,
  judgeShareFiles,
  loadBundle,
  rejectionLines,
  requireQuorum,
  type LoadedBundle,
} from '../shares.js';
import { checkEscrowInputs } from '../escrow.js';
import {
  claimHost,
  destroyHostSecrets,
  loadCeremony,
  openHost,
  type Host,
  type LoadedCeremony,
} from '../ceremony/host.js';
import { judgeSubmissions } from '../ceremony/judge.js';
import { expired } from '../../core/ceremony.js';
import type { Policy } from '../../core/policy.js';
import type { PolicyRecord } from '../../core/bundle.js';
import type { Context } from '../context.js';
import { audited } from '../audit.js';
import { domainSubject, loadDomain, requireCurrent, type LoadedDomain } from './load.js';
import { assembleDomainIdentity } from './secret.js';
import { newGeneration, readPolicyFile, writeGeneration, type DomainWritten } from './init.js';
import { wipe } from '../../crypto/wipe.js';

export interface RotateRequest {
  domain: string;
  policyPath: string;
  out: string;
  sharesDir?: string;
  rebundle: string[];
  rebundleDir?: string;
  shares: string[];
  identities: string[];
  /** Or a ceremony with purpose rotate whose accepted submissions are the quorum. */
  ceremony?: string;
  /**
   * Enrolled source HSMs (by token label or serial) the new generation no longer accepts bundles
   * from.
   */
  retire?: string[];
  postQuantum?: boolean;
}

export interface RotateResult extends DomainWritten {
  old: LoadedDomain;
  /** The ceremony that gave the quorum, whose key signs the rotation's audit entry. */
  ceremony?: { nonce: string; digest: string; signer: Signer };
  custodians: string[];
  resealed: { from: string; to: string; bundleId: string; digest: string }[];
  oldFileDigest: string;
}

/** The rotation, recorded in the audit log (`domain-rotate`) whether it succeeds or fails. */
export function domainRotate(ctx: Context, req: RotateRequest): Promise<RotateResult> {
  return audited(ctx, 'domain-rotate', async (note) => {
    note.detail = { domain: req.domain, policy: req.policyPath };
    const done = await rotate(ctx, req);
    if (done.ceremony) {
      // The ceremony's key signs its own last entry, as a ceremony close does.
      note.ceremony = done.ceremony.nonce;
      note.signer = done.ceremony.signer;
      note.artifacts.ceremony = done.ceremony.digest;
    }
    note.artifacts.domain = done.fileDigest;
    note.artifacts['replaced-domain'] = done.oldFileDigest;
    for (const s of done.shareFiles) note.artifacts[`share:${s.custodian}`] = s.digest;
    for (const b of done.resealed) note.artifacts[`resealed:${b.bundleId}`] = b.digest;
    Object.assign(note.detail, {
      domainId: done.body.domainId,
      generation: done.body.generation,
      from: done.old.body.generation,
      custodians: done.custodians,
      threshold: done.body.escrow.threshold,
      total: done.body.escrow.total,
      resealed: done.resealed.map((b) => b.bundleId),
    });
    return done;
  });
}

async function rotate(ctx: Context, req: RotateRequest): Promise<RotateResult> {
  const old = loadDomain(ctx, req.domain);
  requireCurrent(ctx, old);
  const { policy, record } = readPolicyFile(ctx, req.policyPath);
  const domainPath = resolve(ctx.cwd, req.out);
  const sharesDir = resolve(ctx.cwd, req.sharesDir ?? `${req.out}.shares`);
  const sharePaths = policy.custodians.map((c) => join(sharesDir, `${c.id}.share`));
  if (req.rebundle.length > 0 && !req.rebundleDir)
    throw new CustosError(
      'E_USAGE',
      '--rebundle needs --rebundle-dir DIR for the re-sealed copies',
      'the originals are left as they are; name a new directory',
    );
  const bundles = req.rebundle.map((p) => loadBundle(ctx, p));
  const bundleOut = bundles.map((b) => resolve(ctx.cwd, req.rebundleDir ?? '.', basename(b.path)));
  if (new Set(bundleOut).size !== bundleOut.length)
    throw new CustosError(
      'E_USAGE',
      'two --rebundle files have the same name',
      're-seal them in separate runs, into separate directories',
    );
  for (const b of bundles) requireOfGeneration(b, old);
  const retire = req.retire ?? [];
  for (const name of retire) {
    if (!old.enrolments.some((e) => e.source.label === name || e.source.serial === name)) {
      throw new CustosError(
        'E_USAGE',
        `--retire-hsm ${name} names no token enrolled in ${old.path}`,
        `custos domain show ${old.path} lists the enrolled tokens by label and serial`,
      );
    }
  }
  await checkEscrowInputs(req.policyPath, policy, [domainPath, ...sharePaths, ...bundleOut]);

  if (!!req.ceremony === req.shares.length > 0) {
    throw new CustosError(
      'E_USAGE',
      'a rotation takes a quorum of the current custodians: --share and --identity, or --ceremony FILE (one of them)',
      'open a ceremony with custos ceremony open --domain FILE --purpose rotate, or bring the shares here',
    );
  }
  const ceremony = req.ceremony ? await rotationCeremony(ctx, req.ceremony, old) : undefined;
  let done = false;
  try {
    const result = await rotateWithQuorum(
      ctx,
      req,
      old,
      { policy, record, domainPath, sharePaths, bundles, bundleOut },
      ceremony?.state ??
        (await judgeShareFiles(
          ctx,
          domainSubject(old.body, old.digest),
          req.shares,
          req.identities,
        )),
    );
    done = true;
    return {
      ...result,
      ...(ceremony
        ? {
            ceremony: {
              nonce: ceremony.c.body.nonce,
              digest: ceremony.c.digest,
              signer: ceremony.host.signer,
            },
          }
        : {}),
    };
  } finally {
    if (ceremony) {
      if (done) destroyHostSecrets(ctx, ceremony.c, ceremony.host, 'rotation completed');
      else ceremony.claim.release();
    }
  }
}

interface Planned {
  policy: Policy;
  record: PolicyRecord;
  domainPath: string;
  sharePaths: string[];
  bundles: LoadedBundle[];
  bundleOut: string[];
}

/**
 * A rotate ceremony for this very generation, unexpired, claimed by this run; its accepted shares
 * are the quorum.
 */
async function rotationCeremony(
  ctx: Context,
  path: string,
  old: LoadedDomain,
): Promise<{ c: LoadedCeremony; host: Host; claim: { release: () => void }; state: QuorumState }> {
  const c = loadCeremony(ctx, path);
  const s = c.body.subject;
  if (c.body.purpose !== 'rotate' || s.kind !== 'domain')
    throw new CustosError(
      'E_USAGE',
      `ceremony ${c.body.nonce} was not opened for a rotation`,
      `open one: custos ceremony open --domain ${old.path} --purpose rotate`,
    );
  if (s.bundleId !== old.body.domainId || s.bundleDigest !== old.digest) {
    throw new CustosError(
      'E_CEREMONY',
      `ceremony ${c.body.nonce} concerns another domain or generation than ${old.path}`,
      'name the domain file the ceremony was opened for',
    );
  }
  if (expired(c.body, new Date()))
    throw new CustosError(
      'E_CEREMONY',
      `ceremony ${c.body.nonce} expired at ${c.body.expires}`,
      'open a new ceremony; the custodians submit again',
    );
  const host = await openHost(ctx, c);
  const claim = claimHost(ctx, c, host, 'domain rotate');
  try {
    const { state } = await judgeSubmissions(c, host, []);
    return { c, host, claim, state };
  } catch (e) {
    claim.release();
    throw e;
  }
}

async function rotateWithQuorum(
  ctx: Context,
  req: RotateRequest,
  old: LoadedDomain,
  plan: Planned,
  state: QuorumState,
): Promise<Omit<RotateResult, 'ceremony'>> {
  const { policy, record, domainPath, sharePaths, bundles, bundleOut } = plan;
  requireOldQuorum(old, state);
  // The old quorum proves each bundle's copy of the old core, and so who signed it.
  for (const b of bundles) requireQuorum(b, state);
  const oldIdentity = await assembleDomainIdentity(old.body, state);
  const gen = await newGeneration({
    policy,
    policyRecord: record,
    domainId: old.body.domainId,
    generation: old.body.generation + 1,
    supersedes: { generation: old.body.generation, digest: old.digest },
    // A later generation is never sealed more weakly than the one it replaces.
    seal:
      req.postQuantum || policy.seal === 'post-quantum'
        ? 'age-hybrid-mlkem768-x25519'
        : old.body.seal.type,
  });
  try {
    const oldAuthority = authoritySigner(oldIdentity);
    const retire = req.retire ?? [];
    const kept = old.enrolments.filter(
      (e) => !retire.includes(e.source.label) && !retire.includes(e.source.serial),
    );
    const enrolments = kept.map((e) => carryOver(e, gen.digest, gen.authority));
    const resealed: NewFile[] = [];
    for (const [i, b] of bundles.entries())
      resealed.push({
        path: bundleOut[i] as string,
        data: await reseal(b, oldIdentity, gen.body, old.body.generation, gen.authority),
        mode: 0o600,
      });
    const written = await writeGeneration(gen, { domainPath, sharePaths }, enrolments, resealed);

    // Only once the new generation is on disk is the old one marked as replaced.
    const unsigned: Omit<Supersession, 'signature'> = {
      domain: old.digest,
      by: {
        generation: gen.body.generation,
        digest: gen.digest,
        file: relative(dirname(resolve(ctx.cwd, req.domain)), domainPath) || basename(domainPath),
      },
      time: new Date().toISOString(),
    };
    const superseded: Supersession = {
      ...unsigned,
      signature: oldAuthority.sign(supersessionSignedBytes(unsigned)).toString('base64'),
    };
    const oldFile = serialiseDomain(old.core, old.coreSignature, old.enrolments, superseded);
    replaceFileAtomically(resolve(ctx.cwd, req.domain), oldFile, 0o644);
    return {
      ...written,
      old,
      custodians: state.accepted.map((a) => a.custodian),
      resealed: bundles.map((b, i) => ({
        from: b.path,
        to: bundleOut[i] as string,
        bundleId: b.body.bundleId,
        digest: sha256Hex((resealed[i] as NewFile).data as Buffer),
      })),
      oldFileDigest: sha256Hex(oldFile),
    };
  } finally {
    wipe(oldIdentity);
    wipe(gen.secret.identity);
  }
}

function requireOfGeneration(b: LoadedBundle, old: LoadedDomain): void {
  const seal = b.domain;
  if (!seal || seal.core.domainId !== old.body.domainId) {
    throw new CustosError(
      'E_USAGE',
      `${b.path} is not a bundle of domain ${old.body.domainId}`,
      'name only bundles made with backup --domain on this domain',
    );
  }
  if (b.quorum.digest !== old.digest) {
    throw new CustosError(
      'E_USAGE',
      `${b.path} is sealed to generation ${seal.core.generation} of the domain, not to generation ${old.body.generation} (${old.path})`,
      'a bundle is re-sealed by the rotation that replaces the generation it is sealed to',
    );
  }
}

function requireOldQuorum(old: LoadedDomain, state: QuorumState): void {
  if (state.missing > 0) {
    throw new CustosError(
      'E_QUORUM',
      `${state.accepted.length} of ${state.threshold} shares of domain ${old.body.domainId} (generation ${old.body.generation}) accepted: ${state.missing} more needed`,
      'a rotation needs a quorum of the current custodians; nothing was written',
      rejectionLines(state),
    );
  }
}

/** An enrolled HSM keeps its signing key; the new authority vouches for it directly. */
function carryOver(e: Enrolment, digest: string, authority: Signer): Enrolment {
  const unsigned: Omit<Enrolment, 'signature'> = {
    domain: digest,
    source: e.source,
    keyId: e.keyId,
    publicKey: e.publicKey,
    enrolled: e.enrolled,
    endorser: 'authority',
  };
  return {
    ...unsigned,
    signature: authority.sign(enrolmentSignedBytes(unsigned)).toString('base64'),
  };
}

/**
 * The same bundle, its KEK sealed to the new generation and signed by its authority; the wrapped
 * keys as they were.
 */
async function reseal(
  b: LoadedBundle,
  oldIdentity: Buffer,
  core: DomainBody,
  from: number,
  authority: Signer,
): Promise<Buffer> {
  const seal = b.domain as DomainSeal;
  const opened = await decryptBytesWithIdentity(seal.sealedKek.age, oldIdentity);
  const kek = checkedKek(b, opened && opened.length === 32 ? Buffer.from(opened) : null);
  try {
    const next: DomainSeal = {
      core,
      chain: [],
      sealedKek: {
        recipient: core.seal.recipient,
        age: await encryptBytesToRecipient(core.seal.recipient, kek),
      },
      resealed: { from, time: new Date().toISOString() },
    };
    // The custodial rules of a domain bundle are its generation's: a handover is judged by the new
    // policy.
    const authenticated = domainBundleAuthenticatedBytes({ ...b.body, policy: core.policy }, next);
    return serialiseBundle(authenticated, hmacWithKek(kek, BUNDLE_MAC_PURPOSE, authenticated), {
      by: 'authority',
      value: authority.sign(authenticated),
    });
  } finally {
    wipe(kek);
    wipe(opened);
  }
}
