/**
 * Share files are age files (ASCII armor) that the standard `age` CLI opens: to an X25519
 * recipient, a post-quantum hybrid one (`age1pq1…`, age-encryption 0.3), or an `ssh-rsa` one whose
 * private key is on a custodian's token (crypto/ssh-rsa.ts).
 */
import {
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import {
  Decrypter,
  Encrypter,
  armor,
  generateX25519Identity,
  identityToRecipient,
  type Identity,
} from 'age-encryption';
import { CustosError } from '../core/errors.js';
import { SshRsaRecipient, isSshRsaLine, parseSshRsa } from './ssh-rsa.js';
import { wipe } from './wipe.js';

const IDENTITY_LINE = /^AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]+$/;

/** An age recipient string as the age-encryption Encrypter takes it (ssh-rsa made here). */
function recipientFor(recipient: string): string | SshRsaRecipient {
  return isSshRsaLine(recipient)
    ? new SshRsaRecipient(parseSshRsa(recipient, 'the recipient'))
    : recipient;
}

/**
 * True if a trial encryption to the recipient works: the regex alone passes bad checksums and bad
 * points.
 */
export async function isUsableRecipient(recipient: string): Promise<boolean> {
  try {
    await encryptToRecipient(recipient, '');
    return true;
  } catch {
    return false;
  }
}

/** Encrypts text or bytes to one recipient (X25519 or post-quantum hybrid), armored. */
export async function encryptToRecipient(
  recipient: string,
  plaintext: string | Uint8Array,
): Promise<string> {
  const e = new Encrypter();
  e.addRecipient(recipientFor(recipient));
  return armor.encode(await e.encrypt(plaintext));
}

/** Encrypts bytes to one recipient (X25519 or post-quantum hybrid), armored. */
export const encryptBytesToRecipient: (
  recipient: string,
  plaintext: Uint8Array,
) => Promise<string> = encryptToRecipient;

/**
 * Opens an armored age file with one identity given as bytes of its text; null if it does not open.
 */
export async function decryptBytesWithIdentity(
  armored: string,
  identity: Uint8Array,
): Promise<Uint8Array | null> {
  const bytes = unarmored(Buffer.from(armored, 'utf8'));
  if (!bytes) return null;
  const d = new Decrypter();
  d.addIdentity(Buffer.from(identity).toString('ascii'));
  try {
    return await d.decrypt(bytes);
  } catch {
    return null;
  }
}

export interface NamedIdentity {
  /** Where the identity came from (a path), for messages. Never the key itself. */
  source: string;
  /** The age identity line; empty for a key held on a token (`token`). */
  secret: string;
  recipient: string;
  /**
   * A key on a custodian's token (hsm/custodian-key.ts): it opens only its own `ssh-rsa` stanza,
   * asking for the token's PIN then, and throws a CustosError when the token cannot open it.
   */
  token?: Identity;
}

/**
 * Parses an age identity file: comments and blank lines allowed, one or more X25519 or
 * post-quantum hybrid keys.
 */
export async function parseIdentityFile(source: string, text: string): Promise<NamedIdentity[]> {
  const found: NamedIdentity[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (
      line.startsWith('age-encryption.org/') ||
      line.startsWith('-----BEGIN AGE ENCRYPTED FILE')
    ) {
      throw new CustosError(
        'E_IDENTITY',
        `${source} is an encrypted file, not an identity`,
        'pass the file made by age-keygen (it starts with AGE-SECRET-KEY-1)',
      );
    }
    if (!IDENTITY_LINE.test(line)) {
      throw new CustosError(
        'E_IDENTITY',
        `${source} is not an age identity file`,
        'pass the file made by age-keygen (it starts with AGE-SECRET-KEY-1)',
      );
    }
    try {
      found.push({ source, secret: line, recipient: await identityToRecipient(line) });
    } catch {
      throw new CustosError(
        'E_IDENTITY',
        `${source} holds a malformed age identity`,
        'check the file was not truncated or edited',
      );
    }
  }
  if (found.length === 0) {
    throw new CustosError(
      'E_IDENTITY',
      `${source} holds no age identity`,
      'pass the file made by age-keygen',
    );
  }
  return found;
}

