/**
 * The bundle file (SPEC.md): a header line, a JSON body, and trailer lines ending in a MAC. The
 * MAC covers the exact bytes before the trailers, keyed from the KEK, so a bundle is checked
 * before anything is written to an HSM.
 *
 * `custos-bundle/1` carries its own custodians: its shares bind the SHA-256 of its bytes.
 * `custos-bundle/2` belongs to an escrow domain: it carries a copy of the domain's core (whose
 * digest the domain's shares bind), its KEK sealed to the domain with age, and a signature by
 * the source HSM's enrolled key (or, once re-sealed by a rotation, by the domain's authority).
 */
import { base32nopad } from '@scure/base';
import { CustosError } from './errors.js';
import { readKeyName } from './key-name.js';
import { BASE64, FieldReader, HEX, readCheckValue, type Json } from './fields.js';
import {
  canonicalBase64,
  envelopeBytes,
  openEnvelope,
  withTrailers,
  type EnvelopeRules,
  type Trailer,
} from './envelope.js';
import {
  USAGE_FLAGS,
  type CertificateRecord,
  type KeyRecord,
  type PublicKeyRecord,
  type SkippedKey,
  type Usage,
} from './keys.js';
import {
  BUNDLE_ID,
  readDealer,
  readEscrow,
  readPolicyRecord,
  readTokenIdentity,
  type Dealer,
  type Escrow,
  type PolicyRecord,
  type TokenIdentity,
} from './escrow-fields.js';
import {
  readDomainBody,
  readEnrolment,
  SEAL_RECIPIENT,
  type DomainBody,
  type Enrolment,
} from './domain.js';

export {
  BUNDLE_ID,
  type EscrowCustodian,
  type PolicyRecord,
  type TokenIdentity,
} from './escrow-fields.js';

export const BUNDLE_FORMAT = 'custos-bundle/1';
export const DOMAIN_BUNDLE_FORMAT = 'custos-bundle/2';
const MAC_TAG = 'hmac-sha256';
export const BUNDLE_MAC_PURPOSE = 'custos-bundle/1 mac';
/** Trailer tags of a domain bundle's signature, by who signed. */
export const SIGNATURE_TAGS = {
  source: 'source-ecdsa-p256',
  authority: 'authority-ed25519',
} as const;

/**
 * Set when the split secret is not a KEK but the seed of a token's user PIN (`custos escrow-pin`).
 */
export interface PinEscrow {
  kind: 'token-pin';
  tokenLabel: string;
  tokenSerial: string;
  /** The PIN is the first pinLength characters of the base32 encoding of the 32-byte secret. */
  pinLength: number;
}

/**
 * How the keys were wrapped: always RFC 5649 (AES key wrap with padding), by the source token's
 * CKM_AES_KEY_WRAP_KWP, or by a CKM_AES_KEY_WRAP_PAD that custos showed to be RFC 5649 (bundles
 * before custos recorded KWP say AES-KEY-WRAP-PAD). A reader needs only the standard.
 */
export const WRAP_MECHANISMS = ['AES-KEY-WRAP-PAD', 'AES-KEY-WRAP-KWP'] as const;
export interface BundleWrap {
  mechanism: (typeof WRAP_MECHANISMS)[number];
  standard: 'RFC 5649';
}

/** What every bundle holds, whoever its custodians are. */
export interface BundleContents {
  bundleId: string;
  created: string;
  tool: string;
  source: TokenIdentity;
  kek: { algorithm: 'AES-256'; kcv: string };
  wrap: BundleWrap;
  keys: KeyRecord[];
  skipped: SkippedKey[];
  /**
   * The policy file the backup was made under (its name and SHA-256): the custodial rules a
   * handover is judged by.
   */
  policy?: PolicyRecord;
}

/** A bundle as commands see it: for a domain bundle, escrow and dealer are the domain's. */
export interface BundleBody extends BundleContents {
  escrow: Escrow;
  dealer: Dealer;
  escrowOf?: PinEscrow;
}

