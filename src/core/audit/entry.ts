/**
 * The audit log's entry, `custos-audit/1` (SPEC.md): one JSON entry per line, each naming the
 * SHA-256 of the line before it (`prev`; 64 zeros for the first), and numbered from 1 (`seq`).
 * Entries a ceremony makes are signed with the ceremony's Ed25519 key. This module writes and
 * reads one entry; checking a whole log is in check.ts.
 *
 * Pure: hashing and signing are passed in (see src/crypto).
 */
import { CustosError } from '../errors.js';
import { parseBoundedJson } from '../envelope.js';

export const AUDIT_FORMAT = 'custos-audit/1';
export const GENESIS = '0'.repeat(64);

export type Detail = Record<string, string | number | boolean | string[]>;

export interface AuditFacts {
  op: string;
  actor: string;
  outcome: 'ok' | 'refused' | 'failed';
  code?: string;
  ceremony?: string;
  bundle?: string;
  /**
   * Artifact name (e.g. "bundle", "share:alice", "submission:bob") → SHA-256 (hex) of its bytes.
   */
  artifacts?: Record<string, string>;
  detail?: Detail;
}

export interface AuditEntry extends AuditFacts {
  v: 1;
  seq: number;
  time: string;
  prev: string;
  /** Raw Ed25519 public key and signature over signedBytes(entry without sig), both base64. */
  sig?: { key: string; value: string };
}

/** SHA-256 of bytes, as lower-case hex. */
export type HashHex = (data: Uint8Array) => string;
export interface EntrySigner {
  publicKey: Buffer;
  sign(data: Uint8Array): Buffer;
}

const KEY_ORDER = [
  'v',
  'seq',
  'time',
  'op',
  'actor',
  'outcome',
  'code',
  'ceremony',
  'bundle',
  'artifacts',
  'detail',
  'prev',
  'sig',
] as const;
const KNOWN = new Set<string>(KEY_ORDER);
const OUTCOMES = new Set(['ok', 'refused', 'failed']);
const SHA256_HEX = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

function sortedObject<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort())
    out[k] = (Array.isArray(o[k]) ? [...(o[k] as unknown[])] : o[k]) as T;
  return out;
}

/**
 * The canonical line: top-level keys in the fixed order above, absent optional keys left out,
 * the keys inside `artifacts` and `detail` sorted (by UTF-16 code unit), no whitespace.
 */
export function entryJson(entry: AuditEntry): string {
  const e = entry as unknown as Record<string, unknown>;
  const o: Record<string, unknown> = {};
  for (const k of KEY_ORDER) {
    const v = e[k];
    if (v === undefined) continue;
    if (k === 'artifacts' || k === 'detail') o[k] = sortedObject(v as Record<string, unknown>);
    else if (k === 'sig')
      o[k] = { key: (v as { key: string }).key, value: (v as { value: string }).value };
    else o[k] = v;
  }
  return JSON.stringify(o);
}

/** The bytes a signature covers: the format line, then the canonical entry without `sig`. */
export function signedBytes(entry: AuditEntry): Buffer {
  const { sig: _sig, ...unsigned } = entry;
  return Buffer.from(`${AUDIT_FORMAT} entry\n${entryJson(unsigned as AuditEntry)}`, 'utf8');
}

/**
 * SHA-256 (hex) of a line's UTF-8 bytes, without its newline: what the next entry's `prev` holds.
 */
