/**
 * The bundle file, `custos-bundle/1` (docs/bundle-format.md): a header line, a JSON body, and a
 * MAC line. The MAC covers the exact bytes before it, keyed from the KEK, so a bundle is checked
 * before anything is written to an HSM; shares carry the SHA-256 of the same bytes.
 */
import { CustosError } from './errors.js';
import { BASE64, FieldReader, HEX, readCheckValue } from './fields.js';
import { AGE_RECIPIENT, CUSTODIAN_ID, type Custodian } from './policy.js';
import { USAGE_FLAGS, type CertificateRecord, type KeyRecord, type PublicKeyRecord, type SkippedKey, type Usage } from './keys.js';

export const BUNDLE_FORMAT = 'custos-bundle/1';
const MAC_PREFIX = '--- hmac-sha256 ';
export const BUNDLE_MAC_PURPOSE = 'custos-bundle/1 mac';

export interface TokenIdentity {
  label: string;
  serial: string;
  manufacturer: string;
  model: string;
}

export interface EscrowCustodian extends Custodian {
  /** The Shamir x coordinate of this custodian's share. */
  index: number;
}

/** Set when the split secret is not a KEK but the seed of a token's user PIN (`custos escrow-pin`). */
export interface PinEscrow {
  kind: 'token-pin';
  tokenLabel: string;
  tokenSerial: string;
  /** The PIN is the first pinLength characters of the base32 encoding of the 32-byte secret. */
  pinLength: number;
}

export interface BundleBody {
  bundleId: string;
  created: string;
  tool: string;
  source: TokenIdentity;
  kek: { algorithm: 'AES-256'; kcv: string };
  wrap: { mechanism: 'AES-KEY-WRAP-PAD'; standard: 'RFC 5649' };
  escrow: { scheme: 'shamir-gf256'; threshold: number; total: number; custodians: EscrowCustodian[] };
  dealer: { algorithm: 'Ed25519'; publicKey: string };
  keys: KeyRecord[];
  skipped: SkippedKey[];
  escrowOf?: PinEscrow;
  /** The policy file the backup was made under (its name and SHA-256): the custodial rules a handover is judged by. */
  policy?: PolicyRecord;
}

export interface PolicyRecord {
  name: string;
  sha256: string;
}

export interface ParsedBundle {
  body: BundleBody;
  /** The exact bytes the MAC and the share digests cover. */
  authenticated: Buffer;
  mac: Buffer;
}

export const BUNDLE_ID = /^[0-9a-f]{32}$/;

/** 26 base32 characters carry 130 bits; 52 carry all 256 bits of the secret. */
export const MIN_ESCROWED_PIN = 26;
export const MAX_ESCROWED_PIN = 52;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The escrowed PIN for a 32-byte secret: its RFC 4648 base32 encoding, cut to `length` characters. */
export function pinFromSecret(secret: Uint8Array, length: number): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of secret) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out.slice(0, length);
}

/** The bytes a bundle's MAC covers: header line and body, each ending in a newline. */
export function bundleAuthenticatedBytes(body: BundleBody): Buffer {
  return Buffer.from(`${BUNDLE_FORMAT}\n${JSON.stringify(body, null, 1)}\n`, 'utf8');
}

export function serialiseBundle(authenticated: Buffer, mac: Buffer): Buffer {
  return Buffer.concat([authenticated, Buffer.from(`${MAC_PREFIX}${mac.toString('base64')}\n`, 'utf8')]);
}

