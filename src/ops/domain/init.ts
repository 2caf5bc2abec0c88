/**
 * `custos domain init`: a long-lived escrow domain. Its secret (an age identity) is split once
 * among the policy's custodians, the split proved before anything is written; the domain file
 * holds only public parts. Source HSMs named now are enrolled by the domain's authority key,
 * which exists only while the secret does.
 */
import { randomBytes } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import {
  domainCoreBytes,
  enrolmentSignedBytes,
  serialiseDomain,
  type DomainBody,
  type Enrolment,
  type SealType,
} from '../../core/domain.js';
import { parsePolicy, type Policy } from '../../core/policy.js';
import type { PolicyRecord } from '../../core/bundle.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { authoritySigner, freshDomainSecret, type DomainSecret } from '../../crypto/domain-keys.js';
import { freshSigner, type Signer } from '../../crypto/ed25519.js';
import { createFilesAtomically, readInputFile, type NewFile } from '../../io/files.js';
import { checkEscrowInputs, dealShares, encryptShares } from '../escrow.js';
import { VERSION } from '../version.js';
import type { Context } from '../context.js';
import { audited } from '../audit.js';
import { domainSubject } from './load.js';
import { enrolToken, type EnrolSession } from './enrol-token.js';
import { wipe } from '../../crypto/wipe.js';

export interface DomainInitRequest {
  policyPath: string;
  out: string;
  sharesDir?: string;
  /** Source HSMs to enrol now. */
  hsms: string[];
  /** Post-quantum sealing even if the policy does not ask for it. */
  postQuantum?: boolean;
}

export interface WrittenShare {
  custodian: string;
  name: string;
  index: number;
  path: string;
  digest: string;
}

export interface DomainWritten {
  body: DomainBody;
  domainPath: string;
  digest: string;
  fileDigest: string;
  shareFiles: WrittenShare[];
  provedWith: string[];
  enrolments: Enrolment[];
}

export interface NewGeneration {
  policy: Policy;
  policyRecord: PolicyRecord;
  domainId: string;
  generation: number;
  supersedes?: DomainBody['supersedes'];
  seal: SealType;
}

/** A fresh secret and the core of a generation built on it; the caller wipes secret.identity. */
export async function newGeneration(g: NewGeneration): Promise<{
  secret: DomainSecret;
  authority: Signer;
  dealer: Signer;
  body: DomainBody;
  core: Buffer;
  digest: string;
}> {
  const secret = await freshDomainSecret(g.seal);
  const authority = authoritySigner(secret.identity);
  const dealer = freshSigner();
  const body: DomainBody = {
    domainId: g.domainId,
    generation: g.generation,
    created: new Date().toISOString(),
    tool: `custos ${VERSION}`,
    policy: g.policyRecord,
    seal: { type: g.seal, recipient: secret.recipient, identityLength: secret.identity.length },
    authority: { algorithm: 'Ed25519', publicKey: authority.publicKey.toString('base64') },
    escrow: {
      scheme: 'shamir-gf256',
      threshold: g.policy.threshold,
      total: g.policy.custodians.length,
      custodians: g.policy.custodians.map((c, i) => ({ ...c, index: i + 1 })),
    },
    dealer: { algorithm: 'Ed25519', publicKey: dealer.publicKey.toString('base64') },
    ...(g.supersedes ? { supersedes: g.supersedes } : {}),
  };
  const core = domainCoreBytes(body);
  return { secret, authority, dealer, body, core, digest: sha256Hex(core) };
}

/**
 * Writes a generation: its secret split and each share encrypted to its custodian, then the
 * share files, any files `alongside`, and the domain file last, all at once. A crash part-way
 * leaves shares without a domain, refused by the next run as existing.
 */
