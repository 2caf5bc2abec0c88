/**
 * A quorum ceremony on its host: opening it (the ceremony file for custodians, the host key kept
 * 0600 under .custos/ceremonies/NONCE/), its state and status, and the end of it (claimed by one
 * run, then its key and sealed shares destroyed). Submissions are judged in submissions.ts.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import {
  ceremonySignedBytes,
  expired,
  parseCeremony,
  parseDuration,
  PURPOSES,
  serialiseCeremony,
  type BundleRef,
  type CeremonyBody,
  type DomainRef,
  type HandoverSummary,
  type Purpose,
  type Subject,
} from '../core/ceremony.js';
import { loadDomain, requireCurrent } from './domain/load.js';
import { parsePolicy } from '../core/policy.js';
import { parseRequest } from '../core/handover.js';
import { requestRecipient } from '../crypto/rsa-aes-wrap.js';
import type { QuorumSubject } from '../core/quorum.js';
import { newIdentity, parseIdentityFile, type NamedIdentity } from '../crypto/age.js';
import {
  freshStoredSigner,
  signerFromSecret,
  verifyEd25519,
  type Signer,
} from '../crypto/ed25519.js';
import { sha256Hex } from '../crypto/check-values.js';
import { createFilesAtomically, readInputFile } from '../io/files.js';
import { loadBundle, type LoadedBundle } from './shares.js';
import { loadPinEscrow } from './pin-escrow.js';
import { recordDone } from './audit.js';
import type { Context } from './context.js';

export interface LoadedCeremony {
  path: string;
  /** The file as read and verified. */
  file: Buffer;
  body: CeremonyBody;
  /** SHA-256 of the whole ceremony file, as custodians bind their submissions to it. */
  digest: string;
}

export function loadCeremony(ctx: Context, path: string): LoadedCeremony {
  const file = readInputFile(resolve(ctx.cwd, path), 'ceremony file');
  const { body } = parseCeremony(path, file, verifyEd25519);
  return { path, file, body, digest: sha256Hex(file) };
}

/** What the shares of this ceremony are judged against. */
export function quorumSubject(c: LoadedCeremony): QuorumSubject {
  const b = c.body;
  const s = b.subject;
  const escrow = {
    scheme: 'shamir-gf256',
    threshold: b.threshold,
    total: b.total,
    custodians: b.custodians,
  } as const;
  const dealer = { algorithm: 'Ed25519', publicKey: b.dealer } as const;
  // Shares of a domain bundle, or of the domain itself, belong to the domain's generation.
  const domain =
    s.kind === 'bundle'
      ? s.domain
      : s.kind === 'domain'
        ? { domainId: s.bundleId, generation: s.generation, digest: s.bundleDigest }
        : undefined;
  if (domain)
    return {
      kind: 'domain',
      body: { bundleId: domain.domainId, dealer, escrow },
      digest: domain.digest,
      generation: domain.generation,
    };
  return { body: { bundleId: s.bundleId, dealer, escrow }, digest: s.bundleDigest };
}

// ---------------------------------------------------------------- opening

export interface OpenRequest {
  /** One bundle, or several bundles of one escrow domain. */
  bundle?: string | string[];
  pinEscrow?: string;
  /** An escrow domain itself: for a drill that proves its quorum, or a rotation. */
  domain?: string;
  purpose: string;
  out: string;
  expires: string;
  request?: string;
}

export interface Opened {
  ceremony: LoadedCeremony;
  hostDir: string;
}

function hostDirOf(ctx: Context, nonce: string): string {
  return resolve(ctx.cwd, '.custos', 'ceremonies', nonce);
}

