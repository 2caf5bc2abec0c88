/**
 * The share document, `custos-share/1` (docs/share-format.md): the plaintext inside a custodian's
 * age file. Line-oriented, fixed field order, and signed by the backup's one-time dealer key, so
 * a share names its backup and custodian and an edited share is caught before Shamir sees it.
 */
import { CustosError } from './errors.js';
import { canonicalBase64 } from './envelope.js';
import { BUNDLE_ID } from './bundle.js';
import { CUSTODIAN_ID } from './policy.js';

export const SHARE_FORMAT = 'custos-share/1';
/** A share of an escrow domain's secret: the same document, naming a domain instead of a bundle. */
export const DOMAIN_SHARE_FORMAT = 'custos-domain-share/1';

export interface ShareDocument {
  /**
   * Present on a share of an escrow domain; bundleId and bundleDigest then name the domain and its
   * core.
   */
  kind?: 'domain';
  bundleId: string;
  /** SHA-256 (hex) of the bundle's authenticated bytes (of a domain's core, for a domain share). */
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

/** The field lines after the two that name what the share belongs to. */
const SHARE_FIELDS = ['custodian', 'index', 'threshold', 'total', 'share'] as const;
const FIELDS = ['bundle', 'bundle-digest', ...SHARE_FIELDS] as const;
const DOMAIN_FIELDS = ['domain', 'domain-digest', ...SHARE_FIELDS] as const;

/** The bytes the dealer signs: the header and every field line, each ending in a newline. */
export function shareSignedBytes(doc: ShareDocument): Buffer {
  const values = [
    doc.bundleId,
    doc.bundleDigest,
    doc.custodian,
    String(doc.index),
    String(doc.threshold),
    String(doc.total),
    doc.share,
  ];
  const [format, fields] =
    doc.kind === 'domain' ? [DOMAIN_SHARE_FORMAT, DOMAIN_FIELDS] : [SHARE_FORMAT, FIELDS];
  return Buffer.from(`${format}\n${fields.map((f, i) => `${f}: ${values[i]}\n`).join('')}`, 'utf8');
}

export function serialiseShare(signed: Buffer, signature: Buffer): string {
  return `${signed.toString('utf8')}signature: ${signature.toString('base64')}\n`;
}

function bad(where: string, problem: string): CustosError {
  return new CustosError(
    'E_SHARE_FORMAT',
    `${where}: ${problem}`,
    'the share is damaged or is not a custos share; ask its custodian for their copy',
  );
}

function wholeNumber(where: string, field: string, text: string, min: number, max: number): number {
  if (!/^[1-9][0-9]{0,2}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw bad(where, `"${field}" must be a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

export function parseShare(where: string, text: string): SignedShare {
  const lines = text.split('\n');
  const kind = lines[0] === DOMAIN_SHARE_FORMAT ? 'domain' : undefined;
  if (lines[0] !== SHARE_FORMAT && !kind) {
    throw bad(
      where,
      /^custos-(domain-)?share\/\d+$/.test(lines[0] ?? '')
        ? `is a ${lines[0]} share; this custos reads ${SHARE_FORMAT} and ${DOMAIN_SHARE_FORMAT}`
        : 'not a custos share',
    );
  }
  const expected = [...(kind ? DOMAIN_FIELDS : FIELDS), 'signature'];
  if (lines.length !== expected.length + 2 || lines[lines.length - 1] !== '')
    throw bad(where, 'wrong number of lines');
  const values = expected.map((field, i) => {
    const line = lines[i + 1] ?? '';
    if (!line.startsWith(`${field}: `)) throw bad(where, `line ${i + 2} should be "${field}: …"`);
    return line.slice(field.length + 2);
  });
  const [bundleId, bundleDigest, custodian, index, threshold, total, share, signature] = values as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const subject = kind ?? 'bundle';
  if (!BUNDLE_ID.test(bundleId)) throw bad(where, `"${subject}" is not a ${subject} id`);
  if (!/^[0-9a-f]{64}$/.test(bundleDigest))
    throw bad(where, `"${subject}-digest" is not a SHA-256 digest`);
  if (!CUSTODIAN_ID.test(custodian)) throw bad(where, '"custodian" is not a custodian id');
  if (!/^8[0-9a-f]{2}[0-9a-f]+$/.test(share)) throw bad(where, '"share" is not a share value');
  if (!/^[A-Za-z0-9+/]{86}==$/.test(signature))
    throw bad(where, '"signature" is not an Ed25519 signature');
  const totalN = wholeNumber(where, 'total', total, 2, 255);
  const doc: ShareDocument = {
    ...(kind ? { kind } : {}),
    bundleId,
    bundleDigest,
    custodian,
    index: wholeNumber(where, 'index', index, 1, 255),
    threshold: wholeNumber(where, 'threshold', threshold, 2, totalN),
    total: totalN,
    share,
  };
  const sig = canonicalBase64(signature, 64);
  if (!sig) throw bad(where, '"signature" is not in canonical base64');
  return { doc, signed: shareSignedBytes(doc), signature: sig };
}
