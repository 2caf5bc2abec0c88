/**
 * The escrow domain file, `custos-domain/1` (SPEC.md): a long-lived secret split once among the
 * custodians, and the public parts bundles are sealed to and signed under. It holds no secret.
 *
 * The body (the "core") is what custodian shares bind by digest. After it come trailer lines:
 * the authority's signature of the core, one line per enrolled source HSM (whose signing key
 * signs that HSM's bundles), and, once rotated, a line naming the domain that replaced it.
 */
import { CustosError } from './errors.js';
import { oneCodeRules } from './signed-file.js';
import { FieldReader } from './fields.js';
import {
  canonicalBase64,
  envelopeBytes,
  isCanonical,
  openEnvelope,
  parseBoundedJson,
  withTrailers,
  type Trailer,
} from './envelope.js';
import type { Dealer, Escrow, PolicyRecord, TokenIdentity } from './escrow-fields.js';
import {
  BUNDLE_ID,
  readDealer,
  readEscrow,
  readPolicyRecord,
  readTokenIdentity,
} from './escrow-fields.js';

export const DOMAIN_FORMAT = 'custos-domain/1';
const ENROLMENT_FORMAT = 'custos-domain-enrolment/1';
const SUPERSEDED_FORMAT = 'custos-domain-superseded/1';
const CORE_SIGNATURE_TAG = 'ed25519';
const ENROLMENT_TAG = 'enrolment';
const SUPERSEDED_TAG = 'superseded';

export const SHA256_HEX = /^[0-9a-f]{64}$/;
/**
 * age X25519 recipients, and the post-quantum hybrid ones (ML-KEM-768 + X25519) age-encryption 0.3
 * writes.
 */
export const SEAL_RECIPIENT = /^(?:age1[02-9ac-hj-np-z]{58}|age1pq1[02-9ac-hj-np-z]{1900,2100})$/;
export const SEAL_TYPES = ['age-x25519', 'age-hybrid-mlkem768-x25519'] as const;
export type SealType = (typeof SEAL_TYPES)[number];

export interface DomainBody {
  domainId: string;
  /** 1 at `domain init`; one more at each rotation. The id stays. */
  generation: number;
  created: string;
  tool: string;
  policy: PolicyRecord;
  /** The age recipient bundle keys are sealed to; its identity is the split secret. */
  seal: { type: SealType; recipient: string; identityLength: number };
  /** Ed25519 key derived from the domain secret: only a quorum can sign with it. */
  authority: { algorithm: 'Ed25519'; publicKey: string };
  escrow: Escrow;
  /** One-time key that signed the custodians' shares of this generation. */
  dealer: Dealer;
  /** The generation this one replaced, by digest. */
  supersedes?: { generation: number; digest: string };
}

/** A source HSM's signing key, vouched for by the authority or by another enrolled HSM's key. */
export interface Enrolment {
  /** Digest of the domain core this enrolment belongs to. */
  domain: string;
  source: TokenIdentity;
  /** CKA_ID of the key pair on the token, hex. */
  keyId: string;
  /** SubjectPublicKeyInfo (DER, base64) of the ECDSA P-256 key. */
  publicKey: string;
  enrolled: string;
  /** "authority", or the SHA-256 (hex) of the endorsing enrolment's public key. */
  endorser: string;
  /**
   * Ed25519 (authority) or ECDSA P-256 IEEE P1363 (endorser), base64, over enrolmentSignedBytes.
   */
  signature: string;
}

export interface Supersession {
  /** Digest of the superseded core. */
  domain: string;
  by: { generation: number; digest: string; file: string };
  time: string;
  /** The superseded generation's authority signature over supersessionSignedBytes. */
  signature: string;
}

export interface ParsedDomain {
  body: DomainBody;
  /** The core's bytes (format line and body): what shares bind and the authority signs. */
  core: Buffer;
  digest: string;
  coreSignature: Buffer;
  enrolments: Enrolment[];
  superseded?: Supersession;
}

export function domainCoreBytes(body: DomainBody): Buffer {
  return envelopeBytes(DOMAIN_FORMAT, body);
}

