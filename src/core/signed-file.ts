/**
 * What the formats read through the envelope share beyond it: rules for a format whose every
 * refusal carries one code, and the formats whose file ends in a single Ed25519 signature line, a
 * ceremony file and a handover package (SPEC.md).
 */
import { CustosError, type ErrorCode } from './errors.js';
import { FieldReader } from './fields.js';
import {
  canonicalBase64,
  envelopeBytes,
  openEnvelope,
  withTrailers,
  type EnvelopeRules,
  type OpenedEnvelope,
} from './envelope.js';

const SIGNATURE_TAG = 'ed25519';

/** Rules for a format refused with one code, whether it is malformed or its bytes were changed. */
export function oneCodeRules(
  format: string,
  what: string,
  code: ErrorCode,
  hint: string,
  more: Pick<EnvelopeRules, 'body' | 'requiredTrailer' | 'maxBytes'> = {},
): EnvelopeRules {
  return { formats: [format], what, formatCode: code, damagedCode: code, hint, ...more };
}

/** A format whose file is its envelope and one signature line (ceremony file, handover package). */
export interface SignedFormat<B> {
  /** The bytes the signature covers. */
  signedBytes(body: B): Buffer;
  /** The file: the signed bytes and their signature line. */
  serialise(signed: Buffer, signature: Buffer): Buffer;
  /** A file's envelope, opened by the format's rules, and what reads and refuses the rest. */
  open(where: string, file: Buffer): OpenedSignedFile;
}

export interface OpenedSignedFile {
  opened: OpenedEnvelope & { format: string };
  /** Null when the signature line is malformed. */
  signature: Buffer | null;
  /** Reads the body's fields, refusing a bad one with the format's code and hint. */
  reader: FieldReader;
  /** A refusal of this file, with the format's code and hint. */
  refuse(message: string): CustosError;
}

/** A signed file as read. */
export interface SignedFile<B> {
  body: B;
  /** The bytes the signature covers. */
  signed: Buffer;
  signature: Buffer;
}

/** A signed format refused with one code, whether a file is malformed or its bytes were changed. */
export function signedFormat<B>(
  format: string,
  what: string,
  body: string,
  code: ErrorCode,
  hint: string,
): SignedFormat<B> {
  const requiredTrailer = { tag: SIGNATURE_TAG, name: 'signature' };
  const rules = oneCodeRules(format, what, code, hint, { body, requiredTrailer });
  return {
    signedBytes: (b) => envelopeBytes(format, b),
    serialise: (signed, signature) =>
      withTrailers(signed, [{ tag: SIGNATURE_TAG, value: signature.toString('base64') }]),
    open(where, file) {
      const opened = openEnvelope(where, file, rules);
      return {
        opened,
        signature: onlySignature(opened),
        reader: new FieldReader(code, where, hint),
        refuse: (message) => new CustosError(code, message, hint),
      };
    },
  };
}

/**
 * The signature of a file with exactly one trailer, or null. Only the canonical spelling is
 * accepted, so no byte of the signature line can change unnoticed.
 */
function onlySignature(opened: OpenedEnvelope): Buffer | null {
  const trailer = opened.trailers[opened.trailers.length - 1];
  return opened.trailers.length === 1 && trailer ? canonicalBase64(trailer.value, 64) : null;
}