/** What ties a domain bundle to its domain. */
export interface DomainSeal {
  /** A copy of the domain's core, as the domain file holds it. */
  core: DomainBody;
  /**
   * The source HSM's enrolment and those endorsing it, up to the authority; empty when the
   * authority signed the bundle.
   */
  chain: Enrolment[];
  /** The bundle's KEK, age-encrypted (armored) to the domain's seal recipient. */
  sealedKek: { recipient: string; age: string };
  /** Set when a rotation re-sealed the KEK to a later generation. */
  resealed?: { from: number; time: string };
}

export interface BundleSignature {
  by: keyof typeof SIGNATURE_TAGS;
  value: Buffer;
}

export interface ParsedBundle {
  body: BundleBody;
  /** The exact bytes the MAC (and, for a domain bundle, the signature) covers. */
  authenticated: Buffer;
  mac: Buffer;
  domain?: DomainSeal;
  signature?: BundleSignature;
}

/** 26 base32 characters carry 130 bits; 52 carry all 256 bits of the secret. */
export const MIN_ESCROWED_PIN = 26;
export const MAX_ESCROWED_PIN = 52;
/**
 * The escrowed PIN for a 32-byte secret: its RFC 4648 base32 encoding, cut to `length` characters.
 */
export function pinFromSecret(secret: Uint8Array, length: number): string {
  return base32nopad.encode(secret).slice(0, length);
}

/** The bytes a bundle's MAC covers: header line and body, each ending in a newline. */
export function bundleAuthenticatedBytes(body: BundleBody): Buffer {
  return envelopeBytes(BUNDLE_FORMAT, body);
}

export function serialiseBundle(
  authenticated: Buffer,
  mac: Buffer,
  signature?: BundleSignature,
): Buffer {
  const trailers: Trailer[] = signature
    ? [{ tag: SIGNATURE_TAGS[signature.by], value: signature.value.toString('base64') }]
    : [];
  return withTrailers(authenticated, [
    ...trailers,
    { tag: MAC_TAG, value: mac.toString('base64') },
  ]);
}

/** The bytes a domain bundle's MAC and signature cover, fields in their fixed order. */
export function domainBundleAuthenticatedBytes(contents: BundleContents, seal: DomainSeal): Buffer {
  const { bundleId, created, tool, source, kek, wrap, keys, skipped, policy } = contents;
  return envelopeBytes(DOMAIN_BUNDLE_FORMAT, {
    bundleId,
    created,
    tool,
    source,
    kek,
    wrap,
    domain: { core: seal.core, chain: seal.chain },
    sealedKek: seal.sealedKek,
    ...(seal.resealed ? { resealed: seal.resealed } : {}),
    keys,
    skipped,
    ...(policy ? { policy } : {}),
  });
}

const HINT =
  'the bundle is damaged or not a custos bundle; use an intact copy (docs/bundle-format.md)';

const RULES: EnvelopeRules = {
  formats: [BUNDLE_FORMAT, DOMAIN_BUNDLE_FORMAT],
  what: 'bundle',
  formatCode: 'E_BUNDLE_FORMAT',
  damagedCode: 'E_BUNDLE_TAMPERED',
  hint: HINT,
  requiredTrailer: { tag: MAC_TAG, name: 'MAC' },
};

