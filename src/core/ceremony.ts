/**
 * The ceremony file, `custos-ceremony/1` (docs/ceremony-format.md): what a quorum is being asked
 * to authorise — purpose, subject, custodians, expiry — and the ceremony's public keys (an age
 * recipient submissions are encrypted to, an Ed25519 key that signs the file and the transcript).
 * It is sent to every custodian, so it holds nothing secret.
 */
import { CustosError } from './errors.js';
import { signedFormat, type SignedFile } from './signed-file.js';
import { readKeyName } from './key-name.js';
import { durationMs } from './duration.js';
import { FieldReader } from './fields.js';
import { isCanonical } from './envelope.js';
import {
  BUNDLE_ID,
  readEscrowCustodians,
  type EscrowCustodian,
  type TokenIdentity,
} from './escrow-fields.js';
import { AGE_RECIPIENT } from './policy.js';
import type { VerifySignature } from './quorum.js';

export const CEREMONY_FORMAT = 'custos-ceremony/1';

export const PURPOSES = ['restore', 'drill', 'handover', 'rotate'] as const;
export type Purpose = (typeof PURPOSES)[number];

export const NONCE = /^[0-9a-f]{32}$/;
const SHA256 = /^[0-9a-f]{64}$/;

export interface KeySummary {
  class: 'secret' | 'private';
  keyType: string;
  label: string;
  id: string;
}

/**
 * The escrow domain whose shares open a domain bundle: its id, and the generation's core digest.
 */
export interface DomainRef {
  domainId: string;
  generation: number;
  digest: string;
}

/** One bundle a ceremony concerns. */
export interface BundleRef {
  file: string;
  bundleId: string;
  bundleDigest: string;
  source: TokenIdentity;
  keys: KeySummary[];
}

/**
 * A bundle of keys (with `more`, several bundles of one escrow domain, restored by one quorum),
 * the escrow of a token's PIN (also a bundle, with no keys), or an escrow domain itself (for a
 * drill or a rotation; bundleId and bundleDigest then hold the domain id and its core's digest).
 */
export type Subject =
  | ({ kind: 'bundle' } & BundleRef & { domain?: DomainRef; more?: BundleRef[] })
  | {
      kind: 'pin-escrow';
      file: string;
      bundleId: string;
      bundleDigest: string;
      token: { label: string; serial: string };
    }
  | { kind: 'domain'; file: string; bundleId: string; bundleDigest: string; generation: number };

/** Every bundle a bundle subject names, the first one first. */
export function bundlesOf(subject: Subject): BundleRef[] {
  if (subject.kind !== 'bundle') return [];
  const { file, bundleId, bundleDigest, source, keys } = subject;
  return [{ file, bundleId, bundleDigest, source, keys }, ...(subject.more ?? [])];
}

export interface CeremonyBody {
  nonce: string;
  purpose: Purpose;
  created: string;
  expires: string;
  openedBy: string;
  subject: Subject;
  /** SHA-256 of the handover request this ceremony may release keys for. */
  request?: string;
  /** For a handover: what the request releases, so a custodian sees it before giving a share. */
  handover?: HandoverSummary;
  threshold: number;
  total: number;
  custodians: EscrowCustodian[];
  /** The subject's dealer key, which signed every custodian share. */
  dealer: string;
  /** age recipient of the ceremony host; submissions are encrypted to it. */
  recipient: string;
  /** Raw Ed25519 public key (base64) that signs this file and the ceremony's audit entries. */
  signingKey: string;
}

export interface HandoverSummary {
  matter: string;
  authority: string;
  basis: string;
  keys: string[];
  /** SHA-256 of the recipient's public key. */
  recipient: string;
  /** Custodians the policy requires for a handover (at least the threshold). */
  quorum: number;
}

/** Shares a ceremony needs: the threshold, or a handover's larger quorum. */
export function requiredQuorum(body: CeremonyBody): number {
  return Math.max(body.threshold, body.handover?.quorum ?? 0);
}

export type ParsedCeremony = SignedFile<CeremonyBody>;

const CEREMONY = signedFormat<CeremonyBody>(
  CEREMONY_FORMAT,
  'ceremony file',
  'ceremony body',
  'E_CEREMONY_FORMAT',
  'the ceremony file is damaged or was edited; ask the ceremony lead for the file they sent',
);

export const ceremonySignedBytes = CEREMONY.signedBytes;

/** The ceremony file: the signed bytes and their signature line. */
export const serialiseCeremony = CEREMONY.serialise;

/** Parses and authenticates a ceremony file: any changed byte fails the signature. */
export function parseCeremony(
  where: string,
  file: Buffer,
  verify: VerifySignature,
): ParsedCeremony {
  const { opened, signature, reader, refuse } = CEREMONY.open(where, file);
  if (!signature) throw refuse(`${where} has a malformed signature line`);
  const body = readBody(reader, opened.json);
  const signed = opened.authenticated;
  // Re-serialising must give the signed bytes back, so nothing outside the fields read can vary.
  if (
    !isCanonical(opened, body) ||
    !verify(Buffer.from(body.signingKey, 'base64'), signed, signature)
  ) {
    throw refuse(`${where} fails its signature: the file was edited after the ceremony was opened`);
  }
  return { body, signed, signature };
}