export async function openCeremony(ctx: Context, req: OpenRequest): Promise<Opened> {
  const purpose = req.purpose as Purpose;
  if (!(PURPOSES as readonly string[]).includes(purpose)) {
    throw new CustosError(
      'E_USAGE',
      `--purpose ${req.purpose} is not a ceremony purpose`,
      'use restore, drill, handover or rotate',
    );
  }
  const bundlePaths =
    req.bundle === undefined ? [] : Array.isArray(req.bundle) ? req.bundle : [req.bundle];
  if ([bundlePaths.length > 0, !!req.pinEscrow, !!req.domain].filter(Boolean).length !== 1) {
    throw new CustosError(
      'E_USAGE',
      'a ceremony concerns bundles (--bundle FILE, repeatable for one domain), one PIN escrow (--pin-escrow DIR) or one domain (--domain FILE)',
    );
  }
  const lifetime = parseDuration(req.expires);
  const out = resolve(ctx.cwd, req.out);
  const fileOf = (path: string) => relative(dirname(out), resolve(ctx.cwd, path)) || basename(path);
  let bundle: LoadedBundle | undefined;
  let subject: Subject;
  let escrowSource: Pick<LoadedBundle['body'], 'escrow' | 'dealer'>;
  if (req.domain) {
    if (purpose !== 'drill' && purpose !== 'rotate') {
      throw new CustosError(
        'E_USAGE',
        `a ceremony for a domain itself is a drill or a rotation, not a ${purpose}`,
        'to restore or hand over, open the ceremony with --bundle (repeat it for several bundles of the domain)',
      );
    }
    const domain = loadDomain(ctx, req.domain);
    if (purpose === 'rotate') requireCurrent(ctx, domain);
    subject = {
      kind: 'domain',
      file: fileOf(req.domain),
      bundleId: domain.body.domainId,
      bundleDigest: domain.digest,
      generation: domain.body.generation,
    };
    escrowSource = domain.body;
  } else if (req.pinEscrow) {
    if (purpose === 'handover')
      throw new CustosError(
        'E_USAGE',
        'a handover releases keys from a bundle, not a token PIN',
        'open the handover ceremony with --bundle',
      );
    if (purpose === 'rotate')
      throw new CustosError(
        'E_USAGE',
        "a rotation replaces an escrow domain's secret",
        'open it with --domain FILE',
      );
    bundle = loadPinEscrow(ctx, req.pinEscrow);
    const e = bundle.body.escrowOf;
    if (!e) throw new CustosError('E_INTERNAL', 'a PIN escrow record without escrowOf');
    subject = {
      kind: 'pin-escrow',
      file: fileOf(join(req.pinEscrow, basename(bundle.path))),
      bundleId: bundle.body.bundleId,
      bundleDigest: bundle.digest,
      token: { label: e.tokenLabel, serial: e.tokenSerial },
    };
    escrowSource = bundle.body;
  } else {
    if (purpose === 'rotate')
      throw new CustosError(
        'E_USAGE',
        "a rotation replaces an escrow domain's secret",
        'open it with --domain FILE',
      );
    const bundles = bundlePaths.map((p) => loadBundle(ctx, p));
    for (const [i, b] of bundles.entries()) {
      if (b.body.escrowOf)
        throw new CustosError(
          'E_USAGE',
          `${bundlePaths[i]} is a PIN escrow record`,
          `open the ceremony with --pin-escrow ${dirname(bundlePaths[i] as string)}`,
        );
    }
    bundle = bundles[0] as LoadedBundle;
    subject = bundleSubject(bundlePaths, bundles, fileOf, purpose);
    escrowSource = bundle.body;
  }
  let request: string | undefined;
  let handover: HandoverSummary | undefined;
  if (purpose === 'handover' && bundle) {
    if (!req.request)
      throw new CustosError(
        'E_USAGE',
        'a handover ceremony must name the handover request it may release keys for',
        'add --request REQUEST (made by custos handover request)',
      );
    const parsed = parseRequest(
      req.request,
      readInputFile(resolve(ctx.cwd, req.request), 'handover request'),
    );
    requestRecipient(req.request, parsed.body.recipient);
    const policyDigest = sha256Hex(Buffer.from(parsed.body.policy.text, 'utf8'));
    if (policyDigest !== parsed.body.policy.sha256 || policyDigest !== bundle.body.policy?.sha256) {
      throw new CustosError(
        'E_HANDOVER_FORMAT',
        `${req.request} does not carry the policy ${req.bundle} was made under`,
        'the request was edited, or made for another backup; nothing was written',
      );
    }
    if (
      parsed.body.bundle.bundleId !== bundle.body.bundleId ||
      parsed.body.bundle.bundleDigest !== bundle.digest
    ) {
      throw new CustosError(
        'E_USAGE',
        `${req.request} names bundle ${parsed.body.bundle.bundleId} (sha256 ${parsed.body.bundle.bundleDigest.slice(0, 16)}…), not this copy of ${bundle.body.bundleId} (sha256 ${bundle.digest.slice(0, 16)}…)`,
        'open the ceremony for the bundle the request names, unchanged',
      );
    }
    // Bound to the request itself, not to its approvals, which may still be added.
    request = sha256Hex(parsed.signed);
    const rules = parsePolicy(`${req.request} (its policy)`, parsed.body.policy.text).handover;
    const b = parsed.body;
    handover = {
      matter: b.matter,
      authority: b.authority,
      basis: b.basis,
      keys: b.scope.map((k) => k.label),
      recipient: b.recipient.sha256,
      quorum: Math.max(bundle.body.escrow.threshold, rules?.quorum ?? 0),
    };
  } else if (req.request) {
    throw new CustosError(
      'E_USAGE',
      '--request belongs only to a handover ceremony',
      'drop --request, or use --purpose handover',
    );
  }

  const nonce = randomBytes(16).toString('hex');
  const hostDir = hostDirOf(ctx, nonce);
  const age = await newIdentity();
  const { signer, secret } = freshStoredSigner();
  const now = new Date();
  const body: CeremonyBody = {
    nonce,
    purpose,
    created: now.toISOString(),
    expires: new Date(now.getTime() + lifetime).toISOString(),
    openedBy: ctx.actor,
    subject: scopedTo(subject, handover),
    ...(request ? { request } : {}),
    threshold: escrowSource.escrow.threshold,
    total: escrowSource.escrow.total,
    custodians: escrowSource.escrow.custodians,
    dealer: escrowSource.dealer.publicKey,
    recipient: age.recipient,
    signingKey: signer.publicKey.toString('base64'),
    ...(handover ? { handover } : {}),
  };
  const signed = ceremonySignedBytes(body);
  const file = serialiseCeremony(signed, signer.sign(signed));
  try {
    createFilesAtomically([
      { path: out, data: file, mode: 0o644 },
      {
        path: join(hostDir, 'host.key'),
        data: hostKeyText(nonce, age.secret, secret),
        mode: 0o600,
      },
    ]);
  } finally {
    secret.fill(0);
  }
  const ceremony: LoadedCeremony = { path: req.out, file, body, digest: sha256Hex(file) };
  recordDone(
    ctx,
    {
      op: 'ceremony-open',
      outcome: 'ok',
      ceremony: nonce,
      bundle: body.subject.bundleId,
      artifacts: {
        ceremony: ceremony.digest,
        [body.subject.kind]: body.subject.bundleDigest,
        ...(request ? { request } : {}),
      },
      detail: {
        purpose,
        expires: body.expires,
        threshold: body.threshold,
        total: body.total,
        custodians: body.custodians.map((c) => c.id),
        signingKey: body.signingKey,
        recipient: body.recipient,
      },
    },
    signer,
  );
  return { ceremony, hostDir };
}

