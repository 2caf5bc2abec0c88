/**
 * The transport between two tokens for an HSM-to-HSM copy: an RSA key pair made inside the
 * receiving token (its private half never leaves it), an ephemeral AES-256 key made inside the
 * sending token and wrapped to the transport public key, and AES key wrap with padding (RFC 5649,
 * the mechanism each token proved) for the keys themselves.
 * Every object here is a session object: gone when the run ends, also on failure.
 */
import { CustosError } from '../core/errors.js';
import { P, Refused, UNSUPPORTED, attempt, call, type Handle } from './call.js';
import type { Token } from './token.js';
import { NEVER_LEAVES, onlyUsage, sessionAesTemplate, type Attr } from './attributes.js';
import { CKM_RSA_AES_KEY_WRAP, offers } from './mechanisms.js';

export { CKM_RSA_AES_KEY_WRAP, offers } from './mechanisms.js';

export interface TransportMechanism {
  name: string;
  /**
   * OAEP hash and MGF for wrapping the ephemeral key; null for a mechanism pkcs11js cannot drive.
   */
  oaep: { hashAlg: number; mgf: number } | null;
}

/**
 * In order of preference. CKM_RSA_AES_KEY_WRAP needs CK_RSA_AES_KEY_WRAP_PARAMS, which pkcs11js
 * cannot pass.
 */
export const TRANSPORT_MECHANISMS: readonly TransportMechanism[] = [
  { name: 'RSA-OAEP-SHA256 + AES-KWP', oaep: { hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256 } },
  { name: 'RSA-OAEP-SHA1 + AES-KWP', oaep: { hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1 } },
];

const CKZ_DATA_SPECIFIED = 1;

function oaepMechanism(m: TransportMechanism): { mechanism: number; parameter: object } {
  if (!m.oaep) throw new CustosError('E_MECHANISM', `${m.name} cannot be used through pkcs11js`);
  return {
    mechanism: P.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: P.CK_PARAMS_RSA_OAEP,
      hashAlg: m.oaep.hashAlg,
      mgf: m.oaep.mgf,
      source: CKZ_DATA_SPECIFIED,
    },
  };
}

export interface TransportKeyPair {
  publicKey: Handle;
  privateKey: Handle;
  modulus: Buffer;
  publicExponent: Buffer;
}