export function parseBundle(where: string, file: Buffer): ParsedBundle {
  const opened = openEnvelope(where, file, RULES);
  const r = new FieldReader('E_BUNDLE_FORMAT', where, HINT);
  const trailers = [...opened.trailers];
  const macTrailer = trailers.pop();
  // Only the canonical spelling is accepted, so no byte of the MAC line can change unnoticed.
  const mac = macTrailer ? canonicalBase64(macTrailer.value, 32) : null;
  if (!mac) throw new CustosError('E_BUNDLE_FORMAT', `${where} has a malformed MAC line`, HINT);
  if (opened.format === BUNDLE_FORMAT) {
    if (trailers.length > 0)
      throw new CustosError('E_BUNDLE_FORMAT', `${where} has a malformed MAC line`, HINT);
    return { body: readBody(r, opened.json), authenticated: opened.authenticated, mac };
  }
  const [signatureTrailer, ...extra] = trailers;
  const by = (Object.keys(SIGNATURE_TAGS) as BundleSignature['by'][]).find(
    (k) => SIGNATURE_TAGS[k] === signatureTrailer?.tag,
  );
  const value = by && signatureTrailer ? canonicalBase64(signatureTrailer.value, 64) : null;
  if (!by || !value || extra.length > 0) {
    throw new CustosError(
      'E_BUNDLE_SIGNER',
      `${where} is a domain bundle without a valid signature line: it was not made by an enrolled HSM, or was truncated`,
      'restore only bundles written by custos backup --domain on an enrolled HSM; nothing was written',
    );
  }
  const { body, domain } = readDomainBundle(r, opened.json);
  return { body, authenticated: opened.authenticated, mac, domain, signature: { by, value } };
}

function readUsage(r: FieldReader, v: unknown, path: string): Usage {
  const o = r.object(v, path);
  const usage: Usage = {};
  for (const [k, val] of Object.entries(o)) {
    if (!(USAGE_FLAGS as readonly string[]).includes(k) || typeof val !== 'boolean')
      throw r.fail(`${path}.${k}`, 'is not a usage flag');
    usage[k as keyof Usage] = val;
  }
  return usage;
}

/** Optional hex fields, in the order given (absent ones undefined, so JSON leaves them out). */
function optionalHex<K extends string>(
  r: FieldReader,
  o: Json,
  path: string,
  keys: readonly K[],
): Partial<Record<K, string>> {
  return Object.fromEntries(keys.map((k) => [k, r.optionalString(o, k, path, HEX)])) as Partial<
    Record<K, string>
  >;
}

function readPublicKey(r: FieldReader, v: unknown, path: string): PublicKeyRecord {
  const o = r.object(v, path);
  return {
    label: r.string(o, 'label', path),
    keyType: r.string(o, 'keyType', path),
    usage: readUsage(r, o.usage, `${path}.usage`),
    ...optionalHex(r, o, path, ['modulus', 'publicExponent', 'ecParams', 'ecPoint']),
  };
}

function readCertificate(r: FieldReader, v: unknown, path: string): CertificateRecord {
  const o = r.object(v, path);
  return {
    label: r.string(o, 'label', path),
    value: r.string(o, 'value', path, BASE64),
    ...optionalHex(r, o, path, ['subject', 'issuer', 'serialNumber']),
  };
}

function readKey(r: FieldReader, v: unknown, path: string): KeyRecord {
  const o = r.object(v, path);
  return {
    ...readKeyName(r, o, path),
    bits: r.integer(o, 'bits', path, 0, 1 << 20),
    usage: readUsage(r, o.usage, `${path}.usage`),
    private: r.boolean(o, 'private', path),
    sensitive: r.boolean(o, 'sensitive', path),
    extractable: r.boolean(o, 'extractable', path),
    ...optionalHex(r, o, path, ['ecParams', 'modulus', 'publicExponent']),
    checkValue: readCheckValue(r, o.checkValue, `${path}.checkValue`),
    wrapped: r.string(o, 'wrapped', path, BASE64),
    publicKey:
      o.publicKey === undefined ? undefined : readPublicKey(r, o.publicKey, `${path}.publicKey`),
    certificates: r
      .array(o.certificates, `${path}.certificates`)
      .map((c, i) => readCertificate(r, c, `${path}.certificates[${i}]`)),
  };
}

function readSkipped(r: FieldReader, v: unknown, path: string): SkippedKey {
  const o = r.object(v, path);
  return {
    class: r.literal(o, 'class', path, ['secret', 'private', 'public'] as const),
    keyType: r.string(o, 'keyType', path),
    label: r.string(o, 'label', path),
    id: r.string(o, 'id', path, HEX),
    reason: r.string(o, 'reason', path),
  };
}

