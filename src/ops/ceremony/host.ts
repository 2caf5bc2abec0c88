/**
 * What every ceremony command shares: the ceremony file as read and verified, what its shares are
 * judged against, and the ceremony's state on the host that opened it (its key, kept 0600 under
 * .custos/ceremonies/NONCE/, the accepted submissions, the claim one run takes to act, and the end
 * of it, when its key and sealed shares are destroyed).
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { parseCeremony, type CeremonyBody } from '../../core/ceremony.js';
import type { QuorumSubject } from '../../core/quorum.js';
import { parseIdentityFile, type NamedIdentity } from '../../crypto/age.js';
import { signerFromSecret, verifyEd25519, type Signer } from '../../crypto/ed25519.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { createFilesAtomically, readInputFile } from '../../io/files.js';
import { acquireLock, ownerGone, processStart } from '../../io/lock.js';
import type { Context } from '../context.js';

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

export function hostDirOf(ctx: Context, nonce: string): string {
  return resolve(ctx.cwd, '.custos', 'ceremonies', nonce);
}

export interface Host {
  dir: string;
  identity: NamedIdentity;
  signer: Signer;
}

export interface Closed {
  closed: string;
  outcome: string;
}

export function closedRecord(ctx: Context, c: LoadedCeremony): Closed | null {
  const path = join(hostDirOf(ctx, c.body.nonce), 'closed.json');
  return existsSync(path) ? readState<Closed>(path) : null;
}

/** A small JSON state file of the host directory; a damaged one is named, not an internal error. */
export function readState<T>(path: string): T {
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

interface Claim {
  action: string;
  pid: number;
  started: string;
  actor: string;
  host?: string;
  /** The process's start time as the kernel counts it: a reused pid is not the claimant. */
  processStarted?: string;
}

function readClaim(path: string): Claim | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Claim;
    return typeof h.pid === 'number' && typeof h.action === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A claim left by a run that is provably gone (this host, its process dead or its pid reused) is
 * taken over by a run of the same action, one taker at a time. Safe because every action a claim
 * guards plans again from what is there: a restore finds the keys it already made (and its own
 * half-made ones by the token's run marker), and outputs are never overwritten, so a close that
 * had written its output is
 * refused, not repeated.
 */
function takeOverDeadClaim(
  ctx: Context,
  path: string,
  action: string,
  text: string,
): Claim | undefined {
  const claim = readClaim(path);
  // Only the same command with the same options: another target or another package path would
  // act on the quorum a second time.
  if (!claim?.host || !claim.processStarted || claim.action !== action) return undefined;
  const owner = { pid: claim.pid, host: claim.host, started: claim.processStarted };
  if (!ownerGone(owner)) return undefined;
  const lock = acquireLock(`${path}.takeover`, {
    command: 'ceremony claim',
    waitMs: 10_000,
    busy: () =>
      new CustosError(
        'E_CEREMONY',
        'another custos run is taking over the same ceremony',
        'wait for it to finish, then look at its outcome before running anything again',
      ),
  });
  try {
    // Still the dead run's claim, not one a faster taker just made.
    if (!sameClaim(path, claim)) return undefined;
    const fresh = `${path}.${process.pid}`;
    writeFileSync(fresh, text, { flag: 'wx', mode: 0o600 });
    renameSync(fresh, path);
    ctx.out.warn(
      `ceremony claim of "${claim.action}" (pid ${claim.pid}, started ${claim.started}) was left by a run that is no longer running; this run takes it over`,
    );
    return claim;
  } finally {
    lock.release();
  }
}

function sameClaim(path: string, claim: Claim): boolean {
  const now = readClaim(path);
  return !!now && now.pid === claim.pid && now.processStarted === claim.processStarted;
}

/**
 * Takes the ceremony for the one action that spends it (close, handover, cancel). The claim is an
 * exclusive create, so two runs can never both act on one quorum; `release` gives it back when the
 * action failed before doing anything. A claim whose run is provably gone is taken over.
 */
export function claimHost(
  ctx: Context,
  c: LoadedCeremony,
  host: Host,
  action: string,
): { release: () => void } {
  const path = join(host.dir, ACTING);
  const claim: Claim = {
    action,
    pid: process.pid,
    started: new Date().toISOString(),
    actor: ctx.actor,
    host: hostname(),
    processStarted: processStart(process.pid),
  };
  const text = `${JSON.stringify(claim)}\n`;
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      if (takeOverDeadClaim(ctx, path, action, text)) return claimed(ctx, c, path);
      const h = readClaim(path);
      // an unreadable claim is still a claim
      const held = h ? `"${h.action}" (pid ${h.pid}, started ${h.started})` : 'another custos run';
      throw new CustosError(
        'E_CEREMONY',
        `ceremony ${c.body.nonce} is already being closed by ${held}`,
        `wait for it to finish. If it was killed, it may have done its work: check for its output first; if the output exists, remove ${path} and run custos ceremony cancel; if not, remove it and run the same command again`,
      );
    }
    throw new CustosError(
      'E_FILE',
      `could not claim ceremony ${c.body.nonce} (${(e as NodeJS.ErrnoException).code})`,
      'check the ceremony directory is writable',
    );
  }
  return claimed(ctx, c, path);
}

function claimed(ctx: Context, c: LoadedCeremony, path: string): { release: () => void } {
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
