/**
 * Records shared by bundles, escrow domains and ceremonies: the source token, the custodians with
 * their share indexes, the dealer key and the policy a file was made under, and their readers.
 */
import { FieldReader } from './fields.js';
import { CUSTODIAN_RECIPIENT, CUSTODIAN_ID, type Custodian } from './policy.js';

export const BUNDLE_ID = /^[0-9a-f]{32}$/;
const ED25519_RAW_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

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

export interface Escrow {
  scheme: 'shamir-gf256';
  threshold: number;
  total: number;
  custodians: EscrowCustodian[];
}

export interface Dealer {
  algorithm: 'Ed25519';
  /** Raw public key, base64: the one-time key that signed every custodian share. */
  publicKey: string;
}

export interface PolicyRecord {
  name: string;
  sha256: string;
}

export function readTokenIdentity(r: FieldReader, v: unknown, path: string): TokenIdentity {
  const o = r.object(v, path);
  return {
    label: r.string(o, 'label', path),
    serial: r.string(o, 'serial', path),
    manufacturer: r.string(o, 'manufacturer', path),
    model: r.string(o, 'model', path),
  };
}

/**
 * The custodians of an escrow (a bundle's, a domain's, or a ceremony's copy of one) at `path`:
 * exactly `total` of them, no custodian id and no share index twice.
 */
export function readEscrowCustodians(
  r: FieldReader,
  v: unknown,
  path: string,
  total: number,
): EscrowCustodian[] {
  const custodians = r.array(v, path).map((c, i): EscrowCustodian => {
    const p = `${path}[${i}]`;
    const co = r.object(c, p);
    return {
      id: r.string(co, 'id', p, CUSTODIAN_ID),
      name: r.string(co, 'name', p),
      recipient: r.string(co, 'recipient', p, CUSTODIAN_RECIPIENT),
      index: r.integer(co, 'index', p, 1, 255),
    };
  });
  if (custodians.length !== total)
    throw r.fail(path, `lists ${custodians.length} custodians but total is ${total}`);
  if (
    new Set(custodians.map((c) => c.id)).size !== total ||
    new Set(custodians.map((c) => c.index)).size !== total
  ) {
    throw r.fail(path, 'repeats a custodian id or share index');
  }
  return custodians;
}

export function readEscrow(r: FieldReader, v: unknown, path: string): Escrow {
  const escrow = r.object(v, path);
  const total = r.integer(escrow, 'total', path, 2, 255);
  const custodians = readEscrowCustodians(r, escrow.custodians, `${path}.custodians`, total);
  return {
    scheme: r.literal(escrow, 'scheme', path, ['shamir-gf256'] as const),
    threshold: r.integer(escrow, 'threshold', path, 2, total),
    total,
    custodians,
  };
}

export function readDealer(r: FieldReader, v: unknown, path: string): Dealer {
  const dealer = r.object(v, path);
  return {
    algorithm: r.literal(dealer, 'algorithm', path, ['Ed25519'] as const),
    publicKey: r.string(dealer, 'publicKey', path, ED25519_RAW_BASE64),
  };
}

export function readPolicyRecord(r: FieldReader, v: unknown, path: string): PolicyRecord {
  const pol = r.object(v, path);
  return {
    name: r.string(pol, 'name', path),
    sha256: r.string(pol, 'sha256', path, /^[0-9a-f]{64}$/),
  };
}