/**
 * A handover ceremony's file travels inside the package to the recipient: it names only the keys
 * the request releases, so the recipient learns nothing of the rest of the backup.
 */
function scopedTo(subject: Subject, handover: HandoverSummary | undefined): Subject {
  if (!handover || subject.kind !== 'bundle') return subject;
  return { ...subject, keys: subject.keys.filter((k) => handover.keys.includes(k.label)) };
}

function hostKeyText(nonce: string, ageSecret: string, signing: Buffer): string {
  return `# custos ceremony host key for ceremony ${nonce}: secret, keep on this host only\n${ageSecret}\ned25519-pkcs8: ${signing.toString('base64')}\n`;
}

/**
 * The subject of a ceremony over bundles. Several bundles may share one ceremony only when they
 * belong to the same generation of one escrow domain: then one quorum opens them all.
 */
function bundleSubject(
  paths: readonly string[],
  bundles: readonly LoadedBundle[],
  fileOf: (p: string) => string,
  purpose: Purpose,
): Subject {
  const refOf = (b: LoadedBundle, i: number): BundleRef => ({
    file: fileOf(paths[i] as string),
    bundleId: b.body.bundleId,
    bundleDigest: b.digest,
    source: b.body.source,
    keys: b.body.keys.map((k) => ({
      class: k.class,
      keyType: k.keyType,
      label: k.label,
      id: k.id,
    })),
  });
  const [first, ...rest] = bundles;
  if (!first) throw new CustosError('E_USAGE', 'name the bundle with --bundle FILE');
  const domain: DomainRef | undefined = first.domain
    ? {
        domainId: first.domain.core.domainId,
        generation: first.domain.core.generation,
        digest: first.quorum.digest,
      }
    : undefined;
  if (rest.length > 0) {
    if (!domain)
      throw new CustosError(
        'E_USAGE',
        'only bundles of one escrow domain can share a ceremony',
        'open one ceremony per single-use bundle',
      );
    if (purpose === 'handover')
      throw new CustosError(
        'E_USAGE',
        'a handover ceremony concerns the one bundle its request names',
        'name one --bundle',
      );
    const stranger = rest.findIndex((b) => b.quorum.digest !== domain.digest || !b.domain);
    if (stranger >= 0) {
      throw new CustosError(
        'E_USAGE',
        `${paths[stranger + 1]} is not sealed to the same domain generation as ${paths[0]}`,
        "a ceremony's quorum opens one generation of one domain: open a ceremony per generation",
      );
    }
    if (new Set(bundles.map((b) => b.body.bundleId)).size !== bundles.length)
      throw new CustosError('E_USAGE', 'the same bundle is named twice', 'name each bundle once');
  }
  return {
    kind: 'bundle',
    ...refOf(first, 0),
    ...(domain ? { domain } : {}),
    ...(rest.length ? { more: rest.map((b, i) => refOf(b, i + 1)) } : {}),
  };
}

