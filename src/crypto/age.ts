/** Share files are age files (X25519 recipients, ASCII armor) that the standard `age` CLI opens. */
import { Decrypter, Encrypter, armor, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { CustosError } from '../core/errors.js';

const IDENTITY_LINE = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;

/** True if a trial encryption to the recipient works: the regex alone passes bad checksums and bad points. */
export async function isUsableRecipient(recipient: string): Promise<boolean> {
  try {
    await encryptToRecipient(recipient, '');
    return true;
  } catch {
    return false;
  }
}

export async function encryptToRecipient(recipient: string, plaintext: string): Promise<string> {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return armor.encode(await e.encrypt(plaintext));
}

/** Encrypts bytes to one recipient (X25519 or post-quantum hybrid), armored. */
export async function encryptBytesToRecipient(recipient: string, plaintext: Uint8Array): Promise<string> {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return armor.encode(await e.encrypt(plaintext));
}

/** Opens an armored age file with one identity given as bytes of its text; null if it does not open. */
export async function decryptBytesWithIdentity(armored: string, identity: Uint8Array): Promise<Uint8Array | null> {
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
  secret: string;
  recipient: string;
}

/** Parses an age identity file: comments and blank lines allowed, one or more X25519 keys. */
export async function parseIdentityFile(source: string, text: string): Promise<NamedIdentity[]> {
  const found: NamedIdentity[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('age-encryption.org/') || line.startsWith('-----BEGIN AGE ENCRYPTED FILE')) {
      throw new CustosError('E_IDENTITY', `${source} is an encrypted file, not an identity`,
        'pass the file made by age-keygen (it starts with AGE-SECRET-KEY-1)');
    }
    if (!IDENTITY_LINE.test(line)) {
      throw new CustosError('E_IDENTITY', `${source} is not an age identity file`,
        'pass the file made by age-keygen (it starts with AGE-SECRET-KEY-1)');
    }
    try {
      found.push({ source, secret: line, recipient: await identityToRecipient(line) });
    } catch {
      throw new CustosError('E_IDENTITY', `${source} holds a malformed age identity`, 'check the file was not truncated or edited');
    }
  }
  if (found.length === 0) {
    throw new CustosError('E_IDENTITY', `${source} holds no age identity`, 'pass the file made by age-keygen');
  }
  return found;
}

export type Opened = { plaintext: string; identity: NamedIdentity } | { failure: 'damaged' | 'no-identity' };

/** Tries each identity in turn: the plaintext and the identity that opened it, or why none did. */
export async function decryptWithAny(file: Uint8Array, identities: readonly NamedIdentity[]): Promise<Opened> {
  const bytes = unarmored(file);
  if (!bytes) return { failure: 'damaged' };
  for (const identity of identities) {
    const d = new Decrypter();
    d.addIdentity(identity.secret);
    try {
      return { plaintext: await d.decrypt(bytes, 'text'), identity };
    } catch {
      // not this identity (or not an age file at all): try the next one
    }
  }
  return { failure: 'no-identity' };
}

function looksArmored(file: Uint8Array): boolean {
  return Buffer.from(file.subarray(0, 40)).toString('latin1').startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
}

/** The binary age file, from armor or as it is; null when the armor does not decode (truncated or edited). */
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

/** True for an age file encrypted with a passphrase (its only stanza is scrypt), as `age -p` writes. */
export function isPassphraseFile(file: Uint8Array): boolean {
  const bytes = unarmored(file);
  return !!bytes && Buffer.from(bytes.subarray(0, 64)).toString('latin1').startsWith('age-encryption.org/v1\n-> scrypt ');
}

/** Opens a file encrypted with a passphrase (age's scrypt recipient); null if the passphrase is wrong. */
export async function decryptWithPassphrase(file: Uint8Array, passphrase: string): Promise<string | null> {
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