export function enrolmentSignedBytes(e: Omit<Enrolment, 'signature'>): Buffer {
  return envelopeBytes(ENROLMENT_FORMAT, {
    domain: e.domain,
    source: e.source,
    keyId: e.keyId,
    publicKey: e.publicKey,
    enrolled: e.enrolled,
    endorser: e.endorser,
  });
}

export function supersessionSignedBytes(s: Omit<Supersession, 'signature'>): Buffer {
  return envelopeBytes(SUPERSEDED_FORMAT, { domain: s.domain, by: s.by, time: s.time });
}

export function serialiseDomain(
  core: Buffer,
  coreSignature: Buffer,
  enrolments: readonly Enrolment[],
  superseded?: Supersession,
): Buffer {
  const trailers: Trailer[] = [
    { tag: CORE_SIGNATURE_TAG, value: coreSignature.toString('base64') },
    ...enrolments.map((e) => ({ tag: ENROLMENT_TAG, value: JSON.stringify(e) })),
    ...(superseded ? [{ tag: SUPERSEDED_TAG, value: JSON.stringify(superseded) }] : []),
  ];
  return withTrailers(core, trailers);
}

const HINT =
  'the domain file is damaged or is not a custos domain; use the copy written by custos domain init or rotate';

const RULES = oneCodeRules(DOMAIN_FORMAT, 'domain file', 'E_DOMAIN', HINT, {
  maxBytes: 4 * 1024 * 1024,
});

/** Parses a domain file's layout and fields; signatures are checked by the caller (ops/domain). */
export function parseDomain(
  where: string,
  file: Buffer,
  sha256: (b: Uint8Array) => string,
): ParsedDomain {
  const opened = openEnvelope(where, file, RULES);
  const r = new FieldReader('E_DOMAIN', where, HINT);
  const body = readDomainBody(r, opened.json, 'body');
  if (!isCanonical(opened, body))
    throw r.fail('body', "is not in custos's form (it was edited by hand)");
  const [first, ...rest] = opened.trailers;
  const coreSignature = first?.tag === CORE_SIGNATURE_TAG ? canonicalBase64(first.value, 64) : null;
  if (!coreSignature)
    throw new CustosError(
      'E_DOMAIN',
      `${where} has no signature line after its body: the file is truncated or was edited`,
      HINT,
    );
  const digest = sha256(opened.authenticated);
  const enrolments: Enrolment[] = [];
  let superseded: Supersession | undefined;
  rest.forEach((t, i) => {
    const path = `line ${i + 2} after the body`;
    const json = parseBoundedJson(t.value, 4);
    if ('problem' in json) throw r.fail(path, json.problem);
    if (t.tag === ENROLMENT_TAG && !superseded) enrolments.push(readEnrolment(r, json.value, path));
    else if (t.tag === SUPERSEDED_TAG && !superseded)
      superseded = readSupersession(r, json.value, path);
    else
      throw r.fail(
        path,
        `is not an enrolment${superseded ? ' (nothing may follow the superseded line)' : ''}`,
      );
  });
  return {
    body,
    core: opened.authenticated,
    digest,
    coreSignature,
    enrolments,
    ...(superseded ? { superseded } : {}),
  };
}