// ---------------------------------------------------------------- the host

export interface Host {
  dir: string;
  identity: NamedIdentity;
  signer: Signer;
}

interface Closed {
  closed: string;
  outcome: string;
}

export function closedRecord(ctx: Context, c: LoadedCeremony): Closed | null {
  const path = join(hostDirOf(ctx, c.body.nonce), 'closed.json');
  return existsSync(path) ? readState<Closed>(path) : null;
}

/** A small JSON state file of the host directory; a damaged one is named, not an internal error. */
function readState<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    throw new CustosError(
      'E_CEREMONY',
      `${path} is damaged`,
      "the ceremony's state on this host was changed; keep the directory as evidence and open a new ceremony",
    );
  }
}

/** The ceremony's secret half, on the host that opened it; refuses a closed ceremony. */
export async function openHost(ctx: Context, c: LoadedCeremony): Promise<Host> {
  const dir = hostDirOf(ctx, c.body.nonce);
  const closed = closedRecord(ctx, c);
  if (closed) {
    throw new CustosError(
      'E_CEREMONY',
      `ceremony ${c.body.nonce} was closed at ${closed.closed} (${closed.outcome})`,
      "open a new ceremony: custos ceremony open …; the closed ceremony's key was destroyed with it",
    );
  }
  const keyPath = join(dir, 'host.key');
  if (!existsSync(keyPath)) {
    throw new CustosError(
      'E_CEREMONY',
      `this machine does not hold the key of ceremony ${c.body.nonce} (no ${relative(ctx.cwd, keyPath)})`,
      'run ceremony commands on the host that opened the ceremony, from the directory it was opened in',
    );
  }
  const lines = readFileSync(keyPath, 'utf8').split('\n');
  const signing = lines.find((l) => l.startsWith('ed25519-pkcs8: '))?.slice(15) ?? '';
  const identity = (
    await parseIdentityFile(
      keyPath,
      lines.filter((l) => !l.startsWith('ed25519-pkcs8: ')).join('\n'),
    )
  )[0] as NamedIdentity;
  let signer: Signer;
  try {
    signer = signerFromSecret(Buffer.from(signing, 'base64'));
  } catch {
    throw new CustosError(
      'E_CEREMONY',
      `${keyPath} is damaged`,
      'the ceremony cannot go on on this host; open a new one',
    );
  }
  if (
    identity.recipient !== c.body.recipient ||
    signer.publicKey.toString('base64') !== c.body.signingKey
  ) {
    throw new CustosError(
      'E_CEREMONY',
      `the host key in ${keyPath} does not belong to ${c.path}`,
      'use the ceremony file this host opened',
    );
  }
  return { dir, identity, signer };
}

