/** Field readers for parsed JSON documents: each names the path of a bad field in its error. */
import { CustosError, type ErrorCode } from './errors.js';
import { canonicalBase64 } from './envelope.js';
import type { CheckMethod, CheckValue } from './keys.js';

export type Json = Record<string, unknown>;

export class FieldReader {
  constructor(
    private readonly code: ErrorCode,
    private readonly where: string,
    private readonly hint: string,
  ) {}

  fail(path: string, problem: string): CustosError {
    return new CustosError(this.code, `${this.where}: ${path} ${problem}`, this.hint);
  }

  object(v: unknown, path: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw this.fail(path, 'must be an object');
    return v as Json;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) throw this.fail(path, 'must be a list');
    return v;
  }

  string(o: Json, key: string, path: string, pattern?: RegExp): string {
    const v = o[key];
    if (typeof v !== 'string') throw this.fail(`${path}.${key}`, 'must be a string');
    if (pattern && !pattern.test(v)) throw this.fail(`${path}.${key}`, 'has an invalid format');
    return v;
  }

  optionalString(o: Json, key: string, path: string, pattern?: RegExp): string | undefined {
    return o[key] === undefined ? undefined : this.string(o, key, path, pattern);
  }

  integer(o: Json, key: string, path: string, min: number, max: number): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw this.fail(`${path}.${key}`, `must be a whole number from ${min} to ${max}`);
    }
    return v;
  }

  boolean(o: Json, key: string, path: string): boolean {
    const v = o[key];
    if (typeof v !== 'boolean') throw this.fail(`${path}.${key}`, 'must be true or false');
    return v;
  }

  /**
   * A time as custos writes it, `new Date().toISOString()` for a year 0000 to 9999:
   * `YYYY-MM-DDTHH:MM:SS.sssZ`, UTC, milliseconds, naming a real instant. No other spelling of a
   * time (an offset, no milliseconds, a date alone, February 30, 24:00) and nothing that
   * `Date.parse` would merely guess at passes, so a time read never turns into NaN.
   */
  timestamp(o: Json, key: string, path: string): string {
    const v = this.string(o, key, path);
    if (!isTimestamp(v))
      throw this.fail(
        `${path}.${key}`,
        'must be a UTC time as custos writes it, e.g. 2026-12-02T09:48:24.411Z',
      );
    return v;
  }

  /**
   * Canonical base64 (RFC 4648, padded, no other spelling of the same bytes) of exactly `bytes`
   * bytes.
   */
  base64Of(o: Json, key: string, path: string, bytes: number, what = `${bytes} bytes`): string {
    const v = this.string(o, key, path);
    if (!canonicalBase64(v, bytes))
      throw this.fail(`${path}.${key}`, `must be canonical base64 of ${what}`);
    return v;
  }

  literal<T extends string>(o: Json, key: string, path: string, allowed: readonly T[]): T {
    const v = this.string(o, key, path);
    if (!(allowed as readonly string[]).includes(v))
      throw this.fail(`${path}.${key}`, `must be one of ${allowed.join(', ')}`);
    return v as T;
  }
}

/** A custodian or approver id: it names share files and appears in every share. */
export const CUSTODIAN_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/**
 * An age X25519 recipient, as age-keygen -y prints it (its checksum is checked by trial
 * encryption).
 */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
export const HEX = /^(?:[0-9a-f]{2})*$/;
export const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * True for exactly the text `Date.prototype.toISOString()` writes for an instant of the years 0000
 * to 9999.
 */
export function isTimestamp(text: string): boolean {
  if (!TIMESTAMP.test(text)) return false;
  const ms = Date.parse(text);
  return !Number.isNaN(ms) && new Date(ms).toISOString() === text;
}

const CHECK_METHODS: readonly CheckMethod[] = [
  'aes-ecb-zero',
  'hmac-sha256',
  'token',
  'spki-sha256',
  'none',
];

/** A recorded check value: `{ method, value }` at `path`. */
export function readCheckValue(r: FieldReader, v: unknown, path: string): CheckValue {
  const o = r.object(v, path);
  return {
    method: r.literal(o, 'method', path, CHECK_METHODS),
    value: r.string(o, 'value', path, HEX),
  };
}
