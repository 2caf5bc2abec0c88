/**
 * Handover under legal process: a request naming the case, the keys and the recipient; approvals
 * signed by the policy's approvers; and, once every rule is met and a handover ceremony bound to
 * the request has its quorum, the release: the named keys unwrapped inside a scratch token,
 * wrapped there to the recipient's RSA key, and delivered with a signed chain-of-custody receipt.
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { basename, dirname, relative, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import type { QuorumState } from '../core/quorum.js';
import { hasUnsafeText } from '../core/text.js';
import { isTimestamp } from '../core/fields.js';
import { parsePolicy, isSelected, type Policy } from '../core/policy.js';
import {
  approvalSignedBytes,
  evaluateRequest,
  parseRequest,
  requestRules,
  requestSignedBytes,
  serialiseRequest,
  type CeremonyFacts,
  type ParsedRequest,
  type RequestBody,
  type RuleCheck,
} from '../core/handover.js';
import {
  packageSignedBytes,
  serialisePackage,
  type PackageBody,
  type PackagedKey,
} from '../core/handover-package.js';
import { expired } from '../core/ceremony.js';
import { parseEntryLine } from '../core/audit.js';
import { sha256Hex } from '../crypto/check-values.js';
import { verifyEd25519, signerFromSecret } from '../crypto/ed25519.js';
import { readRsaPublicKey, requestRecipient, usableExponent } from '../crypto/rsa-aes-wrap.js';
import {
  TRANSPORT_MECHANISMS,
  generateEphemeralKey,
  importTransportPublicKey,
  tryWrapEphemeral,
} from '../hsm/transport.js';
import type { Handle } from '../hsm/module.js';
import {
  createFilesAtomically,
  readInputFile,
  refuseExisting,
  replaceFileAtomically,
} from '../io/files.js';
import { applyRecords, rollback } from './apply.js';
import {
  claimHost,
  destroyHostSecrets,
  loadCeremony,
  openHost,
  type Host,
  type LoadedCeremony,
} from './ceremony.js';
import { judgeSubmissions } from './submissions.js';
import { openHsm } from './hsm.js';
import { audited, type AuditNote } from './audit.js';
import { withScratchToken } from './scratch.js';
import {
  assembleKek,
  identityPassphrase,
  loadBundle,
  requireQuorum,
  type LoadedBundle,
} from './shares.js';
import { requireKeyBundle } from './restore.js';
import type { Context } from './context.js';

export interface LoadedRequest extends ParsedRequest {
  path: string;
  /** The file as read and judged. */
  file: Buffer;
  digest: string;
  policy: Policy;
}

export function loadRequest(ctx: Context, path: string): LoadedRequest {
  const file = readInputFile(resolve(ctx.cwd, path), 'handover request');
  const parsed = parseRequest(path, file);
  if (sha256Hex(Buffer.from(parsed.body.policy.text, 'utf8')) !== parsed.body.policy.sha256) {
    throw new CustosError(
      'E_HANDOVER_FORMAT',
      `${path}: the policy it carries does not match its recorded digest`,
      'the request was edited; ask for the request as it was made',
    );
  }
  requestRecipient(path, parsed.body.recipient);
  const policy = parsePolicy(
    `${path} (embedded policy ${parsed.body.policy.name})`,
    parsed.body.policy.text,
  );
  return { ...parsed, path, file, digest: sha256Hex(parsed.signed), policy };
}

function inScope(policy: Policy): (label: string) => boolean {
  return (label) => !!policy.handover && isSelected(label, policy.handover.keys);
}

function refuse(message: string, unmet: readonly RuleCheck[]): CustosError {
  return new CustosError(
    'E_HANDOVER_REFUSED',
    message,
    'nothing was released and nothing was written; meet each rule named above, or ask for a request the policy allows',
    unmet.map((r) => `${r.rule}: ${r.detail}`),
  );
}

// ---------------------------------------------------------------- request

/**
 * The rules of a handover are those of the policy the backup was made under, whose digest the
 * bundle records (and the custodians' shares sign, through the bundle's digest): a request cannot
 * bring laxer rules of its own.
 */
