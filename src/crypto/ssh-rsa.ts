/**
 * age's `ssh-rsa` recipient (age-encryption.org/v1, "ssh-rsa"): the file key is encrypted with
 * RSA-OAEP, SHA-256 and MGF1-SHA-256, label `age-encryption.org/v1/ssh-rsa`, and the stanza is
 * tagged with the first four bytes of SHA-256 of the key's SSH wire form. The stock `age` CLI
 * encrypts and decrypts it, so a share file made for a custodian's token key is an ordinary age
 * file. Encryption is node:crypto's; the OAEP decoding a token cannot do itself (one that offers
 * only raw RSA) is node-forge's.
 */
import { createHash, constants, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { Stanza, type Recipient } from 'age-encryption';
import { CustosError } from '../core/errors.js';
import { wipe } from './wipe.js';

export const SSH_RSA_LABEL = 'age-encryption.org/v1/ssh-rsa';
export const SSH_RSA_TYPE = 'ssh-rsa';
/** The smallest modulus custos writes shares to. */
export const MIN_RSA_BITS = 2048;
/** The largest it reads (age's own limit is 16384). */
export const MAX_RSA_BITS = 8192;

/** A custodian's RSA public key as the policy names it: `ssh-rsa AAAA…` (no comment). */
export interface SshRsaKey {
  /** The canonical recipient line, `ssh-rsa BASE64`. */
  line: string;
  /** The SSH wire form (string "ssh-rsa", mpint e, mpint n). */
  wire: Buffer;
  /** The stanza tag: base64 (no padding) of the first 4 bytes of SHA-256 of `wire`. */
  tag: string;
  modulus: Buffer;
  exponent: Buffer;
  bits: number;
  key: KeyObject;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** An unsigned big-endian integer as an SSH mpint: no leading zeros, a zero before a high bit. */
function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const trimmed = unsigned.subarray(i);
  return sshString(
    trimmed.length > 0 && ((trimmed[0] as number) & 0x80) !== 0
      ? Buffer.concat([Buffer.from([0]), trimmed])
      : trimmed,
  );
}

const bitLength = (n: Buffer): number => {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i] as number));
};

/** The recipient line of an RSA public key given by its modulus and exponent (big-endian). */
export function sshRsaFromParts(modulus: Buffer, exponent: Buffer): SshRsaKey {
  const wire = Buffer.concat([
    sshString(Buffer.from(SSH_RSA_TYPE)),
    mpint(exponent),
    mpint(modulus),
  ]);
  return parseSshRsa(`${SSH_RSA_TYPE} ${wire.toString('base64')}`, 'the token key');
}

const LINE = /^ssh-rsa ([A-Za-z0-9+/]+={0,2})$/;

/**
 * Reads `ssh-rsa BASE64` (the form a policy holds): the wire form must be exactly one ssh-rsa key
 * of MIN_RSA_BITS to MAX_RSA_BITS bits with an odd exponent, spelled canonically.
 */