export const ACCEPTED = 'accepted';

export function acceptedPaths(host: Host): string[] {
  const dir = join(host.dir, ACCEPTED);
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.submission'))
        .sort()
        .map((f) => join(dir, f))
    : [];
}

// ---------------------------------------------------------------- status

export interface CustodianStatus {
  id: string;
  name: string;
  state: 'waiting' | 'accepted' | 'rejected';
  /** For a rejection: why, the newest one (its message). */
  reason?: string;
  /** Its reason code (docs/ceremony.md#rejection-reasons). */
  reasonCode?: string;
  at?: string;
}

export interface CeremonyStatus {
  ceremony: LoadedCeremony;
  custodians: CustodianStatus[];
  /** Rejected submissions that named no custodian of this ceremony. */
  unattributed: { source: string; reason: string; message: string; at: string }[];
  accepted: number;
  closed: Closed | null;
  expired: boolean;
}

/** The state on the host: who has been accepted, who was turned away and why. */
export function ceremonyStatus(ctx: Context, c: LoadedCeremony, now = new Date()): CeremonyStatus {
  const dir = hostDirOf(ctx, c.body.nonce);
  if (!existsSync(dir)) {
    throw new CustosError(
      'E_CEREMONY',
      `this machine holds no state for ceremony ${c.body.nonce}`,
      'run custos ceremony status on the host that opened the ceremony, from the directory it was opened in',
    );
  }
  const acceptedDir = join(dir, ACCEPTED);
  const accepted = new Set(
    existsSync(acceptedDir)
      ? readdirSync(acceptedDir)
          .filter((f) => f.endsWith('.submission'))
          .map((f) => basename(f, '.submission'))
      : [],
  );
  const rejectedDir = join(dir, 'rejected');
  const rejections = (existsSync(rejectedDir) ? readdirSync(rejectedDir).sort() : []).map((f) =>
    readState<{
      time: string;
      source: string;
      custodian: string | null;
      reason: string;
      message: string;
    }>(join(rejectedDir, f)),
  );
  const known = new Set(c.body.custodians.map((x) => x.id));
  const custodians = c.body.custodians.map((x): CustodianStatus => {
    if (accepted.has(x.id)) return { id: x.id, name: x.name, state: 'accepted' };
    const last = rejections.filter((r) => r.custodian === x.id).pop();
    return last
      ? {
          id: x.id,
          name: x.name,
          state: 'rejected',
          reason: last.message,
          reasonCode: last.reason,
          at: last.time,
        }
      : { id: x.id, name: x.name, state: 'waiting' };
  });
  const unattributed = rejections
    .filter((r) => !r.custodian || !known.has(r.custodian))
    .map((r) => ({ source: r.source, reason: r.reason, message: r.message, at: r.time }));
  return {
    ceremony: c,
    custodians,
    unattributed,
    accepted: accepted.size,
    closed: closedRecord(ctx, c),
    expired: expired(c.body, now),
  };
}

