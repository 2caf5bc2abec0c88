/** Choosing the keys to back up or copy, and recording each one wrapped, with what it needs to be recreated. */
import { isSelected, type KeySelection } from '../core/policy.js';
import type { KeyRecord, PublicKeyRecord, SkippedKey } from '../core/keys.js';
import type { Handle } from '../hsm/module.js';
import type { KeyObject, Token, TokenContents } from '../hsm/token.js';
import { checkValueOf, matchingPublicKey } from './check-values.js';

export interface Selection {
  chosen: KeyObject[];
  skipped: SkippedKey[];
}

function sameKeyPair(key: KeyObject, other: { id: string; label: string }): boolean {
  return key.id !== '' ? other.id === key.id : other.label === key.label;
}

export function selectKeys(keys: readonly KeyObject[], selection: KeySelection): Selection {
  const chosen: KeyObject[] = [];
  const skipped: SkippedKey[] = [];
  const seen = new Set<string>();
  for (const k of keys) {
    if (k.class === 'public' || !isSelected(k.label, selection)) continue;
    const skip = (reason: string) => skipped.push({ class: k.class, keyType: k.keyType, label: k.label, id: k.id, reason });
    const identity = `${k.class}/${k.label}/${k.id}`;
    if (!k.extractable) skip('not extractable (CKA_EXTRACTABLE is false): the HSM will not release it, even wrapped');
    else if (!k.labelIsText) skip('its label is not UTF-8 text, so the bundle could not record it exactly; relabel the key first');
    else if (seen.has(identity)) skip('another key of the same class has the same label and id; give each key a distinct CKA_ID');
    else chosen.push(k);
    seen.add(identity);
  }
  chosen.sort((a, b) => a.label.localeCompare(b.label) || a.id.localeCompare(b.id));
  return { chosen, skipped };
}

function publicRecord(p: KeyObject): PublicKeyRecord {
  return { label: p.label, keyType: p.keyType, usage: p.usage, modulus: p.modulus, publicExponent: p.publicExponent, ecParams: p.ecParams, ecPoint: p.ecPoint };
}

/**
 * Wraps each selected key inside the token under `wrappingKey` (AES-KWP) and records everything
 * needed to recreate and prove it, with the public key and certificates that travel beside it.
 */
export function recordKeys(token: Token, wrappingKey: Handle, selection: Selection, contents: TokenContents, progress: (n: number) => void): KeyRecord[] {
  const publics = contents.keys.filter((k) => k.class === 'public');
  const certificates = contents.certificates;
  return selection.chosen.map((k, i) => {
    const pub = k.class === 'private' ? matchingPublicKey(publics, k) : undefined;
    const wrapped = token.wrap(wrappingKey, k);
    if (i % 256 === 0) progress(i);
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
      certificates: certificates.filter((c) => sameKeyPair(k, c)).map((c) => ({
        label: c.label, value: c.value.toString('base64'), subject: c.subject, issuer: c.issuer, serialNumber: c.serialNumber,
      })),
    };
  });
}

/** A label filter for Token.contents, or none when the selection takes every label anyway. */
export function labelFilter(selection: KeySelection): ((label: string) => boolean) | undefined {
  const everything = selection.exclude.length === 0 && selection.include.includes('*');
  return everything ? undefined : (label) => isSelected(label, selection);
}
