/**
 * `custos-token-identity/1` (SPEC.md, "Token identity stub"): the file a custodian passes as
 * `--identity` when their key is on a PKCS#11 token. It names the module, the token and the key,
 * and the recipient line the policy holds; it holds no secret. It is an envelope without a
 * trailer: nothing in it needs to be kept from anyone, and a changed stub can only point at a key
 * that does not open the share.
 */
import { CustosError } from './errors.js';
import { envelopeBytes, openEnvelope } from './envelope.js';
import { FieldReader, HEX } from './fields.js';
import { hasUnsafeText } from './text.js';

export const TOKEN_STUB_FORMAT = 'custos-token-identity/1';
/** A stub is small; anything larger is not one. */
export const MAX_STUB_BYTES = 64 * 1024;

export const SSH_RSA_RECIPIENT = /^ssh-rsa AAAAB3NzaC1yc2E[A-Za-z0-9+/]{100,2000}={0,2}$/;

export interface TokenStub {
  /** The PKCS#11 module, an absolute path. */
  module: string;
  /** Given to C_Initialize (NSS softoken needs them). */
  libraryParameters?: string;
  /** The custos.yaml profile it was enrolled through, if any: used when present there. */
  profile?: string;
  token: { label: string; serial: string };
  key: { id: string; label: string };
  recipient: string;
  created: string;
}

const HINT =
  'pass the token identity file custos custodian enroll wrote (SPEC.md, "Token identity stub"), or enroll again';

export function isTokenStub(file: Uint8Array): boolean {
  return Buffer.from(file.subarray(0, TOKEN_STUB_FORMAT.length + 1))
    .toString('latin1')
    .startsWith('custos-token-identity/');
}

export function serialiseTokenStub(stub: TokenStub): string {
  const body: Record<string, unknown> = { module: stub.module };
  if (stub.libraryParameters !== undefined) body.libraryParameters = stub.libraryParameters;
  if (stub.profile !== undefined) body.profile = stub.profile;
  body.token = { label: stub.token.label, serial: stub.token.serial };
  body.key = { id: stub.key.id, label: stub.key.label };
  body.recipient = stub.recipient;
  body.created = stub.created;
  return envelopeBytes(TOKEN_STUB_FORMAT, body).toString('utf8');
}

export function parseTokenStub(where: string, file: Buffer): TokenStub {
  const opened = openEnvelope(where, file, {
    formats: [TOKEN_STUB_FORMAT],
    what: 'token identity file',
    formatCode: 'E_IDENTITY',
    damagedCode: 'E_IDENTITY',
    hint: HINT,
    maxBytes: MAX_STUB_BYTES,
  });
  if (opened.trailers.length > 0)
    throw new CustosError('E_IDENTITY', `${where} has lines after its body`, HINT);
  const r = new FieldReader('E_IDENTITY', where, HINT);
  const o = r.object(opened.json, 'body');
  const known = ['module', 'libraryParameters', 'profile', 'token', 'key', 'recipient', 'created'];
  const unknown = Object.keys(o).find((k) => !known.includes(k));
  if (unknown !== undefined) throw r.fail(`body.${unknown}`, 'is not a field of this format');
  const text = (v: string, path: string, max = 1024): string => {
    if (v === '' || v.length > max || hasUnsafeText(v))
      throw r.fail(path, `must be plain text of 1 to ${max} characters`);
    return v;
  };
  const module = text(r.string(o, 'module', 'body'), 'body.module');
  if (!module.startsWith('/'))
    throw r.fail('body.module', 'must be an absolute path to the PKCS#11 module');
  const libraryParameters = r.optionalString(o, 'libraryParameters', 'body');
  const profile = r.optionalString(o, 'profile', 'body');
  const t = r.object(o.token, 'body.token');
  const k = r.object(o.key, 'body.key');
  const stub: TokenStub = {
    module,
    ...(libraryParameters !== undefined
      ? { libraryParameters: text(libraryParameters, 'body.libraryParameters', 8192) }
      : {}),
    ...(profile !== undefined ? { profile: text(profile, 'body.profile', 128) } : {}),
    token: {
      label: text(r.string(t, 'label', 'body.token'), 'body.token.label', 32),
      serial: r.string(t, 'serial', 'body.token', /^[\x20-\x7e]{0,16}$/),
    },
    key: {
      id: r.string(k, 'id', 'body.key', HEX),
      label: r.string(k, 'label', 'body.key'),
    },
    recipient: r.string(o, 'recipient', 'body', SSH_RSA_RECIPIENT),
    created: r.timestamp(o, 'created', 'body'),
  };
  if (stub.key.id === '' || stub.key.id.length > 128)
    throw r.fail('body.key.id', "must be the hex of 1 to 64 bytes (the key's CKA_ID)");
  if (stub.key.label.length > 256 || hasUnsafeText(stub.key.label))
    throw r.fail('body.key.label', 'must be plain text of at most 256 characters');
  return stub;
}