/** An RSA-3072 pair in the receiving token: the private half may only unwrap and never leaves. */
export function generateTransportKeyPair(token: Token): TransportKeyPair {
  const common: Attr[] = [
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_LABEL, value: 'custos transport key' },
  ];
  return call(`generate a transport key pair in token "${token.identity.label}"`, () => {
    const pair = token.lib.C_GenerateKeyPair(
      token.session,
      { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [
        ...common,
        { type: P.CKA_MODULUS_BITS, value: 3072 },
        { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ...onlyUsage(['wrap'], ['wrap', 'encrypt', 'verify']),
      ],
      [
        ...common,
        ...NEVER_LEAVES,
        ...onlyUsage(['unwrap'], ['unwrap', 'decrypt', 'sign', 'derive']),
      ],
    );
    const [modulus, exponent] = token.lib.C_GetAttributeValue(token.session, pair.publicKey, [
      { type: P.CKA_MODULUS },
      { type: P.CKA_PUBLIC_EXPONENT },
    ]);
    return {
      ...pair,
      modulus: modulus?.value as Buffer,
      publicExponent: exponent?.value as Buffer,
    };
  });
}

/**
 * The transport public key, imported into the sending token as a session object that may only wrap.
 */
export function importTransportPublicKey(
  token: Token,
  pair: Pick<TransportKeyPair, 'modulus' | 'publicExponent'>,
): Handle {
  return call(`import the transport public key into token "${token.identity.label}"`, () =>
    token.lib.C_CreateObject(token.session, [
      { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
      { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
      { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_MODULUS, value: pair.modulus },
      { type: P.CKA_PUBLIC_EXPONENT, value: pair.publicExponent },
      { type: P.CKA_WRAP, value: true },
      { type: P.CKA_ENCRYPT, value: false },
      { type: P.CKA_VERIFY, value: false },
      { type: P.CKA_LABEL, value: 'custos transport key' },
    ]),
  );
}

/**
 * An AES-256 key made inside the sending token; extractable only so RSA can wrap it for the
 * receiver.
 */
export function generateEphemeralKey(token: Token): Handle {
  return call(`generate an ephemeral key in token "${token.identity.label}"`, () =>
    token.lib.C_GenerateKey(token.session, { mechanism: P.CKM_AES_KEY_GEN }, [
      ...sessionAesTemplate('custos ephemeral transport key', true, { wrap: true }),
      { type: P.CKA_VALUE_LEN, value: 32 },
    ]),
  );
}

/**
 * Wraps the ephemeral key to the transport public key; both handles must be objects of `token` (the
 * sender).
 */
export function wrapEphemeral(
  token: Token,
  mechanism: TransportMechanism,
  transportPublic: Handle,
  ephemeral: Handle,
): Buffer {
  return call(...wrapEphemeralCall(token, mechanism, transportPublic, ephemeral));
}

/** What wrapEphemeral and tryWrapEphemeral ask of the token, and how the step is named. */
function wrapEphemeralCall(
  token: Token,
  mechanism: TransportMechanism,
  transportPublic: Handle,
  ephemeral: Handle,
): [string, () => Buffer] {
  return [
    `wrap the ephemeral key to the transport key in token "${token.identity.label}" (${mechanism.name})`,
    () =>
      Buffer.from(
        token.lib.C_WrapKey(
          token.session,
          oaepMechanism(mechanism) as never,
          transportPublic,
          ephemeral,
          Buffer.alloc(1024),
        ),
      ),
  ];
}

/**
 * As wrapEphemeral, or null when the token does not offer this OAEP variant; any other failure is
 * thrown.
 */
export function tryWrapEphemeral(
  token: Token,
  mechanism: TransportMechanism,
  transportPublic: Handle,
  ephemeral: Handle,
): Buffer | null {
  const [step, run] = wrapEphemeralCall(token, mechanism, transportPublic, ephemeral);
  const blob = attempt(step, OAEP_REFUSALS, run);
  return blob instanceof Refused ? null : blob;
}

/**
 * The ephemeral key inside the receiving token: it may unwrap (and wrap, for the re-wrap proof),
 * never leave.
 */
export function unwrapEphemeral(
  token: Token,
  mechanism: TransportMechanism,
  transportPrivate: Handle,
  blob: Buffer,
): Handle {
  return call(
    `unwrap the ephemeral key with the transport key in token "${token.identity.label}" (${mechanism.name})`,
    () =>
      token.lib.C_UnwrapKey(
        token.session,
        oaepMechanism(mechanism) as never,
        transportPrivate,
        blob,
        sessionAesTemplate('custos ephemeral transport key', false, { wrap: true, unwrap: true }),
      ),
  );
}

/**
 * The return codes with which a token turns down one OAEP variant (SoftHSM 2.6 answers
 * CKR_ARGUMENTS_BAD to a hash other than SHA-1): the next candidate is tried. Anything else stops
 * the copy.
 */
const OAEP_REFUSALS = [...UNSUPPORTED, P.CKR_ARGUMENTS_BAD];

export interface Negotiated {
  mechanism: TransportMechanism;
  /** The ephemeral key, unwrapped in the target. */
  targetKey: Handle;
  /**
   * Set when both tokens offer CKM_RSA_AES_KEY_WRAP, which custos cannot drive through pkcs11js.
   */
  note?: string;
}

/**
 * Agrees on how the ephemeral key travels: each candidate is tried for real — wrapped in the
 * source with the transport public key imported there (`sourcePublic`, a source object), unwrapped
 * in the target with the transport private key (a target object) — because C_GetMechanismInfo
 * cannot say which OAEP hashes a token accepts. The first that works both ways is used.
 */
export function negotiateTransport(
  source: Token,
  target: Token,
  sourcePublic: Handle,
  targetPrivate: Handle,
  ephemeral: Handle,
): Negotiated {
  const tried: string[] = [];
  if (
    offers(source, P.CKM_RSA_PKCS_OAEP, P.CKF_WRAP) &&
    offers(target, P.CKM_RSA_PKCS_OAEP, P.CKF_UNWRAP)
  ) {
    for (const mechanism of TRANSPORT_MECHANISMS) {
      const blob = attempt(
        `wrap the ephemeral key in token "${source.identity.label}" (${mechanism.name})`,
        OAEP_REFUSALS,
        () =>
          Buffer.from(
            source.lib.C_WrapKey(
              source.session,
              oaepMechanism(mechanism) as never,
              sourcePublic,
              ephemeral,
              Buffer.alloc(1024),
            ),
          ),
      );
      if (blob instanceof Refused) {
        tried.push(
          `${mechanism.name} (token "${source.identity.label}" refused to wrap: ${blob.name})`,
        );
        continue;
      }
      const targetKey = attempt(
        `unwrap the ephemeral key in token "${target.identity.label}" (${mechanism.name})`,
        OAEP_REFUSALS,
        () =>
          target.lib.C_UnwrapKey(
            target.session,
            oaepMechanism(mechanism) as never,
            targetPrivate,
            blob,
            sessionAesTemplate('custos ephemeral transport key', false, {
              wrap: true,
              unwrap: true,
            }),
          ),
      );
      if (targetKey instanceof Refused) {
        tried.push(
          `${mechanism.name} (token "${target.identity.label}" refused to unwrap: ${targetKey.name})`,
        );
        continue;
      }
      const both =
        offers(source, CKM_RSA_AES_KEY_WRAP, P.CKF_WRAP) &&
        offers(target, CKM_RSA_AES_KEY_WRAP, P.CKF_UNWRAP);
      return {
        mechanism,
        targetKey,
        note: both
          ? 'both tokens offer CKM_RSA_AES_KEY_WRAP, which custos cannot drive through pkcs11js; it used the next choice'
          : undefined,
      };
    }
  }
  throw new CustosError(
    'E_MECHANISM',
    `tokens "${source.identity.label}" and "${target.identity.label}" share no transport mechanism`,
    `custos needs RSA-OAEP (wrap in the source, unwrap in the target) and AES key wrap with padding in both; tried: ${tried.join('; ') || 'none (RSA-OAEP is not offered by both)'}`,
  );
}
