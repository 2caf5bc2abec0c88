/**
 * custos ceremony open: the ceremony file for the custodians (nothing secret in it), and its key,
 * kept on this host only.
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import {
  ceremonySignedBytes,
  parseDuration,
  PURPOSES,
  serialiseCeremony,
  type BundleRef,
  type CeremonyBody,
  type DomainRef,
  type HandoverSummary,
  type Purpose,
  type Subject,
} from '../../core/ceremony.js';
import { parsePolicy } from '../../core/policy.js';
import { parseRequest } from '../../core/handover.js';
import { requestRecipient } from '../../crypto/rsa-aes-wrap.js';
import { newIdentity } from '../../crypto/age.js';
import { freshStoredSigner } from '../../crypto/ed25519.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { createFilesAtomically, readInputFile } from '../../io/files.js';
import { loadDomain, requireCurrent } from '../domain/load.js';
import { loadBundle, type LoadedBundle } from '../shares.js';
import { loadPinEscrow } from '../escrowed-pin.js';
import { recordDone } from '../audit.js';
import type { Context } from '../context.js';
import { hostDirOf, type LoadedCeremony } from './host.js';
import { wipe } from '../../crypto/wipe.js';

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
    wipe(secret);
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
