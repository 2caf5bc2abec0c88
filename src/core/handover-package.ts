/**
 * The handover package, `custos-handover/1` (docs/legal-process.md#the-package): each released key
 * wrapped to the recipient in the CKM_RSA_AES_KEY_WRAP layout, with the chain-of-custody receipt —
 * the request with its approvals, the ceremony file, the hashes of the ceremony's audit entries,
 * each key's check value — signed with the ceremony key.
 */
import { signedFormat, type SignedFile } from './signed-file.js';
import { readKeyName } from './key-name.js';
import { BASE64, readCheckValue } from './fields.js';
import { isCanonical } from './envelope.js';
import type { CheckValue } from './keys.js';

export const PACKAGE_FORMAT = 'custos-handover/1';

export interface PackagedKey {
  class: 'secret' | 'private';
  keyType: string;
  label: string;
  id: string;
  bits: number;
  checkValue: CheckValue;
  /**
   * RSA-OAEP(ephemeral AES-256 key) followed by AES-KWP(key) under that ephemeral key: the output
   * of CKM_RSA_AES_KEY_WRAP. The RSA part is as long as the recipient's modulus.
   */
  wrapped: string;
}

export interface PackageBody {
  created: string;
  /** The request file, with its approvals, verbatim. */
  request: string;
  requestDigest: string;
  /** The ceremony file, verbatim. */
  ceremony: string;
  /**
   * SHA-256 of each audit entry line of the ceremony, in order, ending with the handover's own
   * entry's predecessor.
   */
  transcript: string[];
  recipientSha256: string;
  oaep: { hash: 'SHA-256' | 'SHA-1'; mgf: 'MGF1-SHA-256' | 'MGF1-SHA-1'; label: '' };
  keys: PackagedKey[];
}

const PACKAGE = signedFormat<PackageBody>(
  PACKAGE_FORMAT,
  'handover package',
  'body',
  'E_PACKAGE_INVALID',
  'the package is damaged or was changed after it was made; ask the institution for the package it delivered',
);

export const packageSignedBytes = PACKAGE.signedBytes;

/** The package: the signed bytes and the ceremony key's signature line. */
export const serialisePackage = PACKAGE.serialise;

export function parsePackage(where: string, file: Buffer): SignedFile<PackageBody> {
  const { opened, signature, reader: r, refuse } = PACKAGE.open(where, file);
  if (!signature) throw refuse(`${where}: malformed signature line`);
  const o = r.object(opened.json, 'body');
  const oaep = r.object(o.oaep, 'oaep');
  const body: PackageBody = {
    created: r.timestamp(o, 'created', 'body'),
    request: r.string(o, 'request', 'body'),
    requestDigest: r.string(o, 'requestDigest', 'body', /^[0-9a-f]{64}$/),
    ceremony: r.string(o, 'ceremony', 'body'),
    transcript: r.array(o.transcript, 'transcript').map((h, i) => {
      if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h))
        throw r.fail(`transcript[${i}]`, 'is not a SHA-256 digest');
      return h;
    }),
    recipientSha256: r.string(o, 'recipientSha256', 'body', /^[0-9a-f]{64}$/),
    oaep: {
      hash: r.literal(oaep, 'hash', 'oaep', ['SHA-256', 'SHA-1'] as const),
      mgf: r.literal(oaep, 'mgf', 'oaep', ['MGF1-SHA-256', 'MGF1-SHA-1'] as const),
      label: r.literal(oaep, 'label', 'oaep', [''] as const),
    },
    keys: r.array(o.keys, 'keys').map((k, i) => {
      const p = `keys[${i}]`;
      const ko = r.object(k, p);
      return {
        ...readKeyName(r, ko, p),
        bits: r.integer(ko, 'bits', p, 0, 1 << 20),
        checkValue: readCheckValue(r, ko.checkValue, `${p}.checkValue`),
        wrapped: r.string(ko, 'wrapped', p, BASE64),
      };
    }),
  };
  if (!isCanonical(opened, body))
    throw refuse(`${where}: the body is not in custos's form (it was edited)`);
  return { body, signed: opened.authenticated, signature };
}