const HINT = 'the bundle is damaged or not a custos bundle; use an intact copy (docs/bundle-format.md)';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseBundle(where: string, file: Buffer): ParsedBundle {
  let text: string;
  try {
    text = STRICT_UTF8.decode(file);
  } catch {
    throw new CustosError('E_BUNDLE_TAMPERED', `${where} is not valid UTF-8 text: the file was changed or damaged`, HINT);
  }
  if (!text.startsWith(`${BUNDLE_FORMAT}\n`)) {
    const first = text.slice(0, 40).split('\n')[0] ?? '';
    if (/^custos-bundle\/\d+$/.test(first)) {
      throw new CustosError('E_BUNDLE_FORMAT', `${where} is a ${first} bundle; this custos reads ${BUNDLE_FORMAT}`, 'use the custos version that wrote it');
    }
    throw new CustosError('E_BUNDLE_FORMAT', `${where} is not a custos bundle (no "${BUNDLE_FORMAT}" header)`, HINT);
  }
  const macAt = text.lastIndexOf(`\n${MAC_PREFIX}`);
  if (macAt < 0 || !text.endsWith('\n')) {
    throw new CustosError('E_BUNDLE_FORMAT', `${where} has no MAC line: the file is truncated`, HINT);
  }
  const macB64 = text.slice(macAt + 1 + MAC_PREFIX.length, -1);
  const mac = Buffer.from(macB64, 'base64');
  // Only the canonical spelling is accepted, so no byte of the MAC line can change unnoticed.
  if (!BASE64.test(macB64) || mac.length !== 32 || mac.toString('base64') !== macB64) {
    throw new CustosError('E_BUNDLE_FORMAT', `${where} has a malformed MAC line`, HINT);
  }
  const authenticated = file.subarray(0, Buffer.byteLength(text.slice(0, macAt + 1), 'utf8'));
  let json: unknown;
  try {
    json = JSON.parse(text.slice(BUNDLE_FORMAT.length + 1, macAt + 1));
  } catch {
    throw new CustosError('E_BUNDLE_TAMPERED', `${where}: the bundle body is not valid JSON: the file was changed or damaged`, HINT);
  }
  return { body: readBody(new FieldReader('E_BUNDLE_FORMAT', where, HINT), json), authenticated, mac };
}

function readUsage(r: FieldReader, v: unknown, path: string): Usage {
  const o = r.object(v, path);
  const usage: Usage = {};
  for (const [k, val] of Object.entries(o)) {
    if (!(USAGE_FLAGS as readonly string[]).includes(k) || typeof val !== 'boolean') throw r.fail(`${path}.${k}`, 'is not a usage flag');
    usage[k as keyof Usage] = val;
  }
  return usage;
}

function readPublicKey(r: FieldReader, v: unknown, path: string): PublicKeyRecord {
  const o = r.object(v, path);
  return {
    label: r.string(o, 'label', path),
    keyType: r.string(o, 'keyType', path),
    usage: readUsage(r, o.usage, `${path}.usage`),
    modulus: r.optionalString(o, 'modulus', path, HEX),
    publicExponent: r.optionalString(o, 'publicExponent', path, HEX),
    ecParams: r.optionalString(o, 'ecParams', path, HEX),
    ecPoint: r.optionalString(o, 'ecPoint', path, HEX),
  };
}

function readCertificate(r: FieldReader, v: unknown, path: string): CertificateRecord {
  const o = r.object(v, path);
  return {
    label: r.string(o, 'label', path),
    value: r.string(o, 'value', path, BASE64),
    subject: r.optionalString(o, 'subject', path, HEX),
    issuer: r.optionalString(o, 'issuer', path, HEX),
    serialNumber: r.optionalString(o, 'serialNumber', path, HEX),
  };
}

