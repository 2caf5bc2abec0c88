/**
 * The envelope every signed or MACed custos file shares (SPEC.md, "The envelope"): a format line,
 * a JSON body in custos's canonical form, and trailer lines `--- TAG VALUE`. One UTF-8 rule
 * (strict, over the file's bytes), one canonical-base64 rule, one set of size and depth limits.
 */
import { CustosError, type ErrorCode } from './errors.js';

export const TRAILER_MARK = '--- ';

/** The largest envelope custos reads; a bundle of 100,000 wrapped keys is about 60 MiB. */
export const MAX_ENVELOPE_BYTES = 256 * 1024 * 1024;
/**
 * Deeper JSON than any custos body uses is refused before parsing, so no input can exhaust the
 * stack.
 */
export const MAX_JSON_DEPTH = 32;

export interface Trailer {
  tag: string;
  value: string;
}

export interface OpenedEnvelope {
  /** The parsed body, not yet checked field by field. */
  json: unknown;
  /** The format line and body, each ending in a newline: what every MAC and signature covers. */
  authenticated: Buffer;
  trailers: Trailer[];
}

export interface EnvelopeRules {
  /** Format lines this reader accepts, e.g. `custos-bundle/1`. */
  formats: readonly string[];
  /** What the file is called in messages: "bundle", "ceremony file". */
  what: string;
  /**
   * What its body is called when it is not JSON ("ceremony body"); `${what} body` when not given.
   */
  body?: string;
  /** Code for a file that is not this format, or is truncated or malformed. */
  formatCode: ErrorCode;
  /** Code for a file whose bytes were changed (bad UTF-8 or JSON inside a well-formed envelope). */
  damagedCode: ErrorCode;
  hint: string;
  /** The trailer a complete file must end with, named for messages ("MAC", "signature"). */
  requiredTrailer?: { tag: string; name: string };
  maxBytes?: number;
}

/** The bytes a file's MAC or signature covers: format line and canonical JSON body. */
export function envelopeBytes(format: string, body: unknown): Buffer {
  return Buffer.from(`${format}\n${JSON.stringify(body, null, 1)}\n`, 'utf8');
}

export function withTrailers(authenticated: Buffer, trailers: readonly Trailer[]): Buffer {
  return Buffer.concat([
    authenticated,
    Buffer.from(trailers.map((t) => `${TRAILER_MARK}${t.tag} ${t.value}\n`).join(''), 'utf8'),
  ]);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8: any byte sequence that is not UTF-8 is refused, never replaced. */
export function strictUtf8(bytes: Uint8Array): string | null {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The bytes of canonical base64 text of the given length, or null: no other spelling of the same
 * bytes passes.
 */
export function canonicalBase64(text: string, length?: number): Buffer | null {
  if (!BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return null;
  if (length !== undefined && bytes.length !== length) return null;
  return bytes;
}

/** The deepest nesting of arrays and objects in JSON text, counted without parsing it. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/**
 * Parses JSON text after checking its depth; a problem (to follow a name in a message) when it is
 * not JSON or too deep.
 */
export function parseBoundedJson(
  text: string,
  maxDepth = MAX_JSON_DEPTH,
): { value: unknown } | { problem: string } {
  if (jsonDepth(text) > maxDepth) return { problem: `nests deeper than ${maxDepth} levels` };
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { problem: 'is not valid JSON' };
  }
}

/**
 * Splits a file into format line, body and trailers, and parses the body; field checks are the
 * caller's.
 */
export function openEnvelope(
  where: string,
  file: Buffer,
  rules: EnvelopeRules,
): OpenedEnvelope & { format: string } {
  const formatError = (problem: string) =>
    new CustosError(rules.formatCode, `${where} ${problem}`, rules.hint);
  const damaged = (message: string) => new CustosError(rules.damagedCode, message, rules.hint);
  if (file.length > (rules.maxBytes ?? MAX_ENVELOPE_BYTES)) {
    throw formatError(`is ${file.length} bytes, more than a custos ${rules.what} can be`);
  }
  const text = strictUtf8(file);
  if (text === null)
    throw damaged(`${where} is not valid UTF-8 text: the file was changed or damaged`);
  const newline = text.indexOf('\n');
  const first = newline < 0 ? text.slice(0, 80) : text.slice(0, newline);
  const format = rules.formats.find((f) => f === first);
  if (!format) {
    const family = rules.formats[0]?.replace(/\/\d+$/, '') ?? '';
    if (new RegExp(`^${family}/\\d+$`).test(first)) {
      throw formatError(
        `is a ${first} ${rules.what}; this custos reads ${rules.formats.join(' and ')}`,
      );
    }
    throw formatError(
      `is not a custos ${rules.what} (no "${rules.formats.join('" or "')}" header)`,
    );
  }
  const bodyEnd = text.indexOf(`\n${TRAILER_MARK}`) + 1 || text.length;
  const required = rules.requiredTrailer;
  if (!text.endsWith('\n') || (required && bodyEnd === text.length)) {
    throw formatError(
      `has no ${required?.name ?? 'final newline'}${required ? ' line' : ''}: the file is truncated`,
    );
  }
  const trailerText = text.slice(bodyEnd, -1);
  const trailers = (trailerText === '' ? [] : trailerText.split('\n')).map((line): Trailer => {
    const space = line.indexOf(' ', TRAILER_MARK.length);
    if (!line.startsWith(TRAILER_MARK) || space < 0)
      throw formatError(`has a malformed line after its body: "${line.slice(0, 40)}"`);
    return { tag: line.slice(TRAILER_MARK.length, space), value: line.slice(space + 1) };
  });
  if (required && trailers[trailers.length - 1]?.tag !== required.tag) {
    throw formatError(
      `does not end with its ${required.name} line: the file is truncated or was edited`,
    );
  }
  const parsed = parseBoundedJson(text.slice(format.length + 1, bodyEnd));
  if ('problem' in parsed)
    throw damaged(
      `${where}: the ${rules.body ?? `${rules.what} body`} ${parsed.problem}: the file was changed or damaged`,
    );
  return {
    format,
    json: parsed.value,
    authenticated: file.subarray(0, Buffer.byteLength(text.slice(0, bodyEnd), 'utf8')),
    trailers,
  };
}

/**
 * Re-serialising the body must give the authenticated bytes back, so nothing outside the fields
 * a reader checked (key order, spacing, unknown fields) can vary in a signed file.
 */
export function isCanonical(opened: OpenedEnvelope & { format: string }, body: unknown): boolean {
  return envelopeBytes(opened.format, body).equals(opened.authenticated);
}