export type Opened =
  { plaintext: string; identity: NamedIdentity } | { failure: 'damaged' | 'no-identity' };

/**
 * Opens an age file with whichever identity fits: the plaintext and the identity that opened it,
 * or why none did. An X25519 stanza does not name its recipient, so the identity is found by
 * unwrapping the stanza's file key with each identity's X25519 key (node:crypto, native: tens of
 * microseconds each, against milliseconds for a whole trial decryption), and only the identity
 * that unwraps it decrypts the file. `first` is the index of the identity to try first (restores
 * usually give shares and identities in the same order).
 */
export async function decryptWithAny(
  file: Uint8Array,
  identities: readonly NamedIdentity[],
  first = 0,
): Promise<Opened> {
  const bytes = unarmored(file);
  if (!bytes) return { failure: 'damaged' };
  const stanzas = x25519Stanzas(bytes);
  if (stanzas && stanzas.length > 0 && identities.length > 0) {
    const start = ((first % identities.length) + identities.length) % identities.length;
    let unwrapped = false;
    for (let k = 0; k < identities.length && !unwrapped; k++) {
      const identity = identities[(start + k) % identities.length] as NamedIdentity;
      if (!stanzas.some((st) => unwrapsFileKey(identity, st))) continue;
      unwrapped = true;
      try {
        return { plaintext: await decrypterFor(identity).decrypt(bytes, 'text'), identity };
      } catch {
        // its stanza unwraps but the file does not open (header or payload damaged): judged below,
        // the slow way
      }
    }
    if (!unwrapped) return { failure: 'no-identity' };
  }
  for (const identity of identities) {
    try {
      return { plaintext: await decrypterFor(identity).decrypt(bytes, 'text'), identity };
    } catch (e) {
      // A token that holds this file's key but cannot open it (absent, wrong PIN) says why.
      if (e instanceof CustosError) throw e;
      // not this identity (or not an age file at all): try the next one
    }
  }
  return { failure: 'no-identity' };
}

/** One Decrypter per identity, reused: making one derives the identity's public key again. */
const decrypters = new WeakMap<NamedIdentity, Decrypter>();
function decrypterFor(identity: NamedIdentity): Decrypter {
  let d = decrypters.get(identity);
  if (!d) {
    d = new Decrypter();
    d.addIdentity(identity.token ?? identity.secret);
    decrypters.set(identity, d);
  }
  return d;
}

interface X25519Stanza {
  ephemeral: Buffer;
  /** The ephemeral share as node:crypto's key, made once per file. */
  peer: KeyObject;
  body: Buffer;
}

const AGE_HEADER = 'age-encryption.org/v1\n';
const MAX_HEADER = 64 * 1024;

/**
 * The X25519 stanzas of a binary age file's header, or null when the header cannot be read this
 * way.
 */
function x25519Stanzas(bytes: Uint8Array): X25519Stanza[] | null {
  const head = Buffer.from(bytes.subarray(0, MAX_HEADER)).toString('latin1');
  if (!head.startsWith(AGE_HEADER)) return null;
  const end = head.indexOf('\n--- ');
  if (end < 0) return null;
  const lines = head
    .slice(AGE_HEADER.length, end + 1)
    .split('\n')
    .slice(0, -1);
  const out: X25519Stanza[] = [];
  for (let i = 0; i < lines.length;) {
    const args = (lines[i] as string).split(' ');
    if (args[0] !== '->') return null;
    let body = '';
    for (i++; ; i++) {
      const line = lines[i];
      if (line === undefined) return null;
      body += line;
      if (line.length < 64) {
        i++;
        break;
      }
    }
    if (args[1] === 'X25519' && args.length === 3) {
      const ephemeral = Buffer.from(args[2] as string, 'base64');
      const wrapped = Buffer.from(body, 'base64');
      if (ephemeral.length !== 32 || wrapped.length !== 32) continue;
      try {
        out.push({
          ephemeral,
          body: wrapped,
          peer: createPublicKey({
            key: Buffer.concat([X25519_SPKI_PREFIX, ephemeral]),
            format: 'der',
            type: 'spki',
          }),
        });
      } catch {
        // not a point node:crypto reads: no identity unwraps this stanza
      }
    }
  }
  return out;
}

