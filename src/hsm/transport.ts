/**
 * The transport between two tokens for an HSM-to-HSM copy: an RSA key pair made inside the
 * receiving token (its private half never leaves it), an ephemeral AES-256 key made inside the
 * sending token and wrapped to the transport public key, and AES-KWP for the keys themselves.
 * Every object here is a session object: gone when the run ends, also on failure.
 */
import { CustosError } from '../core/errors.js';
import { P, hsmError, pkcs11Code, type Handle } from './module.js';
import type { Token } from './token.js';
import { sessionAesTemplate, type Attr } from './attributes.js';

export interface TransportMechanism {
  name: string;
  /** OAEP hash and MGF for wrapping the ephemeral key; null for a mechanism pkcs11js cannot drive. */
  oaep: { hashAlg: number; mgf: number } | null;
}

/** In order of preference. CKM_RSA_AES_KEY_WRAP needs CK_RSA_AES_KEY_WRAP_PARAMS, which pkcs11js cannot pass. */
export const TRANSPORT_MECHANISMS: readonly TransportMechanism[] = [
  { name: 'RSA-OAEP-SHA256 + AES-KWP', oaep: { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256 } },
  { name: 'RSA-OAEP-SHA1 + AES-KWP', oaep: { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1 } },
];

export const CKM_RSA_AES_KEY_WRAP = 0x1054;
const CKZ_DATA_SPECIFIED = 1;

function oaepMechanism(m: TransportMechanism): { mechanism: number; parameter: object } {
  if (!m.oaep) throw new CustosError('E_MECHANISM', `${m.name} cannot be used through pkcs11js`);
  return { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: m.oaep.hashAlg, mgf: m.oaep.mgf, source: CKZ_DATA_SPECIFIED } };
}

/** True if the token lists the mechanism with the given flag (CKF_WRAP, CKF_UNWRAP, ...). */
export function offers(token: Token, mechanism: number, flag: number): boolean {
  try {
    return (token.lib.C_GetMechanismInfo(token.slot, mechanism).flags & flag) !== 0;
  } catch (e) {
    if (pkcs11Code(e) === P.CKR_MECHANISM_INVALID) return false;
    throw hsmError(e, 'list its mechanisms');
  }
}

export interface TransportKeyPair {
  publicKey: Handle;
  privateKey: Handle;
  modulus: Buffer;
  publicExponent: Buffer;
}

/** An RSA-3072 pair in the receiving token: the private half may only unwrap and never leaves. */
export function generateTransportKeyPair(token: Token): TransportKeyPair {
  const common: Attr[] = [{ type: P.CKA_TOKEN, value: false }, { type: P.CKA_LABEL, value: 'custos transport key' }];
  try {
    const pair = token.lib.C_GenerateKeyPair(token.session, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN }, [
      ...common,
      { type: P.CKA_MODULUS_BITS, value: 3072 },
      { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: P.CKA_WRAP, value: true },
      { type: P.CKA_ENCRYPT, value: false },
      { type: P.CKA_VERIFY, value: false },
    ], [
      ...common,
      { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false },
      { type: P.CKA_UNWRAP, value: true },
      { type: P.CKA_DECRYPT, value: false },
      { type: P.CKA_SIGN, value: false },
      { type: P.CKA_DERIVE, value: false },
    ]);
    const [modulus, exponent] = token.lib.C_GetAttributeValue(token.session, pair.publicKey, [{ type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]);
    return { ...pair, modulus: modulus?.value as Buffer, publicExponent: exponent?.value as Buffer };
  } catch (e) {
    throw hsmError(e, `generate a transport key pair in token "${token.identity.label}"`);
  }
}

/** The transport public key, imported into the sending token as a session object that may only wrap. */
export function importTransportPublicKey(token: Token, pair: Pick<TransportKeyPair, 'modulus' | 'publicExponent'>): Handle {
  try {
    return token.lib.C_CreateObject(token.session, [
      { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_MODULUS, value: pair.modulus },
      { type: P.CKA_PUBLIC_EXPONENT, value: pair.publicExponent },
      { type: P.CKA_WRAP, value: true },
      { type: P.CKA_ENCRYPT, value: false },
      { type: P.CKA_VERIFY, value: false },
      { type: P.CKA_LABEL, value: 'custos transport key' },
    ]);
  } catch (e) {
    throw hsmError(e, `import the transport public key into token "${token.identity.label}"`);
  }
}

/** An AES-256 key made inside the sending token; extractable only so RSA can wrap it for the receiver. */
export function generateEphemeralKey(token: Token): Handle {
  try {
    return token.lib.C_GenerateKey(token.session, { mechanism: P.CKM_AES_KEY_GEN }, [
      ...sessionAesTemplate('custos ephemeral transport key', true, { wrap: true }),
      { type: P.CKA_VALUE_LEN, value: 32 },
    ]);
  } catch (e) {
    throw hsmError(e, `generate an ephemeral key in token "${token.identity.label}"`);
  }
}

export function wrapEphemeral(token: Token, mechanism: TransportMechanism, transportPublic: Handle, ephemeral: Handle): Buffer {
  return Buffer.from(token.lib.C_WrapKey(token.session, oaepMechanism(mechanism) as never, transportPublic, ephemeral, Buffer.alloc(1024)));
}

/** The ephemeral key inside the receiving token: it may unwrap (and wrap, for the re-wrap proof), never leave. */
export function unwrapEphemeral(token: Token, mechanism: TransportMechanism, transportPrivate: Handle, blob: Buffer): Handle {
  return token.lib.C_UnwrapKey(token.session, oaepMechanism(mechanism) as never, transportPrivate, blob,
    sessionAesTemplate('custos ephemeral transport key', false, { wrap: true, unwrap: true }));
}
