/** Field readers for parsed JSON documents: each names the path of a bad field in its error. */
import { CustosError, type ErrorCode } from './errors.js';
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
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.fail(path, 'must be an object');
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

  literal<T extends string>(o: Json, key: string, path: string, allowed: readonly T[]): T {
    const v = this.string(o, key, path);
    if (!(allowed as readonly string[]).includes(v)) throw this.fail(`${path}.${key}`, `must be one of ${allowed.join(', ')}`);
    return v as T;
  }
}

/** A custodian or approver id: it names share files and appears in every share. */
export const CUSTODIAN_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** An age X25519 recipient, as age-keygen -y prints it (its checksum is checked by trial encryption). */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
export const HEX = /^(?:[0-9a-f]{2})*$/;
export const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const CHECK_METHODS: readonly CheckMethod[] = ['aes-ecb-zero', 'hmac-sha256', 'token', 'spki-sha256', 'none'];

/** A recorded check value: `{ method, value }` at `path`. */
export function readCheckValue(r: FieldReader, v: unknown, path: string): CheckValue {
  const o = r.object(v, path);
  return { method: r.literal(o, 'method', path, CHECK_METHODS), value: r.string(o, 'value', path, HEX) };
}