export function parseSshRsa(line: string, what: string): SshRsaKey {
  const bad = (why: string) =>
    new CustosError(
      'E_IDENTITY',
      `${what} is not a usable ssh-rsa recipient: ${why}`,
      'use the recipient line custos custodian enroll printed (ssh-rsa AAAA…, without a comment)',
    );
  const m = LINE.exec(line);
  if (!m) throw bad('it is not of the form "ssh-rsa BASE64"');
  const wire = Buffer.from(m[1] as string, 'base64');
  if (wire.toString('base64') !== m[1]) throw bad('its base64 is not canonical');
  const fields: Buffer[] = [];
  let at = 0;
  while (at < wire.length) {
    if (at + 4 > wire.length || fields.length === 3) throw bad('its key data is malformed');
    const len = wire.readUInt32BE(at);
    if (at + 4 + len > wire.length) throw bad('its key data is truncated');
    fields.push(wire.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  const [type, e, n] = fields;
  if (!type || !e || !n || type.toString('latin1') !== SSH_RSA_TYPE)
    throw bad('it does not hold an ssh-rsa key');
  for (const [name, v] of [
    ['exponent', e],
    ['modulus', n],
  ] as const) {
    if (v.length === 0 || ((v[0] as number) & 0x80) !== 0) throw bad(`its ${name} is not positive`);
    if (v.length > 1 && v[0] === 0 && ((v[1] as number) & 0x80) === 0)
      throw bad(`its ${name} is not in canonical form`);
  }
  const bits = bitLength(n);
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS)
    throw bad(`its modulus is ${bits} bits; custos takes ${MIN_RSA_BITS} to ${MAX_RSA_BITS}`);
  if (((e[e.length - 1] as number) & 1) === 0 || bitLength(e) < 2 || e.length > 8)
    throw bad('its public exponent is not an odd number above 1');
  const unsigned = (v: Buffer) => (v[0] === 0 ? v.subarray(1) : v);
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: {
        kty: 'RSA',
        n: unsigned(n).toString('base64url'),
        e: unsigned(e).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    throw bad('node:crypto does not read it as an RSA key');
  }
  return {
    line,
    wire,
    tag: createHash('sha256')
      .update(wire)
      .digest()
      .subarray(0, 4)
      .toString('base64')
      .replace(/=+$/, ''),
    modulus: Buffer.from(unsigned(n)),
    exponent: Buffer.from(unsigned(e)),
    bits,
    key,
  };
}

export function isSshRsaLine(text: string): boolean {
  return text.startsWith(`${SSH_RSA_TYPE} `);
}

/** The age recipient: wraps the file key with RSA-OAEP-SHA256 (node:crypto). */
export class SshRsaRecipient implements Recipient {
  constructor(readonly key: SshRsaKey) {}

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const body = publicEncrypt(
      {
        key: this.key.key,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
        oaepLabel: Buffer.from(SSH_RSA_LABEL),
      },
      fileKey,
    );
    return [new Stanza([SSH_RSA_TYPE, this.key.tag], body)];
  }
}

/** The ssh-rsa stanzas of a file header that are for this key (by tag). */
export function stanzasFor(key: SshRsaKey, stanzas: readonly Stanza[]): Stanza[] {
  return stanzas.filter(
    (s) => s.args[0] === SSH_RSA_TYPE && s.args.length === 2 && s.args[1] === key.tag,
  );
}

/** node-forge's PKCS#1 module (its type definitions leave it out). */
interface Pkcs1 {
  decode_rsa_oaep(
    key: forge.pki.rsa.PublicKey,
    em: string,
    options: { label: string; md: forge.md.MessageDigest; mgf1: { md: forge.md.MessageDigest } },
  ): string;
}

/**
 * Finishes RSA-OAEP on the host: `em` is the raw RSA result (c^d mod n) from a token that offers
 * only CKM_RSA_X_509. node-forge checks the padding (SHA-256, MGF1-SHA-256, the age label); null
 * when it does not decode, which for a stanza whose tag matched means a damaged or forged stanza.
 */
export function decodeOaep(key: SshRsaKey, raw: Buffer): Buffer | null {
  const k = Math.ceil(key.bits / 8);
  if (raw.length > k) return null;
  const em = Buffer.concat([Buffer.alloc(k - raw.length), raw]);
  const publicKey = forge.pki.setRsaPublicKey(
    new forge.jsbn.BigInteger(key.modulus.toString('hex'), 16),
    new forge.jsbn.BigInteger(key.exponent.toString('hex'), 16),
  );
  try {
    const decoded = (forge as unknown as { pkcs1: Pkcs1 }).pkcs1.decode_rsa_oaep(
      publicKey,
      em.toString('binary'),
      {
        label: SSH_RSA_LABEL,
        md: forge.md.sha256.create(),
        mgf1: { md: forge.md.sha256.create() },
      },
    );
    return Buffer.from(decoded, 'binary');
  } catch {
    return null;
  } finally {
    wipe(em);
  }
}