const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_LABEL = 'age-encryption.org/v1/X25519';

/** An identity's X25519 key as node:crypto holds it, and its public key, made once. */
const nativeKeys = new WeakMap<
  NamedIdentity,
  { privateKey: KeyObject; publicKey: Buffer } | null
>();
function nativeKey(identity: NamedIdentity): { privateKey: KeyObject; publicKey: Buffer } | null {
  if (nativeKeys.has(identity)) return nativeKeys.get(identity) ?? null;
  let key: { privateKey: KeyObject; publicKey: Buffer } | null = null;
  const scalar = bech32Data(identity.secret);
  if (scalar && scalar.length === 32) {
    try {
      const privateKey = createPrivateKey({
        key: Buffer.concat([X25519_PKCS8_PREFIX, scalar]),
        format: 'der',
        type: 'pkcs8',
      });
      const publicKey = Buffer.from(
        createPublicKey(privateKey)
          .export({ format: 'der', type: 'spki' })
          .subarray(X25519_SPKI_PREFIX.length),
      );
      key = { privateKey, publicKey };
    } catch {
      key = null;
    }
    wipe(scalar);
  }
  nativeKeys.set(identity, key);
  return key;
}

/**
 * True when the identity unwraps the stanza's file key: age's X25519 recipient, done with
 * node:crypto.
 */
function unwrapsFileKey(identity: NamedIdentity, stanza: X25519Stanza): boolean {
  const key = nativeKey(identity);
  if (!key) return false;
  try {
    const shared = diffieHellman({ privateKey: key.privateKey, publicKey: stanza.peer });
    const wrapKey = Buffer.from(
      hkdfSync(
        'sha256',
        shared,
        Buffer.concat([stanza.ephemeral, key.publicKey]),
        X25519_LABEL,
        32,
      ),
    );
    wipe(shared);
    const d = createDecipheriv('chacha20-poly1305', wrapKey, Buffer.alloc(12), {
      authTagLength: 16,
    });
    d.setAuthTag(stanza.body.subarray(16));
    const fileKey = Buffer.concat([d.update(stanza.body.subarray(0, 16)), d.final()]);
    wipe(fileKey);
    wipe(wrapKey);
    return true;
  } catch {
    return false;
  }
}

const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

/**
 * The data bytes of a bech32 string (its checksum is not checked: the identity was parsed by age
 * first).
 */
function bech32Data(text: string): Buffer | null {
  const lower = text.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (sep < 1 || lower.length - sep < 8) return null;
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of lower.slice(sep + 1, -6)) {
    const v = BECH32.indexOf(c);
    if (v < 0) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

function looksArmored(file: Uint8Array): boolean {
  return Buffer.from(file.subarray(0, 40))
    .toString('latin1')
    .startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
}

/**
 * The binary age file, from armor or as it is; null when the armor does not decode (truncated or
 * edited).
 */
function unarmored(file: Uint8Array): Uint8Array | null {
  if (!looksArmored(file)) return file;
  try {
    return armor.decode(Buffer.from(file).toString('utf8'));
  } catch {
    return null;
  }
}

export async function newIdentity(): Promise<{ secret: string; recipient: string }> {
  const secret = await generateX25519Identity();
  return { secret, recipient: await identityToRecipient(secret) };
}

/**
 * True for an age file encrypted with a passphrase (its only stanza is scrypt), as `age -p` writes.
 */
export function isPassphraseFile(file: Uint8Array): boolean {
  const bytes = unarmored(file);
  return (
    !!bytes &&
    Buffer.from(bytes.subarray(0, 64))
      .toString('latin1')
      .startsWith('age-encryption.org/v1\n-> scrypt ')
  );
}

/**
 * Opens a file encrypted with a passphrase (age's scrypt recipient); null if the passphrase is
 * wrong.
 */
export async function decryptWithPassphrase(
  file: Uint8Array,
  passphrase: string,
): Promise<string | null> {
  const bytes = unarmored(file);
  if (!bytes) return null;
  const d = new Decrypter();
  d.addPassphrase(passphrase);
  try {
    return await d.decrypt(bytes, 'text');
  } catch {
    return null;
  }
}
