/**
 * What the formats read through the envelope share beyond it: rules for a format whose every
 * refusal carries one code, and the single Ed25519 signature line that ends a ceremony file and a
 * handover package (SPEC.md).
 */
import type { ErrorCode } from './errors.js';
import {
  canonicalBase64,
  withTrailers,
  type EnvelopeRules,
  type OpenedEnvelope,
} from './envelope.js';

export const SIGNATURE_TAG = 'ed25519';

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

/** Rules for a file that must end in its one signature line. */
export function signedFileRules(
  format: string,
  what: string,
  body: string,
  code: ErrorCode,
  hint: string,
): EnvelopeRules {
  const requiredTrailer = { tag: SIGNATURE_TAG, name: 'signature' };
  return oneCodeRules(format, what, code, hint, { body, requiredTrailer });
}

/** The signed bytes followed by their one signature line. */
export function withSignature(signed: Buffer, signature: Buffer): Buffer {
  return withTrailers(signed, [{ tag: SIGNATURE_TAG, value: signature.toString('base64') }]);
}

/**
 * The signature of a file with exactly one trailer, or null. Only the canonical spelling is
 * accepted, so no byte of the signature line can change unnoticed.
 */
export function onlySignature(opened: OpenedEnvelope): Buffer | null {
  const trailer = opened.trailers[opened.trailers.length - 1];
  return opened.trailers.length === 1 && trailer ? canonicalBase64(trailer.value, 64) : null;
}