/** Reads a domain core; also used for the copy of it a domain bundle carries. */
export function readDomainBody(r: FieldReader, v: unknown, path: string): DomainBody {
  const o = r.object(v, path);
  const seal = r.object(o.seal, 'seal');
  const authority = r.object(o.authority, 'authority');
  const body: DomainBody = {
    domainId: r.string(o, 'domainId', path, BUNDLE_ID),
    generation: r.integer(o, 'generation', path, 1, 1_000_000),
    created: r.string(o, 'created', path),
    tool: r.string(o, 'tool', path),
    policy: readPolicyRecord(r, o.policy, 'policy'),
    seal: {
      type: r.literal(seal, 'type', 'seal', SEAL_TYPES),
      recipient: r.string(seal, 'recipient', 'seal', SEAL_RECIPIENT),
      identityLength: r.integer(seal, 'identityLength', 'seal', 16, 512),
    },
    authority: {
      algorithm: r.literal(authority, 'algorithm', 'authority', ['Ed25519'] as const),
      publicKey: r.string(authority, 'publicKey', 'authority', /^[A-Za-z0-9+/]{43}=$/),
    },
    escrow: readEscrow(r, o.escrow, 'escrow'),
    dealer: readDealer(r, o.dealer, 'dealer'),
  };
  if (o.supersedes !== undefined) {
    const s = r.object(o.supersedes, 'supersedes');
    body.supersedes = {
      generation: r.integer(s, 'generation', 'supersedes', 1, 1_000_000),
      digest: r.string(s, 'digest', 'supersedes', SHA256_HEX),
    };
    if (body.supersedes.generation !== body.generation - 1)
      throw r.fail('supersedes.generation', 'must be the generation before this one');
  } else if (body.generation !== 1) {
    throw r.fail(
      'supersedes',
      `is missing: generation ${body.generation} must name the one it replaced`,
    );
  }
  return body;
}

export function readEnrolment(r: FieldReader, v: unknown, path: string): Enrolment {
  const o = r.object(v, path);
  return {
    domain: r.string(o, 'domain', path, SHA256_HEX),
    source: readTokenIdentity(r, o.source, `${path}.source`),
    keyId: r.string(o, 'keyId', path, /^(?:[0-9a-f]{2}){1,64}$/),
    publicKey: r.string(o, 'publicKey', path, /^[A-Za-z0-9+/]{40,200}={0,2}$/),
    enrolled: r.string(o, 'enrolled', path),
    endorser: r.string(o, 'endorser', path, /^(?:authority|[0-9a-f]{64})$/),
    signature: r.string(o, 'signature', path, /^[A-Za-z0-9+/]{86}==$/),
  };
}

function readSupersession(r: FieldReader, v: unknown, path: string): Supersession {
  const o = r.object(v, path);
  const by = r.object(o.by, `${path}.by`);
  return {
    domain: r.string(o, 'domain', path, SHA256_HEX),
    by: {
      generation: r.integer(by, 'generation', `${path}.by`, 2, 1_000_000),
      digest: r.string(by, 'digest', `${path}.by`, SHA256_HEX),
      file: r.string(by, 'file', `${path}.by`),
    },
    time: r.string(o, 'time', path),
    signature: r.string(o, 'signature', path, /^[A-Za-z0-9+/]{86}==$/),
  };
}

export type VerifyEnrolmentSignature = (
  e: Enrolment,
  endorserKey: { kind: 'authority' } | { kind: 'ecdsa'; spki: string },
) => boolean;

/**
 * The chain of enrolments from the one holding `publicKey` up to the authority, or why there is
 * none. Each link must belong to this domain core and verify under the next one up.
 */
export function enrolmentChain(
  digest: string,
  enrolments: readonly Enrolment[],
  publicKey: string,
  verify: VerifyEnrolmentSignature,
  fingerprint: (spki: string) => string,
): Enrolment[] | string {
  const chain: Enrolment[] = [];
  let key = publicKey;
  for (let depth = 0; depth < 16; depth++) {
    const e = enrolments.find((x) => x.publicKey === key && x.domain === digest);
    if (!e)
      return depth === 0
        ? 'its signing key is not enrolled in this domain'
        : 'an endorsing key is not enrolled in this domain';
    if (e.endorser === 'authority') {
      if (!verify(e, { kind: 'authority' }))
        return `the enrolment of ${e.source.label} does not verify under the domain's authority key`;
      return [...chain, e];
    }
    const endorser = enrolments.find(
      (x) => x.domain === digest && fingerprint(x.publicKey) === e.endorser,
    );
    if (!endorser)
      return `the enrolment of ${e.source.label} names an endorser the domain does not list`;
    if (!verify(e, { kind: 'ecdsa', spki: endorser.publicKey }))
      return `the enrolment of ${e.source.label} does not verify under its endorser's key`;
    chain.push(e);
    key = endorser.publicKey;
  }
  return 'the chain of endorsements is longer than 16';
}
