/**
 * An escrow domain's signing key inside a source HSM: an ECDSA P-256 key pair made on the token,
 * private half sensitive, never extractable, able only to sign. Bundles made on that token are
 * signed with it, so a bundle sealed to a (public) domain file cannot be forged off the HSM.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ecSpki } from '../core/der.js';
import { CustosError } from '../core/errors.js';
import { P, call, type Handle } from './call.js';
import { destroyObject, findObjects, readValues } from './objects.js';
import { NEVER_LEAVES, onlyUsage, type Attr } from './attributes.js';
import type { Token } from './token.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

export interface DomainSigningKey {
  /** CKA_ID, hex. */
  keyId: string;
  /** SubjectPublicKeyInfo DER, base64. */
  publicKey: string;
}

export function domainKeyLabel(domainId: string): string {
  return `custos-domain-${domainId}`;
}

export function isDomainKeyLabel(label: string): boolean {
  return /^custos-domain-[0-9a-f]{32}$/.test(label);
}

/** The token's signing keys for this domain (normally one), with their public halves. */
export function domainSigningKeys(token: Token, domainId: string): DomainSigningKey[] {
  const label = domainKeyLabel(domainId);
  const keys: DomainSigningKey[] = [];
  for (const handle of findObjects(token, [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_TOKEN, value: true },
  ])) {
    const [id, params, point] = readValues(token, handle, [
      P.CKA_ID,
      P.CKA_EC_PARAMS,
      P.CKA_EC_POINT,
    ]);
    const keyId = id?.toString('hex') ?? '';
    if (!params?.equals(P256) || !point || keyId === '') continue;
    if (privateHandle(token, domainId, keyId) === null) continue;
    keys.push({ keyId, publicKey: ecSpki(params, point).toString('base64') });
  }
  return keys;
}

function privateHandle(token: Token, domainId: string, keyId: string): Handle | null {
  const [handle] = findObjects(token, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_LABEL, value: domainKeyLabel(domainId) },
    { type: P.CKA_ID, value: Buffer.from(keyId, 'hex') },
    { type: P.CKA_TOKEN, value: true },
  ]);
  return handle ?? null;
}

/** Makes the domain's signing key pair on the token; every security attribute is set explicitly. */
export function createDomainSigningKey(token: Token, domainId: string): DomainSigningKey {
  const label = domainKeyLabel(domainId);
  const id = randomBytes(16);
  const common: Attr[] = [
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_ID, value: id },
  ];
  const publicTemplate: Attr[] = [
    ...common,
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_EC_PARAMS, value: P256 },
    ...onlyUsage(['verify'], ['verify', 'encrypt', 'wrap', 'derive']),
  ];
  const privateTemplate: Attr[] = [
    ...common,
    ...NEVER_LEAVES,
    ...onlyUsage(['sign'], ['sign', 'signRecover', 'decrypt', 'unwrap', 'derive']),
  ];
  call(`make the domain signing key on token "${token.identity.label}"`, () =>
    token.lib.C_GenerateKeyPair(
      token.session,
      { mechanism: P.CKM_EC_KEY_PAIR_GEN },
      publicTemplate,
      privateTemplate,
    ),
  );
  const made = domainSigningKeys(token, domainId).find((k) => k.keyId === id.toString('hex'));
  if (!made)
    throw new CustosError(
      'E_HSM',
      `token "${token.identity.label}" did not keep the domain signing key it made`,
      'check the token has space, then run the command again',
    );
  return made;
}

/** ECDSA P-256 over SHA-256 of the data, made inside the token: r ‖ s, 64 bytes. */
export function signWithDomainKey(
  token: Token,
  domainId: string,
  key: DomainSigningKey,
  data: Uint8Array,
): Buffer {
  const handle = privateHandle(token, domainId, key.keyId);
  if (!handle)
    throw new CustosError(
      'E_HSM',
      `the domain signing key is gone from token "${token.identity.label}"`,
      'enrol the token again: custos domain enroll',
    );
  return call(`sign with the domain signing key on token "${token.identity.label}"`, () => {
    token.lib.C_SignInit(token.session, { mechanism: P.CKM_ECDSA }, handle);
    return Buffer.from(
      token.lib.C_Sign(
        token.session,
        createHash('sha256').update(data).digest(),
        Buffer.alloc(132),
      ),
    );
  });
}

/** Removes a signing key pair this run made, when the run fails before the domain records it. */
export function destroyDomainSigningKey(
  token: Token,
  domainId: string,
  key: DomainSigningKey,
): void {
  const label = domainKeyLabel(domainId);
  for (const cls of [P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY]) {
    for (const handle of findObjects(token, [
      { type: P.CKA_CLASS, value: cls },
      { type: P.CKA_LABEL, value: label },
      { type: P.CKA_ID, value: Buffer.from(key.keyId, 'hex') },
    ])) {
      destroyObject(token, handle);
    }
  }
}