export async function writeGeneration(
  gen: Awaited<ReturnType<typeof newGeneration>>,
  paths: { domainPath: string; sharePaths: readonly string[] },
  enrolments: Enrolment[],
  alongside: readonly NewFile[] = [],
): Promise<DomainWritten> {
  const { domainPath, sharePaths } = paths;
  const { plaintexts, provedWith } = dealShares(
    domainSubject(gen.body, gen.digest),
    gen.dealer,
    gen.secret.identity,
  );
  const encrypted = await encryptShares(gen.body.escrow.custodians, plaintexts);
  const domainFile = serialiseDomain(gen.core, gen.authority.sign(gen.core), enrolments);
  createFilesAtomically([
    ...encrypted.map((data, i) => ({ path: sharePaths[i] as string, data, mode: 0o600 })),
    ...alongside,
    { path: domainPath, data: domainFile, mode: 0o644 },
  ]);
  return {
    body: gen.body,
    domainPath,
    digest: gen.digest,
    fileDigest: sha256Hex(domainFile),
    shareFiles: gen.body.escrow.custodians.map((c, i) => ({
      custodian: c.id,
      name: c.name,
      index: c.index,
      path: sharePaths[i] as string,
      digest: sha256Hex(Buffer.from(encrypted[i] as string, 'utf8')),
    })),
    provedWith,
    enrolments,
  };
}

export function readPolicyFile(
  ctx: Context,
  policyPath: string,
): { policy: Policy; record: PolicyRecord } {
  const file = readInputFile(resolve(ctx.cwd, policyPath), 'policy file');
  return {
    policy: parsePolicy(policyPath, file.toString('utf8')),
    record: { name: basename(policyPath), sha256: sha256Hex(file) },
  };
}

/** The new domain, recorded in the audit log (`domain-init`) whether it succeeds or fails. */
export function domainInit(ctx: Context, req: DomainInitRequest): Promise<DomainWritten> {
  return audited(ctx, 'domain-init', async (note) => {
    note.detail = { policy: req.policyPath };
    const done = await writeDomain(ctx, req);
    note.detail.seal = done.body.seal.type;
    note.artifacts.domain = done.fileDigest;
    for (const s of done.shareFiles) note.artifacts[`share:${s.custodian}`] = s.digest;
    Object.assign(note.detail, {
      domainId: done.body.domainId,
      generation: done.body.generation,
      threshold: done.body.escrow.threshold,
      total: done.body.escrow.total,
      enrolled: done.enrolments.map((e) => e.source.label),
    });
    return done;
  });
}

async function writeDomain(ctx: Context, req: DomainInitRequest): Promise<DomainWritten> {
  const { policy, record } = readPolicyFile(ctx, req.policyPath);
  const domainPath = resolve(ctx.cwd, req.out);
  const sharesDir = resolve(ctx.cwd, req.sharesDir ?? `${req.out}.shares`);
  const sharePaths = policy.custodians.map((c) => join(sharesDir, `${c.id}.share`));
  await checkEscrowInputs(req.policyPath, policy, [domainPath, ...sharePaths]);
  if (new Set(req.hsms).size !== req.hsms.length)
    throw new CustosError('E_USAGE', 'the same --hsm is named twice', 'name each source HSM once');

  const seal: SealType =
    req.postQuantum || policy.seal === 'post-quantum' ? 'age-hybrid-mlkem768-x25519' : 'age-x25519';
  const gen = await newGeneration({
    policy,
    policyRecord: record,
    domainId: randomDomainId(),
    generation: 1,
    seal,
  });
  const sessions: EnrolSession[] = [];
  let done = false;
  try {
    const enrolments: Enrolment[] = [];
    for (const hsm of req.hsms) {
      const session = await enrolToken(ctx, hsm, gen.body.domainId, gen.digest, 'authority', (e) =>
        gen.authority.sign(enrolmentSignedBytes(e)),
      );
      sessions.push(session);
      enrolments.push(session.enrolment);
    }
    const written = await writeGeneration(gen, { domainPath, sharePaths }, enrolments);
    done = true;
    return written;
  } finally {
    wipe(gen.secret.identity);
    for (const s of sessions) s.finish(done);
  }
}

function randomDomainId(): string {
  return randomBytes(16).toString('hex');
}
