/**
 * custos handover execute: once every rule is met and a handover ceremony bound to the request has
 * its quorum, the release: the named keys unwrapped inside a scratch token, wrapped there to the
 * recipient's RSA key, and delivered with a receipt signed by the ceremony key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import type { QuorumState } from '../../core/quorum.js';
import {
  packageSignedBytes,
  serialisePackage,
  type PackageBody,
  type PackagedKey,
} from '../../core/handover-package.js';
import { parseEntryLine } from '../../core/audit/entry.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { requestRecipient } from '../../crypto/rsa-aes-wrap.js';
import {
  TRANSPORT_MECHANISMS,
  generateEphemeralKey,
  importTransportPublicKey,
  tryWrapEphemeral,
} from '../../hsm/transport.js';
import type { Handle } from '../../hsm/module.js';
import { createFilesAtomically, refuseExisting } from '../../io/files.js';
import { applyRecords, rollback } from '../apply.js';
import { claimHost, destroyHostSecrets, type Host, type LoadedCeremony } from '../ceremony/host.js';
import { openHsm } from '../hsm.js';
import { audited, type AuditNote } from '../audit.js';
import { withScratchToken } from '../scratch.js';
import { assembleKek, loadBundle, requireQuorum, type LoadedBundle } from '../shares.js';
import type { Context } from '../context.js';
import { refuse, requirePolicyOfBundle, type LoadedRequest } from './load.js';
import { handoverStatus, type HandoverState } from './status.js';
import { wipe } from '../../crypto/wipe.js';

export interface ExecuteInput {
  request: string;
  ceremony: string;
  out: string;
  bundle?: string;
}

export interface Executed {
  request: LoadedRequest;
  ceremony: LoadedCeremony;
  packagePath: string;
  packageDigest: string;
  keys: PackagedKey[];
  oaep: PackageBody['oaep'];
  custodians: string[];
  scratchDestroyed: boolean;
}

export async function executeHandover(ctx: Context, req: ExecuteInput): Promise<Executed> {
  // Once the package exists the ceremony is spent, whatever happens to its audit entry.
  let spent: { c: LoadedCeremony; host: Host } | undefined;
  let claim: { release: () => void } | undefined;
  try {
    return await audited(ctx, 'handover-execute', (note) =>
      release(
        ctx,
        req,
        note,
        (c, host, out) => {
          claim = claimHost(ctx, c, host, `handover execute --out ${out}`);
        },
        (c, host) => {
          spent = { c, host };
        },
      ),
    );
  } finally {
    if (spent) destroyHostSecrets(ctx, spent.c, spent.host, 'handover executed');
    else claim?.release();
  }
}

/**
 * The release itself, once every rule is met: claim the ceremony, unwrap in scratch, wrap to the
 * recipient, write the package.
 */
async function release(
  ctx: Context,
  req: ExecuteInput,
  note: AuditNote,
  claimed: (c: LoadedCeremony, host: Host, out: string) => void,
  written: (c: LoadedCeremony, host: Host) => void,
): Promise<Executed> {
  note.detail = { request: req.request };
  const out = resolve(ctx.cwd, req.out);
  refuseExisting([out]);
  const { request, checks, ceremony, host, state } = (await handoverStatus(
    ctx,
    req.request,
    req.ceremony,
  )) as Required<HandoverState>;
  const c = ceremony;
  note.ceremony = c.body.nonce;
  note.bundle = request.body.bundle.bundleId;
  note.artifacts = { request: request.digest, ceremony: c.digest };
  Object.assign(note.detail, {
    matter: request.body.matter,
    authority: request.body.authority,
    basis: request.body.basis,
    keys: request.body.scope.map((k) => k.label),
    recipient: request.body.recipient.sha256,
  });
  note.signer = host.signer;
  const unmet = checks.filter((r) => !r.met);
  if (unmet.length > 0)
    throw refuse(
      `the handover is refused: ${unmet.length} rule${unmet.length === 1 ? ' is' : 's are'} not met`,
      unmet,
    );
  // Accepted shares only grow, and the claim refuses a ceremony closed meanwhile: the quorum judged
  // above stands.
  claimed(c, host, req.out);
  const bundlePath =
    req.bundle ?? resolve(dirname(resolve(ctx.cwd, req.request)), request.body.bundle.file);
  const bundle = loadBundle(ctx, bundlePath);
  if (
    bundle.body.bundleId !== request.body.bundle.bundleId ||
    bundle.digest !== request.body.bundle.bundleDigest
  ) {
    throw new CustosError(
      'E_HANDOVER_REFUSED',
      `${bundlePath} is not the bundle the request names`,
      'pass the right bundle with --bundle; nothing was released',
    );
  }
  requirePolicyOfBundle(bundle, request.body.policy.name, request.body.policy.sha256);
  requireScopeInBundle(request, bundle);
  requireQuorum(bundle, state);

  const { result, destroyed } = await withScratchToken(ctx, (scratch, label) =>
    releaseInScratch(scratch, label, bundle, state, request),
  );
  const body: PackageBody = {
    created: new Date().toISOString(),
    // The very bytes that were judged, not the files as they may be now.
    request: request.file.toString('utf8'),
    requestDigest: request.digest,
    ceremony: c.file.toString('utf8'),
    transcript: ceremonyTranscript(ctx, c.body.nonce),
    recipientSha256: request.body.recipient.sha256,
    oaep: result.oaep,
    keys: result.keys,
  };
  const signed = packageSignedBytes(body);
  const file = serialisePackage(signed, host.signer.sign(signed));
  createFilesAtomically([{ path: out, data: file, mode: 0o600 }]);
  const custodians = state.accepted.map((a) => a.custodian);
  Object.assign(note.artifacts, { package: sha256Hex(file), bundle: bundle.digest });
  Object.assign(note.detail, {
    quorum: custodians,
    oaep: result.oaep.hash,
    scratchDestroyed: destroyed,
  });
  written(c, host);
  return {
    request,
    ceremony: c,
    packagePath: out,
    packageDigest: sha256Hex(file),
    keys: result.keys,
    oaep: result.oaep,
    custodians,
    scratchDestroyed: destroyed,
  };
}