function readContents(r: FieldReader, o: Json): BundleContents {
  const kek = r.object(o.kek, 'kek');
  const wrap = r.object(o.wrap, 'wrap');
  return {
    bundleId: r.string(o, 'bundleId', 'body', BUNDLE_ID),
    created: r.string(o, 'created', 'body'),
    tool: r.string(o, 'tool', 'body'),
    source: readTokenIdentity(r, o.source, 'source'),
    kek: {
      algorithm: r.literal(kek, 'algorithm', 'kek', ['AES-256'] as const),
      kcv: r.string(kek, 'kcv', 'kek', /^[0-9a-f]{6}$/),
    },
    wrap: {
      mechanism: r.literal(wrap, 'mechanism', 'wrap', WRAP_MECHANISMS),
      standard: r.literal(wrap, 'standard', 'wrap', ['RFC 5649'] as const),
    },
    keys: r.array(o.keys, 'keys').map((k, i) => readKey(r, k, `keys[${i}]`)),
    skipped: r.array(o.skipped, 'skipped').map((k, i) => readSkipped(r, k, `skipped[${i}]`)),
    ...(o.policy !== undefined ? { policy: readPolicyRecord(r, o.policy, 'policy') } : {}),
  };
}

function readDomainBundle(r: FieldReader, v: unknown): { body: BundleBody; domain: DomainSeal } {
  const o = r.object(v, 'body');
  const contents = readContents(r, o);
  const d = r.object(o.domain, 'domain');
  const core = readDomainBody(r, d.core, 'domain.core');
  const sealed = r.object(o.sealedKek, 'sealedKek');
  const domain: DomainSeal = {
    core,
    chain: r
      .array(d.chain, 'domain.chain')
      .map((e, i) => readEnrolment(r, e, `domain.chain[${i}]`)),
    sealedKek: {
      recipient: r.string(sealed, 'recipient', 'sealedKek', SEAL_RECIPIENT),
      age: r.string(
        sealed,
        'age',
        'sealedKek',
        /^-----BEGIN AGE ENCRYPTED FILE-----\n[A-Za-z0-9+/=\n]+-----END AGE ENCRYPTED FILE-----\n$/,
      ),
    },
  };
  if (o.resealed !== undefined) {
    const rs = r.object(o.resealed, 'resealed');
    domain.resealed = {
      from: r.integer(rs, 'from', 'resealed', 1, 1_000_000),
      time: r.string(rs, 'time', 'resealed'),
    };
  }
  if (domain.sealedKek.recipient !== core.seal.recipient)
    throw r.fail('sealedKek.recipient', 'is not the recipient of the domain the bundle names');
  if (domain.chain.length > 16) throw r.fail('domain.chain', 'is longer than 16 enrolments');
  return { body: { ...contents, escrow: core.escrow, dealer: core.dealer }, domain };
}

function readBody(r: FieldReader, v: unknown): BundleBody {
  const o = r.object(v, 'body');
  const { keys, skipped, policy, ...head } = readContents(r, o);
  // The order custos writes the fields in, so a parsed body serialises back to the same bytes.
  const body: BundleBody = {
    ...head,
    escrow: readEscrow(r, o.escrow, 'escrow'),
    dealer: readDealer(r, o.dealer, 'dealer'),
    keys,
    skipped,
  };
  if (o.escrowOf !== undefined) {
    const e = r.object(o.escrowOf, 'escrowOf');
    body.escrowOf = {
      kind: r.literal(e, 'kind', 'escrowOf', ['token-pin'] as const),
      tokenLabel: r.string(e, 'tokenLabel', 'escrowOf'),
      tokenSerial: r.string(e, 'tokenSerial', 'escrowOf'),
      pinLength: r.integer(e, 'pinLength', 'escrowOf', MIN_ESCROWED_PIN, MAX_ESCROWED_PIN),
    };
    if (body.keys.length > 0) throw r.fail('keys', 'must be empty in a PIN escrow');
  }
  if (policy) body.policy = policy;
  return body;
}