function requirePolicyOfBundle(
  bundle: LoadedBundle,
  policyName: string,
  policyDigest: string,
): void {
  const recorded = bundle.body.policy;
  if (!recorded) {
    throw new CustosError(
      'E_HANDOVER_REFUSED',
      `${bundle.path} records no policy, so no handover rules bind it`,
      'back up again under the custodial policy (custos backup --policy POLICY); the new bundle records it',
      [],
    );
  }
  if (recorded.sha256 !== policyDigest) {
    throw new CustosError(
      'E_HANDOVER_REFUSED',
      `${policyName} is not the policy ${bundle.path} was made under (that was ${recorded.name}, sha256 ${recorded.sha256.slice(0, 16)}…)`,
      'use the policy file the backup was made under, unchanged; nothing was written',
    );
  }
}

export interface RequestInput {
  bundle: string;
  policy: string;
  matter: string;
  authority: string;
  basis: string;
  document: string;
  keys: string[];
  recipient: string;
  out: string;
  noticeGiven?: string;
}

export function makeRequest(ctx: Context, req: RequestInput): LoadedRequest {
  for (const [flag, value] of [
    ['--matter', req.matter],
    ['--authority', req.authority],
    ['--basis', req.basis],
    ['--document', basename(req.document)],
  ] as const) {
    if (hasUnsafeText(value) || value.trim() === '')
      throw new CustosError(
        'E_USAGE',
        `${flag} must be printable text (no control characters or line breaks)`,
        'give it as plain text',
      );
  }
  const out = resolve(ctx.cwd, req.out);
  refuseExisting([out]);
  const policyText = readInputFile(resolve(ctx.cwd, req.policy), 'policy file').toString('utf8');
  const policy = parsePolicy(req.policy, policyText);
  if (!policy.handover)
    throw new CustosError(
      'E_POLICY',
      `${req.policy} has no handover section, so it allows no handover`,
      "use the institution's custodial policy (see policies/dfs-custodial.yaml)",
    );
  const bundle = loadBundle(ctx, req.bundle);
  requireKeyBundle(bundle);
  requirePolicyOfBundle(bundle, req.policy, sha256Hex(Buffer.from(policyText, 'utf8')));
  const scope = req.keys.map((label) => {
    const found = bundle.body.keys.filter((k) => k.label === label);
    if (found.length !== 1) {
      throw new CustosError(
        'E_USAGE',
        found.length
          ? `label "${label}" names ${found.length} keys in ${req.bundle}`
          : `${req.bundle} has no key labelled "${label}"`,
        'name each key by a label the bundle holds exactly once (custos inventory shows them)',
      );
    }
    const k = found[0] as (typeof found)[number];
    return {
      class: k.class,
      keyType: k.keyType,
      label: k.label,
      id: k.id,
      checkValue: k.checkValue,
    };
  });
  if (new Set(req.keys).size !== req.keys.length)
    throw new CustosError('E_USAGE', 'a key is named twice in --keys', 'name each key once');
  const pem = readInputFile(resolve(ctx.cwd, req.recipient), 'recipient public key').toString(
    'utf8',
  );
  const rsa = readRsaPublicKey(pem);
  if (!rsa)
    throw new CustosError(
      'E_USAGE',
      `${req.recipient} is not an RSA public key in PEM form`,
      'ask the recipient for their RSA public key (openssl pkey -in KEY -pubout)',
    );
  if (!usableExponent(rsa)) {
    throw new CustosError(
      'E_USAGE',
      `${req.recipient} has public exponent 0x${rsa.publicExponent.toString('hex')}; custos wraps only to RSA keys with an odd exponent of at least 65537`,
      'ask the recipient for a key made with the usual exponent 65537 (openssl genpkey -algorithm RSA)',
    );
  }
  const noticeGiven = req.noticeGiven ?? new Date().toISOString();
  // A time with its zone, never in the future: the notice period counts from it.
  if (
    !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(noticeGiven) ||
    Number.isNaN(Date.parse(noticeGiven))
  ) {
    throw new CustosError(
      'E_USAGE',
      `--notice-given ${noticeGiven} is not a time with its zone`,
      'give it as 2026-12-01T09:00:00Z (or with an offset, +01:00)',
    );
  }
  if (Date.parse(noticeGiven) > Date.now() + 60_000)
    throw new CustosError(
      'E_USAGE',
      `--notice-given ${noticeGiven} is in the future`,
      'give the time the institution was actually given notice',
    );
  // Recorded in UTC as toISOString writes it, the one form a request's reader accepts (years 0000
  // to 9999).
  const noticeRecorded = new Date(noticeGiven).toISOString();
  if (!isTimestamp(noticeRecorded))
    throw new CustosError(
      'E_USAGE',
      `--notice-given ${noticeGiven} is not a time custos can record`,
      'give it as 2026-12-01T09:00:00Z (or with an offset, +01:00)',
    );
  const document = readInputFile(resolve(ctx.cwd, req.document), 'legal document');
  const body: RequestBody = {
    requestId: randomBytes(16).toString('hex'),
    created: new Date().toISOString(),
    requestedBy: ctx.actor,
    matter: req.matter,
    authority: req.authority,
    basis: req.basis,
    document: { name: basename(req.document), sha256: sha256Hex(document) },
    bundle: {
      file: relative(dirname(out), resolve(ctx.cwd, req.bundle)),
      bundleId: bundle.body.bundleId,
      bundleDigest: bundle.digest,
    },
    scope,
    recipient: { spki: rsa.spki.toString('base64'), sha256: sha256Hex(rsa.spki), bits: rsa.bits },
    noticeGiven: noticeRecorded,
    policy: {
      name: basename(req.policy),
      sha256: sha256Hex(Buffer.from(policyText, 'utf8')),
      text: policyText,
    },
  };
  // The same check every later step makes: a key none of them would accept is refused now.
  requestRecipient(req.recipient, body.recipient);
  const unmet = requestRules(policy, body, inScope(policy)).filter((r) => !r.met);
  if (unmet.length > 0)
    throw refuse(
      `the policy does not allow this request (${unmet.map((r) => r.rule).join(', ')})`,
      unmet,
    );
  const signed = requestSignedBytes(body);
  const file = serialiseRequest(signed, []);
  createFilesAtomically([{ path: out, data: file, mode: 0o644 }]);
  return { path: req.out, file, body, signed, approvals: [], digest: sha256Hex(signed), policy };
}