/** Each scoped key must be exactly one key of the bundle, as recorded there, and named once. */
function requireScopeInBundle(request: LoadedRequest, bundle: LoadedBundle): void {
  const problems = request.body.scope.flatMap((k, i) => {
    const same = bundle.body.keys.filter(
      (r) =>
        r.class === k.class &&
        r.label === k.label &&
        r.id === k.id &&
        r.keyType === k.keyType &&
        r.checkValue.method === k.checkValue.method &&
        r.checkValue.value === k.checkValue.value,
    );
    const twice =
      request.body.scope.findIndex(
        (o) => o.class === k.class && o.label === k.label && o.id === k.id,
      ) !== i;
    return same.length !== 1 || twice
      ? [
          `scope: ${k.label} ${twice ? 'is named twice' : 'is not a key of the bundle as recorded there'}`,
        ]
      : [];
  });
  if (problems.length > 0) {
    throw new CustosError(
      'E_HANDOVER_FORMAT',
      `${request.path} names keys that do not match the bundle`,
      'the request was edited; ask for the request as it was made; nothing was released',
      problems,
    );
  }
}

/**
 * Inside the scratch token: the KEK, only the scoped keys (each proved), each wrapped to the
 * recipient.
 */
async function releaseInScratch(
  ctx: Context,
  label: string,
  bundle: LoadedBundle,
  state: QuorumState,
  request: LoadedRequest,
): Promise<{ keys: PackagedKey[]; oaep: PackageBody['oaep'] }> {
  const token = await openHsm(ctx, label, true);
  const session: Handle[] = [];
  try {
    const wanted = new Set(request.body.scope.map((k) => `${k.class}/${k.label}/${k.id}`));
    const records = bundle.body.keys.filter((k) => wanted.has(`${k.class}/${k.label}/${k.id}`));
    const kek = await assembleKek(bundle, state);
    try {
      session.push(token.importKek(kek));
    } finally {
      wipe(kek);
    }
    const applied = applyRecords(
      token,
      session[0] as Handle,
      records,
      'the bundle',
      () => undefined,
    );
    const rsa = requestRecipient(request.path, request.body.recipient);
    const recipient = importTransportPublicKey(token, rsa);
    session.push(recipient);
    const contents = token.contents();
    let mechanism: (typeof TRANSPORT_MECHANISMS)[number] | undefined;
    const keys: PackagedKey[] = [];
    for (const k of applied.keys) {
      const object = contents.keys.find(
        (o) => o.class === k.record.class && o.label === k.record.label && o.id === k.record.id,
      );
      if (!object)
        throw new CustosError(
          'E_VERIFY',
          `key "${k.record.label}" is missing from the scratch token after it was restored`,
        );
      const ephemeral = generateEphemeralKey(token);
      session.push(ephemeral);
      let rsaPart: Buffer | undefined;
      for (const m of mechanism ? [mechanism] : TRANSPORT_MECHANISMS.filter((x) => x.oaep)) {
        // Only a refusal of this OAEP variant means "try the next"; a device error stops the
        // release.
        rsaPart = tryWrapEphemeral(token, m, recipient, ephemeral) ?? undefined;
        if (rsaPart) {
          mechanism = m;
          break;
        }
      }
      if (!rsaPart)
        throw new CustosError(
          'E_MECHANISM',
          'the scratch token cannot wrap to the recipient with RSA-OAEP (SHA-256 or SHA-1)',
          'the recipient key may be unusable (too small, or not for encryption)',
        );
      keys.push({
        class: k.record.class,
        keyType: k.record.keyType,
        label: k.record.label,
        id: k.record.id,
        bits: k.record.bits,
        checkValue: k.record.checkValue,
        wrapped: Buffer.concat([rsaPart, token.wrap(ephemeral, object)]).toString('base64'),
      });
    }
    const sha256 = mechanism?.name.includes('SHA256');
    return {
      keys,
      oaep: sha256
        ? { hash: 'SHA-256', mgf: 'MGF1-SHA-256', label: '' }
        : { hash: 'SHA-1', mgf: 'MGF1-SHA-1', label: '' },
    };
  } finally {
    rollback(token, session);
    token.close();
  }
}

/** SHA-256 of each audit entry of the ceremony so far, in log order. */
function ceremonyTranscript(ctx: Context, nonce: string): string[] {
  if (!existsSync(ctx.auditLog)) return [];
  return readFileSync(ctx.auditLog, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .filter((line) => {
      const parsed = parseEntryLine(line);
      return 'entry' in parsed && parsed.entry.ceremony === nonce;
    })
    .map((line) => sha256Hex(Buffer.from(line, 'utf8')));
}
