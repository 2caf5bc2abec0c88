/**
 * Choosing the keys to back up or copy, and recording each one wrapped, with what it needs to be
 * recreated.
 */
import { isSelected, type KeySelection } from '../core/policy.js';
import type { KeyRecord, PublicKeyRecord, SkippedKey } from '../core/keys.js';
import type { Handle } from '../hsm/module.js';
import type { CertificateObject, KeyObject, Token, TokenContents } from '../hsm/token.js';
import { checkValueOf, matchingPublicKey } from './check-values.js';

export interface Selection {
  chosen: KeyObject[];
  skipped: SkippedKey[];
}

function sameKeyPair(key: KeyObject, other: { id: string; label: string }): boolean {
  return key.id !== '' ? other.id === key.id : other.label === key.label;
}

/**
 * Decides, key by key in the token's order, which keys a backup takes and why it skips the others.
 */
class Chooser {
  readonly skipped: SkippedKey[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly selection: KeySelection) {}

  /**
   * True if the key is taken; false if it is not selected, or skipped (and then recorded as
   * skipped).
   */
  take(k: KeyObject): boolean {
    if (k.class === 'public' || !isSelected(k.label, this.selection)) return false;
    const skip = (reason: string) => {
      this.skipped.push({ class: k.class, keyType: k.keyType, label: k.label, id: k.id, reason });
      return false;
    };
    const identity = `${k.class}/${k.label}/${k.id}`;
    const seen = this.seen.has(identity);
    this.seen.add(identity);
    if (!k.extractable)
      return skip(
        'not extractable (CKA_EXTRACTABLE is false): the HSM will not release it, even wrapped',
      );
    if (!k.labelIsText)
      return skip(
        'its label is not UTF-8 text, so the bundle could not record it exactly; relabel the key first',
      );
    if (seen)
      return skip(
        'another key of the same class has the same label and id; give each key a distinct CKA_ID',
      );
    return true;
  }
}

const byLabelAndId = (a: { label: string; id: string }, b: { label: string; id: string }) =>
  a.label.localeCompare(b.label) || a.id.localeCompare(b.id);

export function selectKeys(keys: readonly KeyObject[], selection: KeySelection): Selection {
  const chooser = new Chooser(selection);
  const chosen = keys.filter((k) => chooser.take(k));
  chosen.sort(byLabelAndId);
  return { chosen, skipped: chooser.skipped };
}

function publicRecord(p: KeyObject): PublicKeyRecord {
  return {
    label: p.label,
    keyType: p.keyType,
    usage: p.usage,
    modulus: p.modulus,
    publicExponent: p.publicExponent,
    ecParams: p.ecParams,
    ecPoint: p.ecPoint,
  };
}

/**
 * One key's record: wrapped inside the token under `wrappingKey`, with what it needs to be
 * recreated and proved.
 */
function recordOf(
  token: Token,
  wrappingKey: Handle,
  k: KeyObject,
  publics: readonly KeyObject[],
  certificates: readonly CertificateObject[],
): KeyRecord {
  const pub = k.class === 'private' ? matchingPublicKey(publics, k) : undefined;
  const wrapped = token.wrap(wrappingKey, k);
  return {
    class: k.class as KeyRecord['class'],
    keyType: k.keyType,
    label: k.label,
    id: k.id,
    bits: k.bits,
    usage: k.usage,
    private: k.private,
    sensitive: k.sensitive,
    extractable: k.extractable,
    ecParams: k.ecParams,
    modulus: k.modulus,
    publicExponent: k.publicExponent,
    checkValue: checkValueOf(token, k, pub),
    wrapped: wrapped.toString('base64'),
    publicKey: pub ? publicRecord(pub) : undefined,
    certificates: certificates
      .filter((c) => sameKeyPair(k, c))
      .map((c) => ({
        label: c.label,
        value: c.value.toString('base64'),
        subject: c.subject,
        issuer: c.issuer,
        serialNumber: c.serialNumber,
      })),
  };
}

/**
 * Wraps each selected key inside the token under `wrappingKey` (RFC 5649) and records everything
 * needed to recreate and prove it, with the public key and certificates that travel beside it.
 */
export function recordKeys(
  token: Token,
  wrappingKey: Handle,
  selection: Selection,
  contents: TokenContents,
  progress: (n: number) => void,
): KeyRecord[] {
  const publics = contents.keys.filter((k) => k.class === 'public');
  return selection.chosen.map((k, i) => {
    if (i % 256 === 0) progress(i);
    return recordOf(token, wrappingKey, k, publics, contents.certificates);
  });
}

/**
 * The same as selectKeys, then recordKeys, in one pass over the token: each key is described,
 * chosen or skipped, and wrapped and recorded before the next is read, so that a token of tens of
 * thousands of keys is never held in memory as objects, only as records. Records come sorted by
 * label and id, as selectKeys sorts.
 */
export function recordTokenKeys(
  token: Token,
  wrappingKey: Handle,
  selection: KeySelection,
  progress: (n: number) => void,
): { keys: KeyRecord[]; skipped: SkippedKey[] } {
  const publics: KeyObject[] = [];
  token.forEachKey('public', (k) => publics.push(k));
  const certificates = token.certificates();
  const chooser = new Chooser(selection);
  const keys: KeyRecord[] = [];
  const filter = labelFilter(selection);
  for (const cls of ['secret', 'private'] as const) {
    token.forEachKey(
      cls,
      (k) => {
        if (!chooser.take(k)) return;
        if (keys.length % 256 === 0) progress(keys.length);
        keys.push(recordOf(token, wrappingKey, k, publics, certificates));
      },
      filter,
    );
  }
  keys.sort(byLabelAndId);
  return { keys, skipped: chooser.skipped };
}

/** A label filter for Token.contents, or none when the selection takes every label anyway. */
export function labelFilter(selection: KeySelection): ((label: string) => boolean) | undefined {
  const everything = selection.exclude.length === 0 && selection.include.includes('*');
  return everything ? undefined : (label) => isSelected(label, selection);
}