export function lineHash(line: string | Uint8Array, hash: HashHex): string {
  return hash(typeof line === 'string' ? Buffer.from(line, 'utf8') : line);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why a parsed value is not an entry, or null if it is one. */
function entryFault(o: unknown): string | null {
  if (!isPlainObject(o)) return 'not a JSON object';
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) return `unknown field "${k}"`;
  if (o.v !== 1)
    return o.v === undefined
      ? 'no "v"'
      : `version ${JSON.stringify(o.v)}; this custos reads ${AUDIT_FORMAT} (v 1)`;
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1)
    return '"seq" must be a whole number from 1';
  if (typeof o.time !== 'string' || !TIME.test(o.time))
    return '"time" must be an ISO 8601 UTC time';
  if (typeof o.op !== 'string' || o.op === '') return '"op" must be a non-empty string';
  if (typeof o.actor !== 'string') return '"actor" must be a string';
  if (typeof o.outcome !== 'string' || !OUTCOMES.has(o.outcome))
    return '"outcome" must be ok, refused or failed';
  for (const k of ['code', 'ceremony', 'bundle'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === ''))
      return `"${k}" must be a non-empty string`;
  }
  if (o.artifacts !== undefined) {
    if (!isPlainObject(o.artifacts)) return '"artifacts" must be an object';
    for (const [name, digest] of Object.entries(o.artifacts)) {
      if (typeof digest !== 'string' || !SHA256_HEX.test(digest))
        return `artifact "${name}" must be a SHA-256 digest in lower-case hex`;
    }
  }
  if (o.detail !== undefined) {
    if (!isPlainObject(o.detail)) return '"detail" must be an object';
    for (const [name, value] of Object.entries(o.detail)) {
      const ok =
        typeof value === 'string' ||
        typeof value === 'boolean' ||
        (typeof value === 'number' && Number.isFinite(value)) ||
        (Array.isArray(value) && value.every((x) => typeof x === 'string'));
      if (!ok)
        return `detail "${name}" must be a string, a number, true/false or a list of strings`;
    }
  }
  if (typeof o.prev !== 'string' || !SHA256_HEX.test(o.prev))
    return '"prev" must be a SHA-256 digest in lower-case hex';
  if (o.sig !== undefined) {
    if (
      !isPlainObject(o.sig) ||
      typeof o.sig.key !== 'string' ||
      typeof o.sig.value !== 'string' ||
      Object.keys(o.sig).length !== 2
    ) {
      return '"sig" must be {"key": base64, "value": base64}';
    }
  }
  return null;
}

export type ParsedLine =
  { ok: true; entry: AuditEntry; canonical: boolean } | { ok: false; message: string };

/**
 * Parses one line (without its newline). A well-formed entry that is not byte-canonical parses,
 * with canonical: false.
 */
export function parseEntryLine(line: string): ParsedLine {
  if (line === '') return { ok: false, message: 'empty line' };
  // Depth is capped before parsing, so no line can exhaust the stack (here or in a message quoting
  // it).
  const parsed = parseBoundedJson(line);
  if ('problem' in parsed)
    return {
      ok: false,
      message: parsed.problem === 'is not valid JSON' ? 'not JSON' : `its JSON ${parsed.problem}`,
    };
  const o = parsed.value;
  const fault = entryFault(o);
  if (fault) return { ok: false, message: fault };
  const entry = o as AuditEntry;
  return { ok: true, entry, canonical: entryJson(entry) === line };
}

/**
 * Builds the entry and its line (no newline) for the given facts; signs it when a signer is given.
 */
export function makeEntry(
  facts: AuditFacts,
  seq: number,
  time: string,
  prev: string,
  sign?: EntrySigner,
): { entry: AuditEntry; line: string } {
  const entry: AuditEntry = {
    v: 1,
    seq,
    time,
    op: facts.op,
    actor: facts.actor,
    outcome: facts.outcome,
    ...(facts.code !== undefined ? { code: facts.code } : {}),
    ...(facts.ceremony !== undefined ? { ceremony: facts.ceremony } : {}),
    ...(facts.bundle !== undefined ? { bundle: facts.bundle } : {}),
    ...(facts.artifacts !== undefined ? { artifacts: sortedObject(facts.artifacts) } : {}),
    ...(facts.detail !== undefined ? { detail: sortedObject(facts.detail) } : {}),
    prev,
  };
  if (sign) {
    if (sign.publicKey.length !== 32)
      throw new CustosError('E_INTERNAL', 'audit entry signer: the public key is not 32 bytes');
    const value = sign.sign(signedBytes(entry));
    entry.sig = {
      key: sign.publicKey.toString('base64'),
      value: Buffer.from(value).toString('base64'),
    };
  }
  const fault = entryFault(JSON.parse(JSON.stringify(entry)));
  if (fault) throw new CustosError('E_INTERNAL', `audit entry for ${facts.op}: ${fault}`);
  return { entry, line: entryJson(entry) };
}