function readKey(r: FieldReader, v: unknown, path: string): KeyRecord {
  const o = r.object(v, path);
  return {
    class: r.literal(o, 'class', path, ['secret', 'private'] as const),
    keyType: r.string(o, 'keyType', path),
    label: r.string(o, 'label', path),
    id: r.string(o, 'id', path, HEX),
    bits: r.integer(o, 'bits', path, 0, 1 << 20),
    usage: readUsage(r, o.usage, `${path}.usage`),
    private: r.boolean(o, 'private', path),
    sensitive: r.boolean(o, 'sensitive', path),
    extractable: r.boolean(o, 'extractable', path),
    ecParams: r.optionalString(o, 'ecParams', path, HEX),
    modulus: r.optionalString(o, 'modulus', path, HEX),
    publicExponent: r.optionalString(o, 'publicExponent', path, HEX),
    checkValue: readCheckValue(r, o.checkValue, `${path}.checkValue`),
    wrapped: r.string(o, 'wrapped', path, BASE64),
    publicKey: o.publicKey === undefined ? undefined : readPublicKey(r, o.publicKey, `${path}.publicKey`),
    certificates: r.array(o.certificates, `${path}.certificates`).map((c, i) => readCertificate(r, c, `${path}.certificates[${i}]`)),
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

function readBody(r: FieldReader, v: unknown): BundleBody {
  const o = r.object(v, 'body');
  const source = r.object(o.source, 'source');
  const kek = r.object(o.kek, 'kek');
  const wrap = r.object(o.wrap, 'wrap');
  const escrow = r.object(o.escrow, 'escrow');
  const dealer = r.object(o.dealer, 'dealer');
  const total = r.integer(escrow, 'total', 'escrow', 2, 255);
  const custodians = r.array(escrow.custodians, 'escrow.custodians').map((c, i): EscrowCustodian => {
    const p = `escrow.custodians[${i}]`;
    const co = r.object(c, p);
    return {
      id: r.string(co, 'id', p, CUSTODIAN_ID),
      name: r.string(co, 'name', p),
      recipient: r.string(co, 'recipient', p, AGE_RECIPIENT),
      index: r.integer(co, 'index', p, 1, 255),
    };
  });
  if (custodians.length !== total) throw r.fail('escrow.custodians', `lists ${custodians.length} custodians but total is ${total}`);
  if (new Set(custodians.map((c) => c.id)).size !== total || new Set(custodians.map((c) => c.index)).size !== total) {
    throw r.fail('escrow.custodians', 'repeats a custodian id or share index');
  }
  const body: BundleBody = {
    bundleId: r.string(o, 'bundleId', 'body', BUNDLE_ID),
    created: r.string(o, 'created', 'body'),
    tool: r.string(o, 'tool', 'body'),
    source: {
      label: r.string(source, 'label', 'source'),
      serial: r.string(source, 'serial', 'source'),
      manufacturer: r.string(source, 'manufacturer', 'source'),
      model: r.string(source, 'model', 'source'),
    },
    kek: { algorithm: r.literal(kek, 'algorithm', 'kek', ['AES-256'] as const), kcv: r.string(kek, 'kcv', 'kek', /^[0-9a-f]{6}$/) },
    wrap: {
      mechanism: r.literal(wrap, 'mechanism', 'wrap', ['AES-KEY-WRAP-PAD'] as const),
      standard: r.literal(wrap, 'standard', 'wrap', ['RFC 5649'] as const),
    },
    escrow: {
      scheme: r.literal(escrow, 'scheme', 'escrow', ['shamir-gf256'] as const),
      threshold: r.integer(escrow, 'threshold', 'escrow', 2, total),
      total,
      custodians,
    },
    dealer: {
      algorithm: r.literal(dealer, 'algorithm', 'dealer', ['Ed25519'] as const),
      publicKey: r.string(dealer, 'publicKey', 'dealer', BASE64),
    },
    keys: r.array(o.keys, 'keys').map((k, i) => readKey(r, k, `keys[${i}]`)),
    skipped: r.array(o.skipped, 'skipped').map((k, i) => readSkipped(r, k, `skipped[${i}]`)),
  };
  if (o.policy !== undefined) {
    const pol = r.object(o.policy, 'policy');
    body.policy = { name: r.string(pol, 'name', 'policy'), sha256: r.string(pol, 'sha256', 'policy', /^[0-9a-f]{64}$/) };
  }
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
  return body;
}
