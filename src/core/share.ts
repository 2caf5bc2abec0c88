/**
 * The share document, `custos-share/1` (docs/share-format.md): the plaintext inside a custodian's
 * age file. Line-oriented, fixed field order, and signed by the backup's one-time dealer key, so
 * a share names its backup and custodian and an edited share is caught before Shamir sees it.
 */
import { CustosError } from './errors.js';
import { BUNDLE_ID } from './bundle.js';
import { CUSTODIAN_ID } from './policy.js';

export const SHARE_FORMAT = 'custos-share/1';

export interface ShareDocument {
  bundleId: string;
  /** SHA-256 (hex) of the bundle's authenticated bytes. */
  bundleDigest: string;
  custodian: string;
  index: number;
  threshold: number;
  total: number;
  /** The secrets.js-grempe share string. */
  share: string;
}

export interface SignedShare {
  doc: ShareDocument;
  /** The exact bytes the signature covers. */
  signed: Buffer;
  signature: Buffer;
}

const FIELDS = ['bundle', 'bundle-digest', 'custodian', 'index', 'threshold', 'total', 'share'] as const;

/** The bytes the dealer signs: the header and every field line, each ending in a newline. */
export function shareSignedBytes(doc: ShareDocument): Buffer {
  const values = [doc.bundleId, doc.bundleDigest, doc.custodian, String(doc.index), String(doc.threshold), String(doc.total), doc.share];
  return Buffer.from(`${SHARE_FORMAT}\n${FIELDS.map((f, i) => `${f}: ${values[i]}\n`).join('')}`, 'utf8');
}

export function serialiseShare(signed: Buffer, signature: Buffer): string {
  return `${signed.toString('utf8')}signature: ${signature.toString('base64')}\n`;
}

function bad(where: string, problem: string): CustosError {
  return new CustosError('E_SHARE_FORMAT', `${where}: ${problem}`, 'the share is damaged or is not a custos share; ask its custodian for their copy');
}

function wholeNumber(where: string, field: string, text: string, min: number, max: number): number {
  if (!/^[1-9][0-9]{0,2}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw bad(where, `"${field}" must be a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

export function parseShare(where: string, text: string): SignedShare {
  const lines = text.split('\n');
  if (lines[0] !== SHARE_FORMAT) {
    throw bad(where, /^custos-share\/\d+$/.test(lines[0] ?? '') ? `is a ${lines[0]} share; this custos reads ${SHARE_FORMAT}` : 'not a custos share');
  }
  const expected = [...FIELDS, 'signature'];
  if (lines.length !== expected.length + 2 || lines[lines.length - 1] !== '') throw bad(where, 'wrong number of lines');
  const values = expected.map((field, i) => {
    const line = lines[i + 1] ?? '';
    if (!line.startsWith(`${field}: `)) throw bad(where, `line ${i + 2} should be "${field}: …"`);
    return line.slice(field.length + 2);
  });
  const [bundleId, bundleDigest, custodian, index, threshold, total, share, signature] = values as [string, string, string, string, string, string, string, string];
  if (!BUNDLE_ID.test(bundleId)) throw bad(where, '"bundle" is not a bundle id');
  if (!/^[0-9a-f]{64}$/.test(bundleDigest)) throw bad(where, '"bundle-digest" is not a SHA-256 digest');
  if (!CUSTODIAN_ID.test(custodian)) throw bad(where, '"custodian" is not a custodian id');
  if (!/^8[0-9a-f]{2}[0-9a-f]+$/.test(share)) throw bad(where, '"share" is not a share value');
  if (!/^[A-Za-z0-9+/]{86}==$/.test(signature)) throw bad(where, '"signature" is not an Ed25519 signature');
  const totalN = wholeNumber(where, 'total', total, 2, 255);
  const doc: ShareDocument = {
    bundleId,
    bundleDigest,
    custodian,
    index: wholeNumber(where, 'index', index, 1, 255),
    threshold: wholeNumber(where, 'threshold', threshold, 2, totalN),
    total: totalN,
    share,
  };
  const sig = Buffer.from(signature, 'base64');
  if (sig.toString('base64') !== signature) throw bad(where, '"signature" is not in canonical base64');
  return { doc, signed: shareSignedBytes(doc), signature: sig };
}
