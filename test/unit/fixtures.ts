/**
 * A realistic bundle and its custodian shares, built with the real formats and a real dealer
 * key. Wrapped values are made with OpenSSL's AES-KWP through node:crypto, not by custos.
 */
import { createCipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  BUNDLE_MAC_PURPOSE,
  bundleAuthenticatedBytes,
  serialiseBundle,
  type BundleBody,
} from '../../src/core/bundle.js';
import {
  parseShare,
  serialiseShare,
  shareSignedBytes,
  type ShareDocument,
  type SignedShare,
} from '../../src/core/share.js';
import { hmacWithKek } from '../../src/crypto/aes.js';
import { freshSigner, type Signer } from '../../src/crypto/ed25519.js';
import { splitSecret } from '../../src/crypto/shamir.js';
import { sha256Hex } from '../../src/crypto/check-values.js';
import { RECIPIENTS } from './helpers.js';

export function kwpWrap(kek: Buffer, key: Buffer): Buffer {
  const c = createCipheriv(`id-aes${kek.length * 8}-wrap-pad`, kek, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([c.update(key), c.final()]);
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaJwk = rsa.publicKey.export({ format: 'jwk' });
const ecJwk = ec.publicKey.export({ format: 'jwk' });
const b64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');

export const EXTRA_RECIPIENT = 'age1kqaytr8tsxwvhvje9xujclajrh98rykhn7hekvp3lyywxmgrx5dqhd0e4c';

export function makeBody(
  kek: Buffer,
  dealer: Signer,
  opts: { threshold?: number; total?: number; label?: string } = {},
): BundleBody {
  const total = opts.total ?? 4;
  const recipients = [...RECIPIENTS, EXTRA_RECIPIENT];
  if (total > recipients.length) throw new Error('fixture: not enough recipients');
  const ecPoint = Buffer.concat([Buffer.from([0x04, 0x41, 0x04]), b64u(ecJwk.x), b64u(ecJwk.y)]);
  return {
    bundleId: randomBytes(16).toString('hex'),
    created: '2026-03-01T09:30:00.000Z',
    tool: 'custos 0.1.0',
    source: {
      label: 'prod-hsm',
      serial: '4f2a9c01de77',
      manufacturer: 'SoftHSM project',
      model: 'SoftHSM v2',
    },
    kek: { algorithm: 'AES-256', kcv: '0a1b2c' },
    wrap: { mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' },
    escrow: {
      scheme: 'shamir-gf256',
      threshold: opts.threshold ?? 3,
      total,
      custodians: recipients.slice(0, total).map((recipient, i) => ({
        id: `c${i + 1}-llp`,
        name: `Custodian ${i + 1} & Partners`,
        recipient,
        index: i + 1,
      })),
    },
    dealer: { algorithm: 'Ed25519', publicKey: dealer.publicKey.toString('base64') },
    keys: [
      {
        class: 'secret',
        keyType: 'AES',
        label: opts.label ?? 'payments-kek-2026',
        id: '01a2',
        bits: 256,
        usage: { encrypt: true, decrypt: true, wrap: true, unwrap: true },
        private: true,
        sensitive: true,
        extractable: true,
        checkValue: { method: 'aes-ecb-zero', value: 'c3d4e5' },
        wrapped: kwpWrap(kek, randomBytes(32)).toString('base64'),
        certificates: [],
      },
      {
        class: 'private',
        keyType: 'RSA',
        label: 'clé-signature',
        id: 'beef',
        bits: 1024,
        usage: { sign: true, decrypt: false },
        private: true,
        sensitive: true,
        extractable: true,
        modulus: b64u(rsaJwk.n).toString('hex'),
        publicExponent: b64u(rsaJwk.e).toString('hex'),
        checkValue: { method: 'spki-sha256', value: '0011223344556677' },
        wrapped: kwpWrap(kek, rsa.privateKey.export({ format: 'der', type: 'pkcs8' })).toString(
          'base64',
        ),
        publicKey: {
          label: 'clé-signature',
          keyType: 'RSA',
          usage: { verify: true, encrypt: false },
          modulus: b64u(rsaJwk.n).toString('hex'),
          publicExponent: b64u(rsaJwk.e).toString('hex'),
        },
        certificates: [
          {
            label: 'signing cert "2026"',
            value: randomBytes(300).toString('base64'),
            subject: '300f310d300b06035504030c0474657374',
            issuer: '300f310d300b06035504030c0474657374',
            serialNumber: '0102',
          },
        ],
      },
      {
        class: 'private',
        keyType: 'EC',
        label: 'tls\\edge\n01',
        id: '',
        bits: 256,
        usage: { sign: true, derive: true },
        private: true,
        sensitive: true,
        extractable: true,
        ecParams: '06082a8648ce3d030107',
        checkValue: { method: 'spki-sha256', value: '8899aabbccddeeff' },
        wrapped: kwpWrap(kek, ec.privateKey.export({ format: 'der', type: 'pkcs8' })).toString(
          'base64',
        ),
        publicKey: {
          label: 'tls\\edge\n01',
          keyType: 'EC',
          usage: { verify: true },
          ecParams: '06082a8648ce3d030107',
          ecPoint: ecPoint.toString('hex'),
        },
        certificates: [],
      },
    ],
    skipped: [
      {
        class: 'secret',
        keyType: 'AES',
        label: 'hsm-internal',
        id: '07',
        reason: 'not extractable',
      },
      {
        class: 'public',
        keyType: 'RSA',
        label: 'orphan-pub',
        id: '',
        reason: 'a public key without its private key',
      },
    ],
  };
}

export interface Backup {
  kek: Buffer;
  dealer: Signer;
  body: BundleBody;
  authenticated: Buffer;
  mac: Buffer;
  file: Buffer;
  digest: string;
  /** Raw secrets.js share strings, index i+1 at position i. */
  shares: string[];
  /** Share plaintexts (custos-share/1 text), one per custodian. */
  shareTexts: string[];
}

export function makeBackup(
  opts: { threshold?: number; total?: number; label?: string } = {},
): Backup {
  const kek = randomBytes(32);
  const dealer = freshSigner();
  return sealBody(makeBody(kek, dealer, opts), kek, dealer);
}

/**
 * Seals a body as custos does: MAC keyed from the KEK, shares signed by the dealer over the digest.
 */
export function sealBody(body: BundleBody, kek: Buffer, dealer: Signer): Backup {
  const authenticated = bundleAuthenticatedBytes(body);
  const mac = hmacWithKek(kek, BUNDLE_MAC_PURPOSE, authenticated);
  const file = serialiseBundle(authenticated, mac);
  const digest = sha256Hex(authenticated);
  const shares = splitSecret(kek, body.escrow.total, body.escrow.threshold);
  const shareTexts = body.escrow.custodians.map((c, i) =>
    signShare(dealer, {
      bundleId: body.bundleId,
      bundleDigest: digest,
      custodian: c.id,
      index: c.index,
      threshold: body.escrow.threshold,
      total: body.escrow.total,
      share: shares[i] as string,
    }),
  );
  return { kek, dealer, body, authenticated, mac, file, digest, shares, shareTexts };
}

export function signShare(dealer: Signer, doc: ShareDocument): string {
  const signed = shareSignedBytes(doc);
  return serialiseShare(signed, dealer.sign(signed));
}

export function signedShare(dealer: Signer, doc: ShareDocument): SignedShare {
  return parseShare('fixture', signShare(dealer, doc));
}