// ---------------------------------------------------------------- approve

export interface ApproveInput {
  request: string;
  as: string;
  key: string;
  /** The legal document as the approver reviewed it: must match the request's digest. */
  document?: string;
}

export async function approve(
  ctx: Context,
  req: ApproveInput,
): Promise<{ request: LoadedRequest; approver: string; organisation: string }> {
  // Approvers may sign at the same moment: one at a time, so no approval is lost in the rewrite.
  const lock = `${resolve(ctx.cwd, req.request)}.lock`;
  try {
    closeSync(openSync(lock, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new CustosError(
        'E_FILE',
        `could not lock ${req.request} (${(e as NodeJS.ErrnoException).code})`,
        'check its directory is writable',
      );
    throw new CustosError(
      'E_FILE',
      `another approval of ${req.request} is being written`,
      `try again in a moment; if no custos is running, remove ${lock}`,
    );
  }
  try {
    return await approveLocked(ctx, req);
  } finally {
    rmSync(lock, { force: true });
  }
}

async function approveLocked(
  ctx: Context,
  req: ApproveInput,
): Promise<{ request: LoadedRequest; approver: string; organisation: string }> {
  const r = loadRequest(ctx, req.request);
  const pem = readInputFile(resolve(ctx.cwd, req.key), 'approver key').toString('utf8');
  const passphrase = pem.includes('ENCRYPTED PRIVATE KEY')
    ? await identityPassphrase(ctx, req.key, 'approval key')
    : undefined;
  let raw: Buffer;
  let signer;
  try {
    const pkcs8 = createPrivateKey({
      key: pem,
      ...(passphrase !== undefined ? { passphrase } : {}),
    }).export({ format: 'der', type: 'pkcs8' });
    signer = signerFromSecret(pkcs8);
    raw = signer.publicKey;
  } catch (e) {
    if (e instanceof CustosError) throw e;
    throw new CustosError(
      'E_IDENTITY',
      passphrase !== undefined
        ? `the passphrase does not open ${req.key}, or it is not an Ed25519 key`
        : `${req.key} is not an Ed25519 private key in PEM form`,
      'pass the approval key made with openssl genpkey -algorithm ed25519 (and its passphrase, if it has one)',
    );
  }
  const approver = r.policy.approvers.find((a) => a.key === raw.toString('base64'));
  if (!approver)
    throw new CustosError(
      'E_IDENTITY',
      `the key in ${req.key} belongs to no approver in the request's policy (${r.body.policy.name})`,
      'use the approval key whose public half the policy lists',
    );
  if (approver.role !== req.as) {
    throw new CustosError(
      'E_USAGE',
      `${approver.id} approves as "${approver.role}", not "${req.as}"`,
      `run again with --as ${approver.role}`,
    );
  }
  if (req.document) {
    const seen = sha256Hex(readInputFile(resolve(ctx.cwd, req.document), 'legal document'));
    if (seen !== r.body.document.sha256) {
      throw new CustosError(
        'E_HANDOVER_REFUSED',
        `${req.document} is not the document the request names (SHA-256 ${seen.slice(0, 16)}…, the request has ${r.body.document.sha256.slice(0, 16)}…)`,
        'do not approve: the document you reviewed is not the one in the request; nothing was written',
      );
    }
  }
  if (r.approvals.some((a) => a.approver === approver.id))
    throw new CustosError(
      'E_USAGE',
      `${approver.id} has already approved this request`,
      'nothing more is needed from this approver',
    );
  const approval = { role: approver.role, approver: approver.id, time: new Date().toISOString() };
  const signature = signer.sign(approvalSignedBytes(r.digest, approval)).toString('base64');
  const approvals = [...r.approvals, { ...approval, signature }];
  replaceFileAtomically(
    resolve(ctx.cwd, req.request),
    serialiseRequest(r.signed, approvals),
    0o644,
  );
  return {
    request: { ...r, approvals },
    approver: approver.id,
    organisation: approver.organisation,
  };
}

// ---------------------------------------------------------------- status

export interface HandoverState {
  request: LoadedRequest;
  checks: RuleCheck[];
  /** With a ceremony: it, its host key and its judged quorum. */
  ceremony?: LoadedCeremony;
  host?: Host;
  state?: QuorumState;
}

/**
 * The ceremony as the rules see it, with the host and judged quorum that execute goes on to use.
 */
async function ceremonyFacts(
  ctx: Context,
  c: LoadedCeremony,
): Promise<{ facts: CeremonyFacts; host: Host; state: QuorumState }> {
  const host = await openHost(ctx, c);
  const { state } = await judgeSubmissions(c, host, []);
  const facts = {
    purpose: c.body.purpose,
    request: c.body.request,
    bundleId: c.body.subject.bundleId,
    bundleDigest: c.body.subject.bundleDigest,
    accepted: state.accepted.length,
    expired: expired(c.body, new Date()),
  };
  return { facts, host, state };
}

export async function handoverStatus(
  ctx: Context,
  requestPath: string,
  ceremonyPath?: string,
): Promise<HandoverState> {
  const request = loadRequest(ctx, requestPath);
  const ceremony = ceremonyPath ? loadCeremony(ctx, ceremonyPath) : undefined;
  const held = ceremony ? await ceremonyFacts(ctx, ceremony) : undefined;
  const checks = evaluateRequest(
    request,
    request.policy,
    request.digest,
    verifyEd25519,
    new Date(),
    inScope(request.policy),
    held?.facts,
    ceremony?.body.threshold,
  );
  return { request, checks, ceremony, ...(held ? { host: held.host, state: held.state } : {}) };
}

// ---------------------------------------------------------------- execute

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
      kek.fill(0);
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