function readBody(r: FieldReader, v: unknown): CeremonyBody {
  const o = r.object(v, 'body');
  const subject = readSubject(r, o.subject);
  const total = r.integer(o, 'total', 'body', 2, 255);
  // The bundle's rule: one share index per custodian, one custodian per id.
  const custodians = readEscrowCustodians(r, o.custodians, 'custodians', total);
  const body: CeremonyBody = {
    nonce: r.string(o, 'nonce', 'body', NONCE),
    purpose: r.literal(o, 'purpose', 'body', PURPOSES),
    created: r.timestamp(o, 'created', 'body'),
    expires: r.timestamp(o, 'expires', 'body'),
    openedBy: r.string(o, 'openedBy', 'body'),
    subject,
    request: r.optionalString(o, 'request', 'body', SHA256),
    threshold: r.integer(o, 'threshold', 'body', 2, total),
    total,
    custodians,
    dealer: r.base64Of(o, 'dealer', 'body', 32, 'a raw Ed25519 public key (32 bytes)'),
    recipient: r.string(o, 'recipient', 'body', AGE_RECIPIENT),
    signingKey: r.base64Of(o, 'signingKey', 'body', 32, 'a raw Ed25519 public key (32 bytes)'),
  };
  if (body.request === undefined) delete body.request;
  if (o.handover !== undefined) {
    const h = r.object(o.handover, 'handover');
    body.handover = {
      matter: r.string(h, 'matter', 'handover'),
      authority: r.string(h, 'authority', 'handover'),
      basis: r.string(h, 'basis', 'handover'),
      keys: r.array(h.keys, 'handover.keys').map((k, i) => {
        if (typeof k !== 'string') throw r.fail(`handover.keys[${i}]`, 'must be a string');
        return k;
      }),
      // A handover needs at least the threshold's shares, and there are only `total` custodians.
      recipient: r.string(h, 'recipient', 'handover', SHA256),
      quorum: r.integer(h, 'quorum', 'handover', body.threshold, total),
    };
  }
  // A handover ceremony is bound to one request and says what it releases; no other ceremony is.
  for (const key of ['request', 'handover'] as const) {
    if (body.purpose === 'handover' && body[key] === undefined)
      throw r.fail(
        `body.${key}`,
        'is missing: a handover ceremony names its request and what it releases',
      );
    if (body.purpose !== 'handover' && body[key] !== undefined)
      throw r.fail(`body.${key}`, `belongs only to a handover ceremony, not a ${body.purpose}`);
  }
  return body;
}

function readBundleRef(r: FieldReader, v: unknown, path: string): BundleRef {
  const s = r.object(v, path);
  const src = r.object(s.source, `${path}.source`);
  return {
    file: r.string(s, 'file', path),
    bundleId: r.string(s, 'bundleId', path, BUNDLE_ID),
    bundleDigest: r.string(s, 'bundleDigest', path, SHA256),
    source: {
      label: r.string(src, 'label', `${path}.source`),
      serial: r.string(src, 'serial', `${path}.source`),
      manufacturer: r.string(src, 'manufacturer', `${path}.source`),
      model: r.string(src, 'model', `${path}.source`),
    },
    keys: r.array(s.keys, `${path}.keys`).map((k, i) => {
      const p = `${path}.keys[${i}]`;
      return readKeyName(r, r.object(k, p), p);
    }),
  };
}

function readSubject(r: FieldReader, v: unknown): Subject {
  const s = r.object(v, 'subject');
  const kind = r.literal(s, 'kind', 'subject', ['bundle', 'pin-escrow', 'domain'] as const);
  const common = {
    file: r.string(s, 'file', 'subject'),
    bundleId: r.string(s, 'bundleId', 'subject', BUNDLE_ID),
    bundleDigest: r.string(s, 'bundleDigest', 'subject', SHA256),
  };
  if (kind === 'pin-escrow') {
    const t = r.object(s.token, 'subject.token');
    return {
      kind,
      ...common,
      token: {
        label: r.string(t, 'label', 'subject.token'),
        serial: r.string(t, 'serial', 'subject.token'),
      },
    };
  }
  if (kind === 'domain')
    return { kind, ...common, generation: r.integer(s, 'generation', 'subject', 1, 1_000_000) };
  const subject: Subject = { kind, ...readBundleRef(r, s, 'subject') };
  if (s.domain !== undefined) {
    const d = r.object(s.domain, 'subject.domain');
    subject.domain = {
      domainId: r.string(d, 'domainId', 'subject.domain', BUNDLE_ID),
      generation: r.integer(d, 'generation', 'subject.domain', 1, 1_000_000),
      digest: r.string(d, 'digest', 'subject.domain', SHA256),
    };
  }
  if (s.more !== undefined) {
    if (!subject.domain)
      throw r.fail('subject.more', 'is allowed only for bundles of an escrow domain');
    subject.more = r
      .array(s.more, 'subject.more')
      .map((b, i) => readBundleRef(r, b, `subject.more[${i}]`));
    if (subject.more.length === 0 || subject.more.length > 63)
      throw r.fail('subject.more', 'must list 1 to 63 further bundles');
  }
  return subject;
}

/**
 * "72h", "30m", "7d" → milliseconds; at most 30 days, so a forgotten ceremony does not stay open.
 */
export function parseDuration(text: string): number {
  const ms = durationMs(text, ['m', 'h', 'd']);
  if (ms === null || ms > 30 * 86_400_000) {
    throw new CustosError(
      'E_USAGE',
      `--expires ${text} is not a duration of up to 30 days`,
      'write it as minutes, hours or days: 90m, 72h, 7d',
    );
  }
  return ms;
}

export function expired(body: CeremonyBody, now: Date): boolean {
  return now.getTime() >= Date.parse(body.expires);
}
