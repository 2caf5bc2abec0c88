/**
 * Key generation inside a token, for the demo and the benchmark: every security attribute explicit.
 */
import { P, hsmError, type Handle } from './module.js';
import type { Token } from './token.js';
import { unwrapTemplate, type Attr } from './attributes.js';

export interface SecretSpec {
  label: string;
  id: string;
  keyType: 'AES' | 'GENERIC_SECRET';
  bytes: number;
  extractable: boolean;
}

export function generateSecretKey(token: Token, spec: SecretSpec): Handle {
  const aes = spec.keyType === 'AES';
  // The attributes of a restored key: on the token, private, sensitive, every usage explicit.
  const template: Attr[] = [
    ...unwrapTemplate({
      class: 'secret',
      keyType: spec.keyType,
      label: spec.label,
      id: spec.id,
      extractable: spec.extractable,
      usage: aes ? { encrypt: true, decrypt: true } : { sign: true, verify: true },
    }),
    { type: P.CKA_VALUE_LEN, value: spec.bytes },
  ];
  try {
    return token.lib.C_GenerateKey(
      token.session,
      { mechanism: aes ? P.CKM_AES_KEY_GEN : P.CKM_GENERIC_SECRET_KEY_GEN },
      template,
    );
  } catch (e) {
    throw hsmError(e, `generate key "${spec.label}"`);
  }
}

export interface KeyPairSpec {
  label: string;
  id: string;
  keyType: 'RSA' | 'EC';
  /** RSA modulus bits. */
  bits?: number;
  /** EC parameters, DER hex (a named curve OID). */
  ecParams?: string;
  extractable: boolean;
}

export function generateKeyPair(
  token: Token,
  spec: KeyPairSpec,
): { publicKey: Handle; privateKey: Handle } {
  const common = (priv: boolean): Attr[] => [
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: priv },
    { type: P.CKA_LABEL, value: spec.label },
    { type: P.CKA_ID, value: Buffer.from(spec.id, 'hex') },
  ];
  const publicTemplate: Attr[] = [
    ...common(false),
    { type: P.CKA_VERIFY, value: true },
    { type: P.CKA_ENCRYPT, value: false },
    { type: P.CKA_WRAP, value: false },
  ];
  const privateTemplate: Attr[] = [
    ...common(true),
    { type: P.CKA_SIGN, value: true },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: spec.extractable },
  ];
  if (spec.keyType === 'RSA') {
    publicTemplate.push(
      { type: P.CKA_MODULUS_BITS, value: spec.bits ?? 2048 },
      { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
    );
  } else {
    publicTemplate.push({
      type: P.CKA_EC_PARAMS,
      value: Buffer.from(spec.ecParams ?? '06082a8648ce3d030107', 'hex'),
    });
  }
  const mechanism = spec.keyType === 'RSA' ? P.CKM_RSA_PKCS_KEY_PAIR_GEN : P.CKM_EC_KEY_PAIR_GEN;
  try {
    return token.lib.C_GenerateKeyPair(
      token.session,
      { mechanism },
      publicTemplate,
      privateTemplate,
    );
  } catch (e) {
    throw hsmError(e, `generate key pair "${spec.label}"`);
  }
}