/**
 * Abandons an open ceremony: recorded, then its key and sealed shares destroyed, so it can never
 * act.
 */
export async function cancelCeremony(
  ctx: Context,
  c: LoadedCeremony,
): Promise<{ accepted: number }> {
  const host = await openHost(ctx, c);
  claimHost(ctx, c, host, 'ceremony cancel');
  const accepted = acceptedPaths(host).length;
  // Signed while the key exists, destroyed whatever happens to the entry: a cancel must not leave a
  // usable quorum.
  const entry = {
    op: 'ceremony-cancel',
    outcome: 'ok' as const,
    ceremony: c.body.nonce,
    bundle: c.body.subject.bundleId,
    artifacts: { ceremony: c.digest },
    detail: { purpose: c.body.purpose, accepted },
  };
  try {
    recordDone(ctx, entry, host.signer);
  } finally {
    destroyHostSecrets(ctx, c, host, 'cancelled');
  }
  return { accepted };
}

/**
 * Takes the ceremony for the one action that spends it (close, handover, cancel). The claim is an
 * exclusive create, so two runs can never both act on one quorum; `release` gives it back when the
 * action failed before doing anything.
 */
export function claimHost(
  ctx: Context,
  c: LoadedCeremony,
  host: Host,
  action: string,
): { release: () => void } {
  const path = join(host.dir, ACTING);
  try {
    writeFileSync(
      path,
      `${JSON.stringify({ action, pid: process.pid, started: new Date().toISOString(), actor: ctx.actor })}\n`,
      { flag: 'wx', mode: 0o600 },
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      let held = 'another custos run';
      try {
        const h = JSON.parse(readFileSync(path, 'utf8')) as {
          action: string;
          pid: number;
          started: string;
        };
        held = `"${h.action}" (pid ${h.pid}, started ${h.started})`;
      } catch {
        // an unreadable claim is still a claim
      }
      throw new CustosError(
        'E_CEREMONY',
        `ceremony ${c.body.nonce} is already being closed by ${held}`,
        `wait for it to finish. If it was killed, it may have done its work: check for its output first; if the output exists, remove ${path} and run custos ceremony cancel; never simply run it again`,
      );
    }
    throw new CustosError(
      'E_FILE',
      `could not claim ceremony ${c.body.nonce} (${(e as NodeJS.ErrnoException).code})`,
      'check the ceremony directory is writable',
    );
  }
  const release = () => rmSync(path, { force: true });
  // A run that opened the host before another finished must not act after it.
  const closed = closedRecord(ctx, c);
  if (closed) {
    release();
    throw new CustosError(
      'E_CEREMONY',
      `ceremony ${c.body.nonce} was closed at ${closed.closed} (${closed.outcome})`,
      'open a new ceremony: custos ceremony open …',
    );
  }
  return { release };
}

const ACTING = 'acting';

/**
 * Marks the ceremony closed and destroys its key and the sealed shares: they can never be
 * reassembled from it again.
 */
export function destroyHostSecrets(
  ctx: Context,
  c: LoadedCeremony,
  host: Host,
  outcome: string,
): void {
  const closed = join(host.dir, 'closed.json');
  if (!existsSync(closed))
    createFilesAtomically([
      {
        path: closed,
        data: `${JSON.stringify({ closed: new Date().toISOString(), outcome })}\n`,
        mode: 0o600,
      },
    ]);
  rmSync(join(host.dir, ACCEPTED), { recursive: true, force: true });
  rmSync(join(host.dir, 'host.key'), { force: true });
  rmSync(join(host.dir, ACTING), { force: true });
}
