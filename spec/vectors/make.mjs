#!/usr/bin/env node
/**
 * Writes every file in spec/vectors/ and spec/vectors/MANIFEST.json (see SPEC.md, "Test vectors").
 *
 *   npx tsc -p tsconfig.json && node spec/vectors/make.mjs
 *
 * Nothing here draws randomness: keys come from the fixed seeds below, so the same custos build
 * writes the same bytes. Every secret in this file is a TEST secret and is public.
 *
 * Each vector names the rule it breaks (a rule id of SPEC.md) and the outcome that rule calls for.
 * Outcomes are written from the rule, not copied from what the parsers say; a vector whose current
 * outcome differs carries `known` (what the code gives today and why that is a divergence).
 */
import {
  constants, createCipheriv, createECDH, createHash, createHmac, createPrivateKey, createPublicKey,
  diffieHellman, hkdfSync, publicEncrypt, sign,
} from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, '..', '..', 'dist');
const load = (p) => import(pathToFileURL(join(DIST, p)).href);

const { BUNDLE_MAC_PURPOSE, bundleAuthenticatedBytes, serialiseBundle } = await load('core/bundle.js');
const { shareSignedBytes, serialiseShare } = await load('core/share.js');
const { ceremonySignedBytes, serialiseCeremony } = await load('core/ceremony.js');
const { payloadText, serialiseSubmission } = await load('core/submission.js');
const { makeEntry, GENESIS } = await load('core/audit.js');
const { requestSignedBytes, approvalSignedBytes, serialiseRequest } = await load('core/handover.js');
const { packageSignedBytes, serialisePackage } = await load('core/handover-package.js');
const { aesKcv, hmacWithKek } = await load('crypto/aes.js');

// ------------------------------------------------------------------------------------ helpers

const hex = (s) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const sha256 = (b) => createHash('sha256').update(b).digest();
const sha256Hex = (b) => sha256(b).toString('hex');
/** A fixed 32-byte seed named by a label: SHA-256("custos spec vectors: " + label). */
const seed = (label) => sha256(Buffer.from(`custos spec vectors: ${label}`, 'utf8'));
const b64 = (b) => Buffer.from(b).toString('base64');
const b64raw = (b) => b64(b).replace(/=+$/, '');
const b64url = (b) => Buffer.from(b).toString('base64url');
const utf8 = (s) => Buffer.from(s, 'utf8');
const clone = (o) => structuredClone(o);
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** The same bytes spelled another way: the last base64 digit with its lowest (unused) bit flipped. */
function nonCanonicalB64(text) {
  const end = text.replace(/=+$/, '');
  const last = end.length - 1;
  return `${end.slice(0, last)}${B64_ALPHABET[B64_ALPHABET.indexOf(end[last]) ^ 1]}${text.slice(end.length)}`;
}
/** A copy of object `o` with member `key` set to `value` right after member `after` (the canonical member order). */
function withMemberAfter(o, after, key, value) {
  const out = {};
  for (const [k, v] of Object.entries(o)) {
    if (k !== key) out[k] = v;
    if (k === after) out[key] = value;
  }
  return out;
}

/** Replaces the first occurrence of `from` (which must occur) with `to`, on bytes. */
function edit(file, from, to) {
  const f = Buffer.isBuffer(from) ? from : utf8(from);
  const at = file.indexOf(f);
  if (at < 0) throw new Error(`make.mjs: "${from}" not found`);
  return Buffer.concat([file.subarray(0, at), Buffer.isBuffer(to) ? to : utf8(to), file.subarray(at + f.length)]);
}

// Ed25519 from a 32-byte seed (RFC 8032 private key), raw 32-byte public key.
const ED25519_PKCS8 = hex('302e020100300506032b657004220420');
function ed25519(seedBytes) {
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seedBytes]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { seed: seedBytes, publicKey: Buffer.from(spki.subarray(12)), spki, sign: (data) => sign(null, data, privateKey) };
}

// X25519 from a 32-byte scalar, and age's bech32 encodings of it.
const X25519_PKCS8 = hex('302e020100300506032b656e04220420');
const X25519_SPKI = hex('302a300506032b656e032100');
function x25519(scalar) {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, scalar]), format: 'der', type: 'pkcs8' });
  const publicKey = Buffer.from(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(12));
  return { scalar, privateKey, publicKey, recipient: bech32('age', publicKey), identity: bech32('age-secret-key-', scalar).toUpperCase() };
}
const x25519Public = (raw) => createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' });

const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
function bech32(hrp, bytes) {
  const data = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >> bits) & 31);
    }
  }
  if (bits > 0) data.push((acc << (5 - bits)) & 31);
  const polymod = (values) => {
    const G = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let chk = 1;
    for (const v of values) {
      const top = chk >>> 25;
      chk = ((chk & 0x1ffffff) << 5) ^ v;
      for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= G[i];
    }
    return chk;
  };
  const expanded = [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];
  const pm = polymod([...expanded, ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (pm >>> (5 * (5 - i))) & 31);
  return `${hrp}1${[...data, ...checksum].map((d) => BECH32[d]).join('')}`;
}

/**
 * An age v1 file (age-encryption.org/v1) to one X25519 recipient, made by hand so that it is
 * reproducible: the ephemeral scalar, file key and payload nonce are fixed by `label`.
 * One STREAM chunk (plaintexts here are far below 64 KiB). Armored, as custos writes it.
 */
function ageSeal(recipientPublic, plaintext, label) {
  const chacha = (key, nonce, data) => {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
  };
  const eph = x25519(seed(`age ephemeral ${label}`));
  const fileKey = seed(`age file key ${label}`).subarray(0, 16);
  const nonce = seed(`age payload nonce ${label}`).subarray(0, 16);
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: x25519Public(recipientPublic) });
  const wrapKey = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([eph.publicKey, recipientPublic]), 'age-encryption.org/v1/X25519', 32));
  const body = chacha(wrapKey, Buffer.alloc(12), fileKey);
  const header = `age-encryption.org/v1\n-> X25519 ${b64raw(eph.publicKey)}\n${b64raw(body)}\n---`;
  const macKey = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
  const mac = createHmac('sha256', macKey).update(header).digest();
  const payloadKey = Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
  const binary = Buffer.concat([utf8(`${header} ${b64raw(mac)}\n`), nonce, chacha(payloadKey, Buffer.concat([Buffer.alloc(11), Buffer.from([1])]), plaintext)]);
  const lines = b64(binary).match(/.{1,64}/g);
  return `-----BEGIN AGE ENCRYPTED FILE-----\n${lines.join('\n')}\n-----END AGE ENCRYPTED FILE-----\n`;
}

/** AES key wrap with padding (RFC 5649), OpenSSL's id-aes256-wrap-pad: deterministic. */
function kwp(kek, key) {
  const c = createCipheriv('id-aes256-wrap-pad', kek, hex('a65959a6'));
  return Buffer.concat([c.update(key), c.final()]);
}

/** RSA-OAEP (SHA-256, MGF1-SHA-256, empty label, RFC 8017 7.1.1) with a fixed seed, through raw RSA. */
function oaepSha256(publicKey, message, seedBytes) {
  const k = publicKey.asymmetricKeyDetails.modulusLength / 8;
  const hLen = 32;
  const mgf1 = (s, len) => {
    const out = [];
    for (let c = 0; Buffer.concat(out).length < len; c++) out.push(sha256(Buffer.concat([s, Buffer.from([c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255])])));
    return Buffer.concat(out).subarray(0, len);
  };
  const db = Buffer.concat([sha256(Buffer.alloc(0)), Buffer.alloc(k - message.length - 2 * hLen - 2), Buffer.from([1]), message]);
  const s = seedBytes.subarray(0, hLen);
  const maskedDb = Buffer.from(db.map((b, i) => b ^ mgf1(s, db.length)[i]));
  const maskedSeed = Buffer.from(s.map((b, i) => b ^ mgf1(maskedDb, hLen)[i]));
  return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, Buffer.concat([Buffer.from([0]), maskedSeed, maskedDb]));
}

// -------------------------------------------------------------- Shamir over GF(2^8), by hand

/**
 * The field secrets.js-grempe uses in 8-bit mode: GF(2^8) reduced by x^8+x^4+x^3+x^2+1 (0x11d;
 * its primitivePolynomials[8] is 29 = 0x1d), generator 2. Not the AES polynomial 0x11b.
 */
const POLY = 0x11d;
function gfMul(a, b) {
  let p = 0;
  while (b) {
    if (b & 1) p ^= a;
    a <<= 1;
    if (a & 0x100) a ^= POLY;
    b >>= 1;
  }
  return p;
}
/** secrets.js pads "1" + the secret's bits on the left to a multiple of 128 bits: zeros, 0x01, secret. */
function padSecret(secret) {
  const bytes = Math.ceil((secret.length * 8 + 1) / 128) * 16;
  return Buffer.concat([Buffer.alloc(bytes - secret.length - 1), Buffer.from([1]), secret]);
}
/** Coefficient j (1..t-1) of the polynomial for padded byte k: fixed, never zero. */
const coefficient = (k, j, salt) => ((k * 37 + j * 91 + salt * 13) % 255) + 1;
function shamirShares(secret, threshold, xs, salt) {
  const padded = padSecret(secret);
  const coefficients = [...padded].map((_, k) => Array.from({ length: threshold - 1 }, (_, j) => coefficient(k, j + 1, salt)));
  const shares = xs.map((x) => {
    const ys = [...padded].map((byte, k) => {
      const poly = [byte, ...coefficients[k]];
      let y = 0;
      for (let i = poly.length - 1; i >= 0; i--) y = gfMul(y, x) ^ poly[i];
      return y;
    });
    return { x, share: `8${x.toString(16).padStart(2, '0')}${Buffer.from(ys).toString('hex')}` };
  });
  return { padded, coefficients, shares };
}

// ------------------------------------------------------------------------------ fixed material

/** RFC 8032 7.1 TEST 1 and TEST 2 secret keys: the dealer's and the restore ceremony's. */
const DEALER = ed25519(hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
const CEREMONY_KEY = ed25519(hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'));
const HANDOVER_CEREMONY_KEY = ed25519(hex('c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7')); // TEST 3
const OTHER_DEALER = ed25519(seed('other dealer'));
const OTHER_SIGNER = ed25519(seed('someone else'));
const PIN_DEALER = ed25519(seed('pin escrow dealer'));
const APPROVERS = {
  'general-counsel': ed25519(seed('approver general-counsel')),
  'hale-llp': ed25519(seed('approver hale-llp')),
  'okafor-law': ed25519(seed('approver okafor-law')),
};
/** RFC 7748 6.1 Alice's private key: the restore ceremony's age identity. */
const CEREMONY_AGE = x25519(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
const HANDOVER_CEREMONY_AGE = x25519(seed('handover ceremony age'));
const PIN_CEREMONY_AGE = x25519(seed('pin escrow ceremony age'));
const STRANGER_AGE = x25519(seed('stranger age'));

const KEK = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
const OTHER_KEK = hex('e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
const PIN_SECRET = hex('c0ffee00c0ffee01c0ffee02c0ffee03c0ffee04c0ffee05c0ffee06c0ffee07');
const AES_KEY = hex('2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe');
const HMAC_KEY = hex('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b');
const EC_SCALAR = seed('ec private key');

/** A TEST RSA-2048 key (made once with openssl genpkey): the handover recipient. */
const RECIPIENT_PEM = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDQbAsGptdh7uzE
5S9jDAK+t9DxU/b8SROBBcva/UHuHQ3EePmEAxt36GpK3CwaOs+MuXLo/oZjZL6P
KX4A34DIL99F3U4af77p6t1dWXN2ziI5Q/W/ioXjNjFlGzcKMRp76CxkMP+TIyCs
9u4woOX0Zfp2NOSPileCb6t2CTbMC6KZ9sKEyuFlqTjB94CzJpxMOokYaXKUoO2x
lXhhacvWBG9e2DJOcNPUz/wyvScGVCaOpNeYBvX+8jSHxDd/hUH06Ct/eMVso1hg
lM7eTQSFsVMyVQeo6riVPph4+x61rPeJzQ1w5JQzu6uUMbIXHPQRPibTdK1me6uj
ROpMDRlhAgMBAAECggEAOJJC8eTCTGI6IP1mPdeqPRMOoxpbzUGWiixFF2UripKX
RI9jhooDYCoVA8m8LMhuwm8pugUv+/WB5cDo4xrHTU71JvT5OKcY7kwiFq7rcMFl
t65zGzDhw3jXsm5PI7SNUDmGJxHHpSvhOCF0KH3bvNkbQQ99RFrUAuMFoq3AkmRO
dJcwuV0Fn5rx7LOqpVSGGt51X5FgokjqSFm2eGBsTTWBJMpTueHP3YCu8sr51t8w
BPZG6jri3ndDzzSwiFCBJxKBRQNV7R4kHs9iILYny/GWqglsqsUfRJN4WPkTNZqv
BvQKn6WUMG4hE8+EK1+Bkpwg4xEBig9570sxrjSr0wKBgQD1zAKywXM/IscyuS5i
+rMx8ujZKmW4X/rWCbG5ULt6b0q76nx45hZLrg0Ts90ybzvGYFPNOaiGU0KXJuy9
xNAHLpKvkVnzr8gwM3xCmJ502cT5L91Q0ANu8ZfgdRv8ohusNe2ojKnNbiKHbgOV
V4Lj0Y0jTnBd5WvDPCybDvZ6jwKBgQDZEt01+KMUnOR2ZHbV/oUNjErP15UDFLpn
n+NcQMkTeTiVjWR1pKGSL1D5CezDBYFKPTxw68uV9CT1JsBLe5ZJ6c5m+eQW1MQr
qrBbDXGXnxD2KS3ThsDvKlYQUjKOlZvrm+Zzso4XFR68WG0TGcSiPz/nu/5Dwoct
C6EKtWblDwKBgBLwp3ySv4ir62GTN2nVG53Ls/mX9MKiUrfPg2xeNjQXA1E7nl/K
iwlF3igYggDy5U5B+fMkcEH5hHYVP8TXt5f2FMOGlcHbV7evH/IZxIwIg88XyxwB
C2KvJx7ap09uRmecuDV2sVbtF6gL6CbH2YQoj5Ga57m0hftDVcSVAJUtAoGBALCt
fui3txxG2lhWSra/0tGFFzr1b24zh8hhxW7HuCEmb9yhWVu7JFpUMqaP4mmU6Hdh
QflyoaAqN45k/Owy6c69Auaji3bds9EKu0FQvty2ddq1B3x72DqRDb14+Xc948sv
d7FBag71fK+1lQmP1pBrxHq7cyb5hIYwSeHqZZYXAoGABL+5OgKnlsr1moH1aDqM
vhxqRa2nEzR9Grebc6RVe0DFUds/+IyQy/5lIOgCB1aHO5ganmsl1il8k353QJw4
9KBZEOeGn5lG8Wjq20gWsjP0Jm7TwvfTmQyEJXcf++exrE8axdkdNEgnJrdehHdl
N8l48sANu/VYb3lalh0W6BE=
-----END PRIVATE KEY-----
`;
const RECIPIENT_PRIVATE = createPrivateKey(RECIPIENT_PEM);
const RECIPIENT_PUBLIC = createPublicKey(RECIPIENT_PRIVATE);
const RECIPIENT_SPKI = RECIPIENT_PUBLIC.export({ format: 'der', type: 'spki' });

const CUSTODIANS = [
  { id: 'hale-llp', name: 'Hale & Partners LLP', organisation: 'Hale & Partners LLP', age: x25519(seed('custodian hale-llp')) },
  { id: 'okafor-law', name: 'Okafor Law Group', organisation: 'Okafor Law Group', age: x25519(seed('custodian okafor-law')) },
  { id: 'lindqvist', name: 'Lindqvist Advokatbyrå', organisation: 'Lindqvist Advokatbyrå', age: x25519(seed('custodian lindqvist')) },
];
const escrowCustodians = () => CUSTODIANS.map((c, i) => ({ id: c.id, name: c.name, recipient: c.age.recipient, index: i + 1 }));

// ------------------------------------------------------------------------------ writing files

const DIRS = ['envelope', 'bundle', 'share', 'shamir', 'ceremony', 'submission', 'audit', 'handover-request', 'handover-package'];
for (const d of DIRS) rmSync(join(HERE, d), { recursive: true, force: true });
const vectors = [];

/**
 * One vector: `file` under spec/vectors, the bytes, the format, the SPEC rule it breaks ("valid"
 * for a good file), and the outcome the rule calls for: "ok" or an error code.
 */
function put(file, bytes, format, rule, expect, more = {}) {
  const path = join(HERE, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  if (vectors.some((v) => v.file === file)) throw new Error(`make.mjs: ${file} written twice`);
  vectors.push({ file, format, rule, expect, ...more });
}

// =================================================================================== Shamir

const SHAMIR = [
  { name: 'one-byte-2-of-3', secret: hex('a7'), threshold: 2, xs: [1, 2, 3], salt: 1 },
  { name: 'kek-2-of-3', secret: KEK, threshold: 2, xs: [1, 2, 3], salt: 2 },
  { name: 'leading-zeros-3-of-5', secret: hex('0000ff'), threshold: 3, xs: [1, 2, 3, 4, 5], salt: 3 },
  { name: 'fifteen-bytes-2-of-2', secret: hex('000102030405060708090a0b0c0d0e'), threshold: 2, xs: [1, 2], salt: 4 },
  { name: 'sixteen-bytes-3-of-4', secret: hex('00112233445566778899aabbccddeeff'), threshold: 3, xs: [1, 2, 3, 4], salt: 5 },
  { name: 'pin-secret-3-of-255-high-x', secret: PIN_SECRET, threshold: 3, xs: [1, 128, 254, 255], salt: 6 },
];
const shamirOf = {};
for (const s of SHAMIR) {
  const made = shamirShares(s.secret, s.threshold, s.xs, s.salt);
  shamirOf[s.name] = made;
  const doc = {
    field: 'GF(2^8) reduced by x^8+x^4+x^3+x^2+1 (0x11d), as secrets.js-grempe 8-bit mode',
    layout: 'share = "8" || x as 2 hex digits || hex of f_k(x) for each padded byte k; coefficients[k] lists a_1 ... a_(t-1) of f_k, whose constant term is padded[k]',
    secret: s.secret.toString('hex'),
    threshold: s.threshold,
    padded: made.padded.toString('hex'),
    coefficients: made.coefficients,
    shares: made.shares,
  };
  // One line per array of numbers, so each byte's coefficients read as a row.
  const text = JSON.stringify(doc, null, 1).replace(/\[\n\s*(-?\d+(?:,\n\s*-?\d+)*)\n\s*\]/g, (_, nums) => `[${nums.split(/,\n\s*/).join(', ')}]`);
  put(`shamir/${s.name}.json`, utf8(`${text}\n`), 'shamir-gf256', 'valid', 'ok');
}
const KEK_SHARES = shamirOf['kek-2-of-3'].shares.map((s) => s.share);
const PIN_SHARES = shamirOf['pin-secret-3-of-255-high-x'].shares.map((s) => s.share);

// =================================================================================== bundle

const POLICY_TEXT = `# The policy the spec vectors' bundle was made under (TEST keys only).
version: 1
name: spec-vectors
threshold: 2
custodians:
${CUSTODIANS.map((c) => `  - id: ${c.id}
    name: ${c.name}
    organisation: ${c.organisation}
    recipient: ${c.age.recipient}${APPROVERS[c.id] ? `\n    approver-key: ${b64(APPROVERS[c.id].spki)}` : ''}`).join('\n')}
approvers:
  - id: general-counsel
    name: General Counsel, Example Bank
    organisation: Example Bank
    role: general-counsel
    key: ${b64(APPROVERS['general-counsel'].spki)}
keys:
  include: ["*"]
handover:
  bases: [subpoena, court-order]
  approvals:
    - role: general-counsel
      count: 1
    - role: custodian
      count: 2
      organisations: 2
  notice: 72h
  quorum: 2
  recipients:
    min-rsa-bits: 2048
  max-keys: 5
  keys:
    include: ["payments-*"]
`;

function ecKey() {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(EC_SCALAR);
  const point = ecdh.getPublicKey();
  const jwk = { kty: 'EC', crv: 'P-256', d: b64url(EC_SCALAR), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) };
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  return { pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }), spki: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }), point };
}
const EC = ecKey();
const SOURCE = { label: 'primary', serial: '4cb774a39765c413', manufacturer: 'SoftHSM project', model: 'SoftHSM v2' };
const AES_RECORD = {
  class: 'secret', keyType: 'AES', label: 'payments-aes-01', id: '01', bits: 256,
  usage: { encrypt: true, decrypt: true, sign: false, verify: false, wrap: false, unwrap: false, derive: false },
  private: true, sensitive: true, extractable: true,
  checkValue: { method: 'aes-ecb-zero', value: aesKcv(AES_KEY) },
  wrapped: b64(kwp(KEK, AES_KEY)), certificates: [],
};

function keysBody() {
  return clone({
    bundleId: '289901c43a629e2e4a628b9163869ef0',
    created: '2026-11-22T06:12:20.116Z',
    tool: 'custos 0.1.0',
    source: SOURCE,
    kek: { algorithm: 'AES-256', kcv: aesKcv(KEK) },
    wrap: { mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' },
    escrow: { scheme: 'shamir-gf256', threshold: 2, total: 3, custodians: escrowCustodians() },
    dealer: { algorithm: 'Ed25519', publicKey: b64(DEALER.publicKey) },
    keys: [
      clone(AES_RECORD),
      {
        class: 'secret', keyType: 'GENERIC_SECRET', label: 'api-hmac', id: '02', bits: 256,
        usage: { encrypt: false, decrypt: false, sign: true, verify: true, wrap: false, unwrap: false, derive: false },
        private: true, sensitive: true, extractable: true,
        checkValue: { method: 'hmac-sha256', value: createHmac('sha256', HMAC_KEY).update('custos check value').digest().subarray(0, 3).toString('hex') },
        wrapped: b64(kwp(KEK, HMAC_KEY)), certificates: [],
      },
      {
        class: 'private', keyType: 'EC', label: 'tls-ec', id: '31', bits: 256,
        usage: { decrypt: false, sign: true, signRecover: false, unwrap: false, derive: false },
        private: true, sensitive: true, extractable: true,
        ecParams: '06082a8648ce3d030107',
        checkValue: { method: 'spki-sha256', value: sha256Hex(EC.spki).slice(0, 16) },
        wrapped: b64(kwp(KEK, EC.pkcs8)),
        publicKey: { label: 'tls-ec', keyType: 'EC', usage: { encrypt: false, verify: true, verifyRecover: false, wrap: false, derive: false }, ecParams: '06082a8648ce3d030107', ecPoint: `0441${EC.point.toString('hex')}` },
        // The certificate bytes are not parsed by a bundle reader: a stand-in DER SEQUENCE.
        certificates: [{ label: 'tls-ec', value: b64(hex('3003020101')), subject: '300f310d300b06035504030c0474657374', issuer: '300f310d300b06035504030c0474657374', serialNumber: '01' }],
      },
    ],
    skipped: [
      { class: 'secret', keyType: 'AES', label: 'hsm-internal', id: '07', reason: 'not extractable (CKA_EXTRACTABLE is false): the HSM will not release it, even wrapped' },
    ],
    policy: { name: 'spec-vectors.yaml', sha256: sha256Hex(utf8(POLICY_TEXT)) },
  });
}

function pinBody() {
  return clone({
    bundleId: '2b545a58434105837b0a2772ed5c73be',
    created: '2026-11-22T07:00:00.000Z',
    tool: 'custos 0.1.0',
    source: { label: 'backup', serial: 'cf84a1d2d63179c3', manufacturer: 'SoftHSM project', model: 'SoftHSM v2' },
    kek: { algorithm: 'AES-256', kcv: aesKcv(PIN_SECRET) },
    wrap: { mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' },
    escrow: {
      scheme: 'shamir-gf256', threshold: 3, total: 4,
      custodians: [...escrowCustodians(), { id: 'ciso', name: 'Chief Information Security Officer', recipient: STRANGER_AGE.recipient, index: 255 }].map((c, i) => ({ ...c, index: [1, 128, 254, 255][i] })),
    },
    dealer: { algorithm: 'Ed25519', publicKey: b64(PIN_DEALER.publicKey) },
    keys: [],
    skipped: [],
    escrowOf: { kind: 'token-pin', tokenLabel: 'backup', tokenSerial: 'cf84a1d2d63179c3', pinLength: 52 },
  });
}

/** A bundle file whose MAC is right for `auth` under `kek`. */
const macFile = (auth, kek = KEK) => serialiseBundle(auth, hmacWithKek(kek, BUNDLE_MAC_PURPOSE, auth));
const bundleFile = (body, kek = KEK) => macFile(bundleAuthenticatedBytes(body), kek);
const bundleAuth = (text) => utf8(`custos-bundle/1\n${text}\n`);

const OK_BUNDLE = bundleFile(keysBody());
const OK_AUTH = bundleAuthenticatedBytes(keysBody());
const BUNDLE_DIGEST = sha256Hex(OK_AUTH);
const PIN_BUNDLE = bundleFile(pinBody(), PIN_SECRET);
const PIN_DIGEST = sha256Hex(bundleAuthenticatedBytes(pinBody()));

const B = (name, bytes, rule, expect, more) => put(`bundle/${name}.bundle`, bytes, 'custos-bundle/1', rule, expect, more);
const macChecked = { check: 'mac', kek: 'kek' };
B('ok-keys', OK_BUNDLE, 'valid', 'ok', macChecked);
B('ok-pin-escrow', PIN_BUNDLE, 'valid', 'ok', { check: 'mac', kek: 'pinSecret' });
{
  const b = keysBody();
  b.escrow.custodians = b.escrow.custodians.slice(0, 2);
  b.escrow.total = 2;
  b.keys = [];
  b.skipped = [];
  delete b.policy;
  B('ok-minimal', bundleFile(b), 'valid', 'ok', macChecked);
  const u = keysBody();
  u.comment = 'a field this reader does not know';
  u.keys[0].note = { nested: [1, 2, 3] };
  B('ok-unknown-fields', bundleFile(u), 'valid', 'ok', macChecked);
}

// B1: the trailer.
const OK_MAC = hmacWithKek(KEK, BUNDLE_MAC_PURPOSE, OK_AUTH);
const macLine = (value) => Buffer.concat([OK_AUTH, utf8(`--- hmac-sha256 ${value}\n`)]);
{
  const canonical = b64(OK_MAC);
  // The last base64 character before "=" carries 2 unused bits: setting one gives the same 32 bytes.
  const last = canonical[42];
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const sibling = alphabet[alphabet.indexOf(last) ^ 1];
  B('bad-mac-not-canonical-base64', macLine(`${canonical.slice(0, 42)}${sibling}=`), 'B1', 'E_BUNDLE_FORMAT');
  B('bad-mac-no-padding', macLine(canonical.slice(0, 43)), 'B1', 'E_BUNDLE_FORMAT');
  B('bad-mac-31-bytes', macLine(b64(OK_MAC.subarray(0, 31))), 'B1', 'E_BUNDLE_FORMAT');
  B('bad-mac-33-bytes', macLine(b64(Buffer.concat([OK_MAC, Buffer.from([0])]))), 'B1', 'E_BUNDLE_FORMAT');
  B('bad-mac-hex-not-base64', macLine(OK_MAC.toString('hex')), 'B1', 'E_BUNDLE_FORMAT');
  B('bad-mac-line-twice', Buffer.concat([OK_BUNDLE, utf8(`--- hmac-sha256 ${canonical}\n`)]), 'B1', 'E_BUNDLE_FORMAT');
  B('bad-mac-tag-hmac-sha512', edit(macLine(canonical), '--- hmac-sha256 ', '--- hmac-sha512 '), 'E6', 'E_BUNDLE_FORMAT');
  B('bad-mac-two-spaces', edit(OK_BUNDLE, '--- hmac-sha256 ', '--- hmac-sha256  '), 'B1', 'E_BUNDLE_FORMAT');
}

// B2: fields, each with a MAC that is right for the bytes, so only the field rule is broken.
const fieldCases = [
  ['body-is-a-list', null, (b) => [b]],
  ['bundleId-uppercase', 'bundleId', (b) => { b.bundleId = b.bundleId.toUpperCase(); }],
  ['bundleId-short', 'bundleId', (b) => { b.bundleId = b.bundleId.slice(2); }],
  ['created-not-a-string', 'created', (b) => { b.created = 1764000000; }],
  ['source-serial-missing', 'source.serial', (b) => { delete b.source.serial; }],
  ['kek-algorithm-aes-128', 'kek.algorithm', (b) => { b.kek.algorithm = 'AES-128'; }],
  ['kek-kcv-8-digits', 'kek.kcv', (b) => { b.kek.kcv = `${b.kek.kcv}00`; }],
  ['wrap-mechanism-unpadded', 'wrap.mechanism', (b) => { b.wrap.mechanism = 'AES-KEY-WRAP'; }],
  ['escrow-scheme-unknown', 'escrow.scheme', (b) => { b.escrow.scheme = 'shamir-gf65536'; }],
  ['escrow-total-1', 'escrow.total', (b) => { b.escrow.total = 1; b.escrow.custodians = b.escrow.custodians.slice(0, 1); b.escrow.threshold = 1; }],
  ['escrow-total-256', 'escrow.total', (b) => { b.escrow.total = 256; }],
  ['escrow-threshold-1', 'escrow.threshold', (b) => { b.escrow.threshold = 1; }],
  ['escrow-threshold-above-total', 'escrow.threshold', (b) => { b.escrow.threshold = 4; }],
  ['escrow-threshold-fraction', 'escrow.threshold', (b) => { b.escrow.threshold = 2.5; }],
  ['escrow-threshold-string', 'escrow.threshold', (b) => { b.escrow.threshold = '2'; }],
  ['escrow-custodians-fewer-than-total', 'escrow.custodians', (b) => { b.escrow.custodians.pop(); }],
  ['escrow-custodians-repeat-id', 'escrow.custodians', (b) => { b.escrow.custodians[1].id = b.escrow.custodians[0].id; }],
  ['escrow-custodians-repeat-index', 'escrow.custodians', (b) => { b.escrow.custodians[1].index = 1; }],
  ['custodian-id-uppercase', 'escrow.custodians[].id', (b) => { b.escrow.custodians[0].id = 'Hale-LLP'; }],
  ['custodian-id-65-characters', 'escrow.custodians[].id', (b) => { b.escrow.custodians[0].id = `h${'a'.repeat(64)}`; }],
  ['custodian-recipient-not-age', 'escrow.custodians[].recipient', (b) => { b.escrow.custodians[0].recipient = b.escrow.custodians[0].recipient.replace('age1', 'age2'); }],
  ['custodian-recipient-post-quantum', 'escrow.custodians[].recipient', (b) => { b.escrow.custodians[0].recipient = `age1pq1${'q'.repeat(58)}`; }],
  ['custodian-index-0', 'escrow.custodians[].index', (b) => { b.escrow.custodians[0].index = 0; }],
  ['custodian-index-256', 'escrow.custodians[].index', (b) => { b.escrow.custodians[0].index = 256; }],
  ['dealer-algorithm-ecdsa', 'dealer.algorithm', (b) => { b.dealer.algorithm = 'ECDSA'; }],
  ['dealer-publickey-not-base64', 'dealer.publicKey', (b) => { b.dealer.publicKey = `${b64(DEALER.publicKey).slice(0, 43)}-`; }],
  ['keys-not-a-list', 'keys', (b) => { b.keys = {}; }],
  ['key-class-public', 'keys[].class', (b) => { b.keys[0].class = 'public'; }],
  ['key-id-odd-length', 'keys[].id', (b) => { b.keys[0].id = '012'; }],
  ['key-id-uppercase', 'keys[].id', (b) => { b.keys[2].id = '3A'; }],
  ['key-bits-negative', 'keys[].bits', (b) => { b.keys[0].bits = -1; }],
  ['key-bits-above-2-20', 'keys[].bits', (b) => { b.keys[0].bits = 1048577; }],
  ['key-usage-unknown-flag', 'keys[].usage', (b) => { b.keys[0].usage.encipher = true; }],
  ['key-usage-not-boolean', 'keys[].usage', (b) => { b.keys[0].usage.encrypt = 1; }],
  ['key-extractable-string', 'keys[].extractable', (b) => { b.keys[0].extractable = 'true'; }],
  ['key-checkvalue-method-unknown', 'keys[].checkValue.method', (b) => { b.keys[0].checkValue.method = 'kcv'; }],
  ['key-checkvalue-value-uppercase', 'keys[].checkValue.value', (b) => { b.keys[0].checkValue.value = b.keys[0].checkValue.value.toUpperCase(); }],
  ['key-wrapped-base64url', 'keys[].wrapped', (b) => { b.keys[0].wrapped = b.keys[0].wrapped.replace(/\+/g, '-').replace(/\//g, '_') + (b.keys[0].wrapped.match(/[+/]/) ? '' : '-'); }],
  ['key-modulus-null', 'keys[].modulus', (b) => { b.keys[0].modulus = null; }],
  ['key-certificates-missing', 'keys[].certificates', (b) => { delete b.keys[0].certificates; }],
  ['key-publickey-not-object', 'keys[].publicKey', (b) => { b.keys[2].publicKey = 'tls-ec'; }],
  ['key-publickey-ecpoint-not-hex', 'keys[].publicKey.ecPoint', (b) => { b.keys[2].publicKey.ecPoint = `0x${b.keys[2].publicKey.ecPoint}`; }],
  ['certificate-value-missing', 'keys[].certificates[].value', (b) => { delete b.keys[2].certificates[0].value; }],
  ['skipped-class-unknown', 'skipped[].class', (b) => { b.skipped[0].class = 'certificate'; }],
  ['skipped-reason-missing', 'skipped[].reason', (b) => { delete b.skipped[0].reason; }],
  ['policy-null', 'policy', (b) => { b.policy = null; }],
  ['policy-sha256-uppercase', 'policy.sha256', (b) => { b.policy.sha256 = b.policy.sha256.toUpperCase(); }],
];
for (const [name, field, mutate] of fieldCases) {
  const b = keysBody();
  const out = mutate(b) ?? b;
  B(`bad-field-${name}`, bundleFile(out), 'B2', 'E_BUNDLE_FORMAT', { field });
}
const pinCases = [
  ['escrowof-kind-unknown', 'escrowOf.kind', (b) => { b.escrowOf.kind = 'so-pin'; }],
  ['escrowof-pinlength-25', 'escrowOf.pinLength', (b) => { b.escrowOf.pinLength = 25; }],
  ['escrowof-pinlength-53', 'escrowOf.pinLength', (b) => { b.escrowOf.pinLength = 53; }],
  ['escrowof-tokenserial-missing', 'escrowOf.tokenSerial', (b) => { delete b.escrowOf.tokenSerial; }],
  ['escrowof-with-keys', 'keys', (b) => { b.keys = [clone(AES_RECORD)]; }],
];
for (const [name, field, mutate] of pinCases) {
  const b = pinBody();
  mutate(b);
  B(`bad-field-${name}`, bundleFile(b, PIN_SECRET), 'B2', 'E_BUNDLE_FORMAT', { field });
}

// B3 and B4: the file parses; the reassembled secret tells.
B('bad-mac-wrong-value', macLine(b64(Buffer.from(OK_MAC.map((x, i) => (i === 0 ? x ^ 1 : x))))), 'B4', 'E_BUNDLE_TAMPERED', macChecked);
B('bad-mac-body-edited', edit(OK_BUNDLE, '"label": "api-hmac"', '"label": "api-hmac2"'), 'B4', 'E_BUNDLE_TAMPERED', macChecked);
B('bad-mac-body-reindented', Buffer.concat([bundleAuth(JSON.stringify(keysBody(), null, 2)), utf8(`--- hmac-sha256 ${b64(OK_MAC)}\n`)]), 'B4', 'E_BUNDLE_TAMPERED', macChecked);
B('bad-mac-keyed-by-other-kek', macFile(OK_AUTH, OTHER_KEK), 'B4', 'E_BUNDLE_TAMPERED', macChecked);
{
  const b = keysBody();
  b.kek.kcv = aesKcv(OTHER_KEK);
  B('bad-kcv-not-the-kek', bundleFile(b), 'B3', 'E_KEK_MISMATCH', macChecked);
}

// ================================================================================= envelope
// The rules every envelope format shares (E1-E8), on each envelope format.

const UTF8_CASES = [
  // [name, what the bytes are]: each takes the place of the last character of a body string's anchor text
  ['overlong', 'C1 81: "A" as an overlong two-byte sequence', hex('c181')],
  ['overlong-three-byte', 'E0 81 81: "A" as an overlong three-byte sequence', hex('e08181')],
  ['surrogate', 'ED A0 80: the surrogate U+D800 encoded as if a scalar value', hex('eda080')],
  ['above-10ffff', 'F4 90 80 80: a code point above U+10FFFF', hex('f4908080')],
  ['truncated-sequence', 'E2 82: a three-byte sequence cut short', hex('e282')],
  ['lone-continuation', '80: a continuation byte with no lead', hex('80')],
  ['invalid-byte-ff', 'FF: a byte that never occurs in UTF-8', hex('ff')],
];
/**
 * Applies the envelope rules to one format's good file. `anchor` is ASCII text inside a string of the
 * body; its last character is replaced. `crlfRule` is the rule a CR before the final LF breaks (the
 * format's trailer value rule), or null where a CR there breaks none.
 */
function envelopeVectors(ext, format, good, anchor, codes, resign, crlfRule) {
  const E = (name, bytes, rule, expect, more) => put(`envelope/${name}.${ext}`, bytes, format, rule, expect, more);
  for (const [name, what, bytes] of UTF8_CASES) {
    E(`bad-utf8-${name}`, edit(good, anchor, Buffer.concat([utf8(anchor.slice(0, -1)), bytes])), 'E2', codes.damaged, { note: what });
  }
  const lastLine = good.lastIndexOf(utf8('\n--- ')) + 1;
  E('bad-utf8-in-trailer', Buffer.concat([good.subarray(0, lastLine + 4), hex('ff'), good.subarray(lastLine + 4)]), 'E2', codes.damaged);
  E('bad-bom', Buffer.concat([hex('efbbbf'), good]), 'E3', codes.format);
  E('bad-format-line-crlf', edit(good, `${format}\n`, `${format}\r\n`), 'E3', codes.format);
  E('bad-format-line-unknown-version', edit(good, `${format}\n`, `${format.replace(/\/1$/, '/9')}\n`), 'E3', codes.format);
  E('bad-format-line-leading-space', Buffer.concat([utf8(' '), good]), 'E3', codes.format);
  E('bad-no-final-newline', good.subarray(0, good.length - 1), 'E4', codes.format);
  E('bad-blank-line-at-end', Buffer.concat([good, utf8('\n')]), 'E5', codes.format);
  if (crlfRule) E('bad-crlf-at-end', Buffer.concat([good.subarray(0, good.length - 1), utf8('\r\n')]), crlfRule, codes.format);
  E('bad-text-after-trailer', Buffer.concat([good, utf8('signed-by: nobody\n')]), 'E5', codes.format);
  // Depth: 33 levels of nesting (the body object is level 1), and 32, in a field no reader knows.
  if (resign) {
    const nest = (n) => (n === 0 ? 'deep' : [nest(n - 1)]);
    E('bad-depth-33', resign((b) => { b.deep = nest(32); }), 'E7', codes.damaged);
    E('bad-json-trailing-comma', resign(null, (text) => text.replace(/\n}$/, ',\n}')), 'E8', codes.damaged);
    E('bad-json-duplicate-body', resign(null, (text) => `${text}\n${text}`), 'E8', codes.damaged);
  }
}

// =================================================================================== shares

const SHARE_DOC = (i, over = {}) => ({
  bundleId: keysBody().bundleId, bundleDigest: BUNDLE_DIGEST, custodian: CUSTODIANS[i].id,
  index: i + 1, threshold: 2, total: 3, share: KEK_SHARES[i], ...over,
});
const shareText = (doc, signer = DEALER) => {
  const signed = shareSignedBytes(doc);
  return utf8(serialiseShare(signed, signer.sign(signed)));
};
const S = (name, bytes, rule, expect, more) => put(`share/${name}.share`, bytes, 'custos-share/1', rule, expect, more);
const judged = (reason, more = {}) => ({ check: 'judge', subject: 'bundle/ok-keys.bundle', ...(reason ? { reason } : {}), ...more });
const OK_SHARES = CUSTODIANS.map((_, i) => shareText(SHARE_DOC(i)));
CUSTODIANS.forEach((c, i) => S(`ok-${c.id}`, OK_SHARES[i], 'valid', 'ok', judged(null, { openedWith: c.age.recipient })));
{
  const good = OK_SHARES[0];
  const lines = good.toString('utf8').split('\n');
  const swap = (a, b) => { const l = [...lines]; [l[a], l[b]] = [l[b], l[a]]; return utf8(l.join('\n')); };
  S('bad-format-line-unknown-version', edit(good, 'custos-share/1', 'custos-share/9'), 'S1', 'E_SHARE_FORMAT');
  S('bad-format-line-bundle', edit(good, 'custos-share/1', 'custos-bundle/1'), 'S1', 'E_SHARE_FORMAT');
  S('bad-bom', Buffer.concat([hex('efbbbf'), good]), 'S1', 'E_SHARE_FORMAT', {
    known: { got: 'ok', note: 'custos reads the plaintext with age-encryption\'s default TextDecoder, which strips a leading BOM before parseShare sees it' },
  });
  S('bad-line-order', swap(5, 6), 'S3', 'E_SHARE_FORMAT');
  S('bad-missing-final-newline', good.subarray(0, good.length - 1), 'S2', 'E_SHARE_FORMAT');
  S('bad-blank-line-at-end', Buffer.concat([good, utf8('\n')]), 'S2', 'E_SHARE_FORMAT');
  S('bad-crlf-line-ends', utf8(good.toString('utf8').replace(/\n/g, '\r\n')), 'S1', 'E_SHARE_FORMAT');
  S('bad-comment-line', utf8(good.toString('utf8').replace('custos-share/1\n', 'custos-share/1\n# share of hale-llp\n')), 'S2', 'E_SHARE_FORMAT');
  S('bad-no-space-after-colon', edit(good, 'index: 1', 'index:1'), 'S3', 'E_SHARE_FORMAT');
  S('bad-two-spaces-after-colon', edit(good, 'index: 1', 'index:  1'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-bundle-uppercase', edit(good, `bundle: ${keysBody().bundleId}`, `bundle: ${keysBody().bundleId.toUpperCase()}`), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-bundle-digest-short', edit(good, `bundle-digest: ${BUNDLE_DIGEST}`, `bundle-digest: ${BUNDLE_DIGEST.slice(0, 62)}`), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-custodian-uppercase', edit(good, 'custodian: hale-llp', 'custodian: Hale-llp'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-index-leading-zero', edit(good, 'index: 1', 'index: 01'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-index-0', edit(good, 'index: 1', 'index: 0'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-index-256', edit(good, 'index: 1', 'index: 256'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-index-plus-sign', edit(good, 'index: 1', 'index: +1'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-threshold-above-total', edit(good, 'threshold: 2', 'threshold: 4'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-threshold-1', edit(good, 'threshold: 2', 'threshold: 1'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-total-256', edit(good, 'total: 3', 'total: 256'), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-share-bits-not-8', edit(good, `share: ${KEK_SHARES[0]}`, `share: 9${KEK_SHARES[0].slice(1)}`), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-share-uppercase-hex', edit(good, `share: ${KEK_SHARES[0]}`, `share: ${KEK_SHARES[0].toUpperCase()}`), 'S4', 'E_SHARE_FORMAT');
  S('bad-field-share-no-data', edit(good, `share: ${KEK_SHARES[0]}`, 'share: 801'), 'S4', 'E_SHARE_FORMAT');
  const sig = lines[8].slice('signature: '.length);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const sibling = alphabet[alphabet.indexOf(sig[85]) ^ 1];
  S('bad-signature-not-canonical-base64', edit(good, sig, `${sig.slice(0, 85)}${sibling}==`), 'S5', 'E_SHARE_FORMAT');
  S('bad-signature-87-characters', edit(good, sig, sig.slice(1)), 'S4', 'E_SHARE_FORMAT');
  S('bad-signature-base64url', edit(good, sig, sig.replace(/\+/g, '-').replace(/\//g, '_').replace(/^[A-Za-z0-9]/, '-')), 'S4', 'E_SHARE_FORMAT');

  // Judged against bundle/ok-keys.bundle (J1-J7): the document parses; the share is refused.
  const other = keysBody();
  other.bundleId = '0e029a1530776e9a18544624fd40029c';
  S('bad-foreign-bundle', shareText(SHARE_DOC(0, { bundleId: other.bundleId }), OTHER_DEALER), 'J1', 'E_SHARE_REJECTED', judged('foreign-bundle', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-signature-edited-share-value', edit(good, `share: ${KEK_SHARES[0]}`, `share: ${KEK_SHARES[0].slice(0, -1)}${KEK_SHARES[0].endsWith('0') ? '1' : '0'}`), 'J2', 'E_SHARE_REJECTED', judged('bad-signature', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-signature-edited-index', edit(good, 'index: 1', 'index: 2'), 'J2', 'E_SHARE_REJECTED', judged('bad-signature', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-signature-other-dealer', shareText(SHARE_DOC(0), OTHER_DEALER), 'J2', 'E_SHARE_REJECTED', judged('bad-signature', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-bundle-digest-other-copy', shareText(SHARE_DOC(0, { bundleDigest: sha256Hex(utf8('another copy of the bundle')) })), 'J3', 'E_SHARE_REJECTED', judged('bundle-changed', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-custodian-not-in-bundle', shareText(SHARE_DOC(0, { custodian: 'mallory' })), 'J4', 'E_SHARE_REJECTED', judged('unknown-custodian', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-opened-with-other-custodian-key', OK_SHARES[0].subarray(0), 'J5', 'E_SHARE_REJECTED', judged('wrong-custodian-file', { openedWith: CUSTODIANS[1].age.recipient }));
  S('bad-signed-index-not-the-custodians', shareText(SHARE_DOC(0, { index: 2 })), 'J6', 'E_SHARE_REJECTED', judged('edited', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-signed-share-x-not-index', shareText(SHARE_DOC(0, { share: KEK_SHARES[1] })), 'J6', 'E_SHARE_REJECTED', judged('edited', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-signed-threshold-not-the-bundles', shareText(SHARE_DOC(0, { threshold: 3 })), 'J6', 'E_SHARE_REJECTED', judged('edited', { openedWith: CUSTODIANS[0].age.recipient }));
  S('bad-duplicate-of-hale-llp', utf8(`${good.toString('utf8')}`), 'J7', 'E_SHARE_REJECTED', judged('duplicate', { openedWith: CUSTODIANS[0].age.recipient, after: ['share/ok-hale-llp.share'] }));
}

// ================================================================================= ceremony

const CEREMONY_CUSTODIANS = escrowCustodians();
const keySummary = (k) => ({ class: k.class, keyType: k.keyType, label: k.label, id: k.id });
function restoreBody() {
  return clone({
    nonce: '53b1086895df7419fe2c1544f907c082',
    purpose: 'restore',
    created: '2026-12-02T09:48:24.411Z',
    expires: '2026-12-02T11:48:24.411Z',
    openedBy: 'ceremony-lead',
    subject: { kind: 'bundle', file: '../bundle/ok-keys.bundle', bundleId: keysBody().bundleId, bundleDigest: BUNDLE_DIGEST, source: SOURCE, keys: keysBody().keys.map(keySummary) },
    threshold: 2,
    total: 3,
    custodians: CEREMONY_CUSTODIANS,
    dealer: b64(DEALER.publicKey),
    recipient: CEREMONY_AGE.recipient,
    signingKey: b64(CEREMONY_KEY.publicKey),
  });
}
function pinCeremonyBody() {
  const p = pinBody();
  return clone({
    nonce: 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf',
    purpose: 'drill',
    created: '2026-12-03T08:00:00.000Z',
    expires: '2026-12-03T09:00:00.000Z',
    openedBy: 'ceremony-lead',
    subject: { kind: 'pin-escrow', file: '../bundle/ok-pin-escrow.bundle', bundleId: p.bundleId, bundleDigest: PIN_DIGEST, token: { label: 'backup', serial: 'cf84a1d2d63179c3' } },
    threshold: 3,
    total: 4,
    custodians: p.escrow.custodians,
    dealer: b64(PIN_DEALER.publicKey),
    recipient: PIN_CEREMONY_AGE.recipient,
    signingKey: b64(CEREMONY_KEY.publicKey),
  });
}
const ceremonyFile = (body, signer = CEREMONY_KEY) => {
  const signed = ceremonySignedBytes(body);
  return serialiseCeremony(signed, signer.sign(signed));
};
/** A ceremony file over bytes that are not the canonical form of a body, signed as they are. */
const ceremonyOver = (text, signer = CEREMONY_KEY) => {
  const signed = utf8(`custos-ceremony/1\n${text}\n`);
  return serialiseCeremony(signed, signer.sign(signed));
};
const C = (name, bytes, rule, expect, more) => put(`ceremony/${name}.ceremony`, bytes, 'custos-ceremony/1', rule, expect, more);
const OK_CEREMONY = ceremonyFile(restoreBody());
const CEREMONY_DIGEST = sha256Hex(OK_CEREMONY);
C('ok-restore', OK_CEREMONY, 'valid', 'ok');
C('ok-pin-escrow-drill', ceremonyFile(pinCeremonyBody()), 'valid', 'ok');
{
  const sig = OK_CEREMONY.toString('utf8').split('\n').at(-2).slice('--- ed25519 '.length);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  C('bad-signature-edited-expiry', edit(OK_CEREMONY, '"expires": "2026-12-02T11:48:24.411Z"', '"expires": "2026-12-09T11:48:24.411Z"'), 'C4', 'E_CEREMONY_FORMAT');
  C('bad-signature-edited-recipient', edit(OK_CEREMONY, CEREMONY_AGE.recipient, STRANGER_AGE.recipient), 'C4', 'E_CEREMONY_FORMAT');
  C('bad-signature-by-other-key', ceremonyFile(restoreBody(), OTHER_SIGNER), 'C4', 'E_CEREMONY_FORMAT');
  C('bad-signature-not-canonical-base64', edit(OK_CEREMONY, sig, `${sig.slice(0, 85)}${alphabet[alphabet.indexOf(sig[85]) ^ 1]}==`), 'C1', 'E_CEREMONY_FORMAT');
  C('bad-signature-63-bytes', edit(OK_CEREMONY, sig, b64(Buffer.from(sig, 'base64').subarray(0, 63))), 'C1', 'E_CEREMONY_FORMAT');
  C('bad-no-signature-line', OK_CEREMONY.subarray(0, OK_CEREMONY.lastIndexOf(utf8('--- ed25519 '))), 'E4', 'E_CEREMONY_FORMAT');
  C('bad-signature-line-twice', Buffer.concat([OK_CEREMONY, utf8(`--- ed25519 ${sig}\n`)]), 'C1', 'E_CEREMONY_FORMAT');
  C('bad-trailer-tag-ed448', edit(OK_CEREMONY, '--- ed25519 ', '--- ed448 '), 'E6', 'E_CEREMONY_FORMAT');
  // Canonical form (C3): each signed over exactly its bytes, so only canonical form is broken.
  C('bad-not-canonical-indent-2', ceremonyOver(JSON.stringify(restoreBody(), null, 2)), 'C3', 'E_CEREMONY_FORMAT');
  C('bad-not-canonical-key-order', ceremonyOver(JSON.stringify({ purpose: 'restore', ...restoreBody() }, null, 1)), 'C3', 'E_CEREMONY_FORMAT');
  C('bad-not-canonical-unknown-field', ceremonyFile({ ...restoreBody(), note: 'not a ceremony field' }), 'C3', 'E_CEREMONY_FORMAT');
  C('bad-not-canonical-escaped-slash', ceremonyOver(JSON.stringify(restoreBody(), null, 1).replace('"../bundle/ok-keys.bundle"', '"..\\/bundle\\/ok-keys.bundle"')), 'C3', 'E_CEREMONY_FORMAT');
  C('bad-not-canonical-number-form', ceremonyOver(JSON.stringify(restoreBody(), null, 1).replace('"threshold": 2', '"threshold": 2.0')), 'C3', 'E_CEREMONY_FORMAT');
  const cfield = [
    ['nonce-uppercase', 'nonce', (b) => { b.nonce = b.nonce.toUpperCase(); }],
    ['purpose-unknown', 'purpose', (b) => { b.purpose = 'audit'; }],
    ['expires-not-a-time', 'expires', (b) => { b.expires = 'in two hours'; }],
    ['created-missing', 'created', (b) => { delete b.created; }],
    ['subject-kind-unknown', 'subject.kind', (b) => { b.subject.kind = 'keyring'; }],
    ['subject-digest-short', 'subject.bundleDigest', (b) => { b.subject.bundleDigest = b.subject.bundleDigest.slice(1); }],
    ['subject-keys-missing', 'subject.keys', (b) => { delete b.subject.keys; }],
    ['subject-key-id-odd', 'subject.keys[].id', (b) => { b.subject.keys[0].id = '1'; }],
    ['threshold-above-total', 'threshold', (b) => { b.threshold = 4; }],
    ['total-1', 'total', (b) => { b.total = 1; }],
    ['custodians-fewer-than-total', 'custodians', (b) => { b.custodians.pop(); }],
    ['custodian-recipient-not-age', 'custodians[].recipient', (b) => { b.custodians[0].recipient = 'ssh-ed25519 AAAA'; }],
    ['recipient-not-age', 'recipient', (b) => { b.recipient = b.recipient.toUpperCase(); }],
    ['request-uppercase', 'request', (b) => { b.request = 'A'.repeat(64); }],
    ['dealer-not-base64', 'dealer', (b) => { b.dealer = '*'; }],
    // Times: exactly as toISOString writes them; Date.parse would take each of these.
    ['created-with-offset', 'created', (b) => { b.created = '2026-12-02T10:48:24.411+01:00'; }],
    ['created-no-milliseconds', 'created', (b) => { b.created = '2026-12-02T09:48:24Z'; }],
    ['expires-http-date', 'expires', (b) => { b.expires = 'Wed, 02 Dec 2026 11:48:24 GMT'; }],
    ['expires-november-31', 'expires', (b) => { b.expires = '2026-11-31T11:48:24.411Z'; }],
    ['expires-hour-24', 'expires', (b) => { b.expires = '2026-12-02T24:00:00.000Z'; }],
    // The bundle's rule for custodians: no id and no share index twice.
    ['custodians-repeat-id', 'custodians', (b) => { b.custodians[1].id = b.custodians[0].id; }],
    ['custodians-repeat-index', 'custodians', (b) => { b.custodians[1].index = b.custodians[0].index; }],
    // Keys: 32 bytes in canonical base64.
    ['dealer-31-bytes', 'dealer', (b) => { b.dealer = b64(DEALER.publicKey.subarray(1)); }],
    ['dealer-not-canonical-base64', 'dealer', (b) => { b.dealer = nonCanonicalB64(b.dealer); }],
    ['signingKey-not-canonical-base64', 'signingKey', (b) => { b.signingKey = nonCanonicalB64(b.signingKey); }],
    ['signingKey-33-bytes', 'signingKey', (b) => { b.signingKey = b64(Buffer.concat([CEREMONY_KEY.publicKey, Buffer.alloc(1)])); }],
  ];
  for (const [name, field, mutate] of cfield) {
    const b = restoreBody();
    mutate(b);
    C(`bad-field-${name}`, ceremonyFile(b), 'C2', 'E_CEREMONY_FORMAT', { field });
  }
  // `request` and `handover` belong to a handover ceremony only.
  C('bad-field-request-in-restore', ceremonyFile(withMemberAfter(restoreBody(), 'subject', 'request', sha256Hex(utf8('a handover request')))), 'C2', 'E_CEREMONY_FORMAT', { field: 'request' });
}

// ================================================================================ submission

const SUBMITTED = '2026-12-02T10:00:00.000Z';
const JUDGED_AT = '2026-12-02T10:05:00.000Z';
function submission(i, { ceremony = restoreBody(), digest = CEREMONY_DIGEST, to = CEREMONY_AGE, header = {}, sealedHeader = {}, share, openedWith } = {}) {
  const base = { ceremony: ceremony.nonce, ceremonyDigest: digest, custodian: CUSTODIANS[i].id, submitted: SUBMITTED };
  const payload = payloadText({ ...base, ...sealedHeader, openedWith: openedWith ?? CUSTODIANS[i].age.recipient, share: (share ?? OK_SHARES[i]).toString('utf8') });
  const sealed = ageSeal(to.publicKey, utf8(payload), `${CUSTODIANS[i].id} ${JSON.stringify({ header, sealedHeader, to: to.recipient, openedWith })}`);
  return { payload: utf8(payload), file: utf8(serialiseSubmission({ ...base, ...header }, sealed)) };
}
const judgedSubmission = (reason, more = {}) => ({ check: 'judge', ceremony: 'ceremony/ok-restore.ceremony', now: JUDGED_AT, ...(reason ? { reason } : {}), ...more });
const M = (name, bytes, rule, expect, more) => put(`submission/${name}.submission`, bytes, 'custos-submission/1', rule, expect, more);
const P = (name, bytes, rule, expect, more) => put(`submission/${name}.payload`, bytes, 'custos-submission-payload/1', rule, expect, more);
{
  const ok = submission(0);
  M('ok-hale-llp', ok.file, 'valid', 'ok', judgedSubmission(null));
  M('ok-okafor-law', submission(1).file, 'valid', 'ok', judgedSubmission(null));
  P('ok-hale-llp', ok.payload, 'valid', 'ok');
  const f = ok.file;
  const rejected = (reason, more) => judgedSubmission(reason, more);
  M('bad-format-line-unknown-version', edit(f, 'custos-submission/1', 'custos-submission/9'), 'M1', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-header-line-order', edit(edit(f, `custodian: hale-llp\n`, ''), `submitted: ${SUBMITTED}\n`, `submitted: ${SUBMITTED}\ncustodian: hale-llp\n`), 'M2', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-ceremony-uppercase', edit(f, `ceremony: ${restoreBody().nonce}`, `ceremony: ${restoreBody().nonce.toUpperCase()}`), 'M2', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-ceremony-digest-short', edit(f, `ceremony-digest: ${CEREMONY_DIGEST}`, `ceremony-digest: ${CEREMONY_DIGEST.slice(0, 32)}`), 'M2', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-custodian-not-an-id', edit(f, 'custodian: hale-llp', 'custodian: Hale & Partners'), 'M2', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-submitted-not-a-time', edit(f, `submitted: ${SUBMITTED}`, 'submitted: yesterday'), 'M2', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-sealed-part-missing', utf8(f.toString('utf8').replace(/-----BEGIN AGE[^]*$/, `${ok.payload.toString('utf8')}`)), 'M3', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-wrong-ceremony', submission(0, { ceremony: pinCeremonyBody(), digest: sha256Hex(ceremonyFile(pinCeremonyBody())), to: PIN_CEREMONY_AGE }).file, 'M4', 'E_SUBMISSION_REJECTED', rejected('wrong-ceremony'));
  M('bad-arrives-after-expiry', submission(2).file, 'M5', 'E_SUBMISSION_REJECTED', rejected('expired', { now: '2026-12-02T11:48:24.411Z' }));
  M('bad-ceremony-digest-other-file', submission(0, { digest: sha256Hex(ceremonyFile(restoreBody(), OTHER_SIGNER)) }).file, 'M6', 'E_SUBMISSION_REJECTED', rejected('ceremony-changed'));
  M('bad-clear-ceremony-digest-edited', edit(f, `ceremony-digest: ${CEREMONY_DIGEST}`, `ceremony-digest: ${sha256Hex(utf8('edited'))}`), 'M6', 'E_SUBMISSION_REJECTED', rejected('ceremony-changed'));
  M('bad-sealed-to-other-key', submission(0, { to: STRANGER_AGE }).file, 'M7', 'E_SUBMISSION_REJECTED', rejected('unopened'));
  {
    // One base64 character of the armored body changed: the armor decodes, the age MAC fails.
    const text = f.toString('utf8');
    const at = text.indexOf('-----BEGIN AGE ENCRYPTED FILE-----\n') + 36 + 100;
    const changed = text[at] === 'A' ? 'B' : 'A';
    M('bad-sealed-byte-changed', utf8(text.slice(0, at) + changed + text.slice(at + 1)), 'M7', 'E_SUBMISSION_REJECTED', rejected('unopened'));
  }
  {
    const text = f.toString('utf8');
    M('bad-sealed-armor-truncated', utf8(text.slice(0, text.indexOf('-----END AGE'))), 'M7', 'E_SUBMISSION_REJECTED', rejected('unopened'));
  }
  const noOpenedWith = (s) => utf8(s.toString('utf8').replace(/opened-with: [^\n]*\n/, ''));
  {
    // A payload without its opened-with line, sealed properly.
    const base = { ceremony: restoreBody().nonce, ceremonyDigest: CEREMONY_DIGEST, custodian: 'hale-llp', submitted: SUBMITTED };
    const payload = noOpenedWith(ok.payload);
    M('bad-payload-no-opened-with', utf8(serialiseSubmission(base, ageSeal(CEREMONY_AGE.publicKey, payload, 'no opened-with'))), 'M8', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  }
  M('bad-clear-submitted-edited', edit(f, `submitted: ${SUBMITTED}`, 'submitted: 2026-12-02T09:50:00.000Z'), 'M9', 'E_SUBMISSION_REJECTED', rejected('edited'));
  M('bad-sealed-header-other-custodian', submission(0, { sealedHeader: { custodian: 'okafor-law' } }).file, 'M9', 'E_SUBMISSION_REJECTED', rejected('edited'));
  M('bad-share-inside-not-a-share', submission(0, { share: utf8('custos-share/1\nnot a share\n') }).file, 'M10', 'E_SUBMISSION_REJECTED', rejected('malformed'));
  M('bad-header-names-other-custodian', submission(0, { header: { custodian: 'okafor-law' }, sealedHeader: { custodian: 'okafor-law' } }).file, 'M11', 'E_SUBMISSION_REJECTED', rejected('edited'));
  M('bad-share-inside-edited', submission(0, { share: edit(OK_SHARES[0], 'index: 1', 'index: 2') }).file, 'J2', 'E_SUBMISSION_REJECTED', rejected('bad-signature'));
  M('bad-opened-with-other-custodian-key', submission(0, { openedWith: CUSTODIANS[1].age.recipient }).file, 'J5', 'E_SUBMISSION_REJECTED', rejected('wrong-custodian-file'));
  M('bad-duplicate-of-hale-llp', submission(0, { header: { submitted: '2026-12-02T10:01:00.000Z' }, sealedHeader: { submitted: '2026-12-02T10:01:00.000Z' } }).file, 'J7', 'E_SUBMISSION_REJECTED', rejected('duplicate', { after: ['submission/ok-hale-llp.submission'] }));

  const pl = ok.payload;
  P('bad-format-line-unknown-version', edit(pl, 'custos-submission-payload/1', 'custos-submission-payload/9'), 'P1', 'E_SUBMISSION_REJECTED');
  P('bad-header-line-order', edit(edit(pl, `custodian: hale-llp\n`, ''), `submitted: ${SUBMITTED}\n`, `submitted: ${SUBMITTED}\ncustodian: hale-llp\n`), 'P2', 'E_SUBMISSION_REJECTED');
  P('bad-opened-with-missing', noOpenedWith(pl), 'P3', 'E_SUBMISSION_REJECTED');
  P('bad-opened-with-not-age', edit(pl, `opened-with: ${CUSTODIANS[0].age.recipient}`, `opened-with: ${CUSTODIANS[0].age.identity}`), 'P3', 'E_SUBMISSION_REJECTED');
}

// ==================================================================================== audit

const RESTORE_NONCE = restoreBody().nonce;
const SUBMISSION_DIGEST = sha256Hex(submission(0).file);
const AUDIT_FACTS = [
  { facts: { op: 'backup', actor: 'alice', outcome: 'ok', bundle: keysBody().bundleId, artifacts: { bundle: sha256Hex(OK_BUNDLE), 'share:hale-llp': sha256Hex(utf8('share file 1')), 'share:okafor-law': sha256Hex(utf8('share file 2')), 'share:lindqvist': sha256Hex(utf8('share file 3')) }, detail: { hsm: 'primary', keys: 3, policy: 'spec-vectors.yaml', skipped: 1, threshold: 2, token: 'primary', total: 3 } }, time: '2026-11-22T06:12:20.500Z' },
  { facts: { op: 'ceremony-open', actor: 'ceremony-lead', outcome: 'ok', ceremony: RESTORE_NONCE, bundle: keysBody().bundleId, artifacts: { bundle: BUNDLE_DIGEST, ceremony: CEREMONY_DIGEST }, detail: { custodians: CUSTODIANS.map((c) => c.id), expires: restoreBody().expires, purpose: 'restore', recipient: CEREMONY_AGE.recipient, signingKey: b64(CEREMONY_KEY.publicKey), threshold: 2, total: 3 } }, time: '2026-12-02T09:48:24.500Z', signer: CEREMONY_KEY },
  { facts: { op: 'submission-accepted', actor: 'ceremony-lead', outcome: 'ok', ceremony: RESTORE_NONCE, bundle: keysBody().bundleId, artifacts: { submission: SUBMISSION_DIGEST }, detail: { accepted: 1, custodian: 'hale-llp', quorum: 2, source: 'hale-llp.submission' } }, time: '2026-12-02T10:05:00.000Z', signer: CEREMONY_KEY },
  { facts: { op: 'submission-rejected', actor: 'ceremony-lead', outcome: 'refused', ceremony: RESTORE_NONCE, bundle: keysBody().bundleId, artifacts: { submission: sha256Hex(utf8('a replayed submission')) }, detail: { message: 'was made for ceremony a0a1a2a3a4a5a6a7a8a9aaabacadaeaf, not this one', reason: 'wrong-ceremony', source: 'replay.submission' } }, time: '2026-12-02T10:06:00.000Z', signer: CEREMONY_KEY },
  { facts: { op: 'ceremony-close', actor: 'ceremony-lead', outcome: 'failed', code: 'E_PIN_INCORRECT', ceremony: RESTORE_NONCE, bundle: keysBody().bundleId, artifacts: { bundle: BUNDLE_DIGEST, ceremony: CEREMONY_DIGEST }, detail: { error: 'the PIN of token "dr-site" is incorrect', purpose: 'restore', quorum: ['hale-llp', 'okafor-law'] } }, time: '2026-12-02T10:20:00.000Z', signer: CEREMONY_KEY },
];
/** The log's lines (without newlines), built entry by entry; `tweak(i, facts)` may change entry i before it is made. */
function auditLines(items = AUDIT_FACTS, { firstPrev = GENESIS, signerOf } = {}) {
  const lines = [];
  let prev = firstPrev;
  items.forEach((it, i) => {
    const signer = signerOf ? signerOf(i, it.signer) : it.signer;
    const { line } = makeEntry(it.facts, i + 1, it.time, prev, signer);
    lines.push(line);
    prev = sha256Hex(utf8(line));
  });
  return lines;
}
const logOf = (lines) => utf8(lines.map((l) => `${l}\n`).join(''));
const A = (name, bytes, rule, problems, more) => put(`audit/${name}.jsonl`, bytes, 'custos-audit/1', rule, problems.length ? 'E_AUDIT_TAMPERED' : 'ok', { check: 'log', problems, ...more });
{
  const lines = auditLines();
  A('ok-five-entries', logOf(lines), 'valid', []);
  A('ok-empty', Buffer.alloc(0), 'valid', []);
  A('ok-signed-without-ceremony-open', logOf(auditLines([AUDIT_FACTS[0], AUDIT_FACTS[2]])), 'valid', [], { note: 'a valid signature by a key no ceremony-open in the log names: not a problem (counted as unanchored)' });
  const at = (i, from, to) => lines.map((l, j) => {
    if (j !== i) return l;
    const changed = l.replace(from, to);
    if (changed === l) throw new Error(`make.mjs: audit line ${i + 1} has no ${from}`);
    return changed;
  });
  A('bad-edited-first-entry', logOf(at(0, '"actor":"alice"', '"actor":"mallory"')), 'A3', ['edited']);
  A('bad-edited-signed-entry', logOf(at(2, '"accepted":1', '"accepted":2')), 'A3', ['edited', 'bad-signature']);
  A('bad-edited-last-signed-entry', logOf(at(4, '"outcome":"failed"', '"outcome":"ok"')), 'A5', ['bad-signature']);
  A('bad-not-canonical-space', logOf(at(4, '"seq":5,', '"seq": 5,')), 'A2', ['edited']);
  A('bad-not-canonical-key-order', logOf(at(4, '{"v":1,"seq":5,', '{"seq":5,"v":1,')), 'A2', ['edited']);
  {
    const error = JSON.stringify(AUDIT_FACTS[4].facts.detail.error);
    A('bad-not-canonical-detail-unsorted', logOf(at(4, `"detail":{"error":${error},"purpose":"restore"`, `"detail":{"purpose":"restore","error":${error}`)), 'A2', ['edited']);
  }
  A('bad-crlf-last-line', utf8(logOf(lines).toString('utf8').replace(/\n$/, '\r\n')), 'A2', ['edited']);
  A('bad-deleted-middle-entry', logOf(lines.filter((_, i) => i !== 2)), 'A3', ['deleted']);
  A('bad-deleted-first-entry', logOf(lines.slice(1)), 'A3', ['deleted']);
  A('bad-reordered', logOf([lines[0], lines[1], lines[3], lines[2], lines[4]]), 'A4', ['reordered']);
  {
    const forged = makeEntry({ op: 'submission-accepted', actor: 'mallory', outcome: 'ok', ceremony: RESTORE_NONCE, detail: { accepted: 2, custodian: 'okafor-law', quorum: 2, source: 'forged.submission' } }, 3, '2026-12-02T10:05:30.000Z', sha256Hex(utf8(lines[1]))).line;
    A('bad-inserted-entry', logOf([lines[0], lines[1], lines[2], forged, lines[3], lines[4]]), 'A3', ['inserted']);
  }
  A('bad-first-prev-not-genesis', logOf(auditLines(AUDIT_FACTS, { firstPrev: 'f'.repeat(64) })), 'A3', ['edited']);
  A('bad-wrong-key', logOf(auditLines(AUDIT_FACTS, { signerOf: (i, s) => (i === 2 ? OTHER_SIGNER : s) })), 'A6', ['wrong-key']);
  A('bad-reopened-with-other-key', logOf(auditLines([...AUDIT_FACTS, { ...AUDIT_FACTS[1], facts: { ...AUDIT_FACTS[1].facts, detail: { ...AUDIT_FACTS[1].facts.detail, signingKey: b64(OTHER_SIGNER.publicKey) } }, time: '2026-12-02T10:30:00.000Z', signer: OTHER_SIGNER }])), 'A6', ['wrong-key']);
  A('bad-sig-value-not-canonical-base64', logOf(at(4, /"value":"([^"]*)"/, (_, v) => `"value":"${nonCanonicalB64(v)}"`)), 'A5', ['bad-signature']);
  A('bad-sig-key-not-canonical-base64', logOf(at(4, /"sig":\{"key":"([^"]*)"/, (_, k) => `"sig":{"key":"${nonCanonicalB64(k)}"`)), 'A5', ['bad-signature']);
  A('bad-sig-key-31-bytes', logOf(at(4, /"sig":\{"key":"[^"]*"/, `"sig":{"key":"${b64(CEREMONY_KEY.publicKey.subarray(1))}"`)), 'A5', ['bad-signature']);
  A('bad-truncated-mid-line', logOf(lines).subarray(0, logOf(lines).length - 40), 'A1', ['malformed']);
  A('bad-blank-line-at-end', Buffer.concat([logOf(lines), utf8('\n')]), 'A1', ['malformed']);
  A('bad-utf8-in-last-entry', Buffer.concat([logOf(lines.slice(0, 4)), edit(utf8(`${lines[4]}\n`), '"actor":"ceremony-lead"', Buffer.concat([utf8('"actor":"ceremony-lead'), hex('c0af'), utf8('"')]))]), 'A1', ['malformed']);
  A('bad-unknown-field', logOf(at(4, '"v":1,', '"v":1,"note":"x",')), 'A1', ['malformed']);
  A('bad-version-2', logOf(at(4, '"v":1,', '"v":2,')), 'A1', ['malformed']);
  A('bad-seq-0', logOf(at(0, '"seq":1,', '"seq":0,')), 'A1', ['malformed']);
  A('bad-time-with-offset', logOf(at(4, '"time":"2026-12-02T10:20:00.000Z"', '"time":"2026-12-02T11:20:00.000+01:00"')), 'A1', ['malformed']);
  A('bad-outcome-unknown', logOf(at(4, '"outcome":"failed"', '"outcome":"error"')), 'A1', ['malformed']);
  A('bad-artifact-digest-uppercase', logOf(at(4, `"bundle":"${BUNDLE_DIGEST}"`, `"bundle":"${BUNDLE_DIGEST.toUpperCase()}"`)), 'A1', ['malformed']);
  A('bad-detail-value-object', logOf(at(4, '"purpose":"restore"', '"purpose":{"kind":"restore"}')), 'A1', ['malformed']);
  A('bad-null-optional-field', logOf(at(4, '"code":"E_PIN_INCORRECT"', '"code":null')), 'A1', ['malformed']);
}

// ====================================================================== handover request

const DOCUMENT_SHA256 = sha256Hex(utf8('spec vectors: the subpoena document'));
function requestBody(over = {}) {
  return clone({
    requestId: 'cee697e06b8d28a65aed5114ef50b6f3',
    created: '2026-11-28T10:00:00.000Z',
    requestedBy: 'ceremony-lead',
    matter: 'DFS-2026-0142',
    authority: 'NY Department of Financial Services',
    basis: 'subpoena',
    document: { name: 'subpoena.pdf', sha256: DOCUMENT_SHA256 },
    bundle: { file: '../bundle/ok-keys.bundle', bundleId: keysBody().bundleId, bundleDigest: BUNDLE_DIGEST },
    scope: [{ class: 'secret', keyType: 'AES', label: 'payments-aes-01', id: '01', checkValue: AES_RECORD.checkValue }],
    recipient: { spki: b64(RECIPIENT_SPKI), sha256: sha256Hex(RECIPIENT_SPKI), bits: 2048 },
    noticeGiven: '2026-11-28T09:00:00.000Z',
    policy: { name: 'spec-vectors.yaml', sha256: sha256Hex(utf8(POLICY_TEXT)), text: POLICY_TEXT },
    ...over,
  });
}
const APPROVALS = [
  { role: 'general-counsel', approver: 'general-counsel', time: '2026-11-28T11:00:00.000Z' },
  { role: 'custodian', approver: 'hale-llp', time: '2026-11-28T12:00:00.000Z' },
  { role: 'custodian', approver: 'okafor-law', time: '2026-11-28T13:00:00.000Z' },
];
/** Approvals signed by `key(a)` (the approver's own key by default) over `digest`. */
const approve = (digest, list = APPROVALS, key = (a) => APPROVERS[a.approver]) =>
  list.map((a) => ({ ...a, signature: b64(key(a).sign(approvalSignedBytes(digest, a))) }));
function requestFile(body = requestBody(), approvals) {
  const signed = requestSignedBytes(body);
  return serialiseRequest(signed, approvals ?? approve(sha256Hex(signed)));
}
const OK_REQUEST_BODY = requestBody();
const REQUEST_DIGEST = sha256Hex(requestSignedBytes(OK_REQUEST_BODY));
const OK_REQUEST = requestFile();
const R = (name, bytes, rule, expect, more) => put(`handover-request/${name}.request`, bytes, 'custos-handover-request/1', rule, expect, more);
const withApprovals = (failing = []) => ({ check: 'approvals', failing });
R('ok-three-approvals', OK_REQUEST, 'valid', 'ok', withApprovals());
R('ok-no-approvals', requestFile(OK_REQUEST_BODY, []), 'valid', 'ok', withApprovals());
{
  const signed = requestSignedBytes(OK_REQUEST_BODY);
  const lines = approve(REQUEST_DIGEST).map((a) => `--- approval ${JSON.stringify(a)}\n`);
  const over = (text, approvalLines = lines) => Buffer.concat([utf8(`custos-handover-request/1\n${text}\n`), utf8(approvalLines.join(''))]);
  R('bad-not-canonical-indent-2', over(JSON.stringify(OK_REQUEST_BODY, null, 2)), 'R3', 'E_HANDOVER_FORMAT');
  R('bad-not-canonical-unknown-field', requestFile(requestBody({ urgent: true })), 'R3', 'E_HANDOVER_FORMAT');
  R('bad-not-canonical-unicode-escape', over(JSON.stringify(OK_REQUEST_BODY, null, 1).replace('"subpoena"', '"\\u0073ubpoena"')), 'R3', 'E_HANDOVER_FORMAT');
  const rfield = [
    ['requestId-uppercase', 'requestId', { requestId: OK_REQUEST_BODY.requestId.toUpperCase() }],
    ['document-sha256-short', 'document.sha256', { document: { name: 'subpoena.pdf', sha256: DOCUMENT_SHA256.slice(1) } }],
    ['bundle-id-missing', 'bundle.bundleId', { bundle: { file: '../bundle/ok-keys.bundle', bundleDigest: BUNDLE_DIGEST } }],
    ['scope-class-public', 'scope[].class', { scope: [{ ...OK_REQUEST_BODY.scope[0], class: 'public' }] }],
    ['scope-checkvalue-missing', 'scope[].checkValue', { scope: [{ class: 'secret', keyType: 'AES', label: 'payments-aes-01', id: '01' }] }],
    ['recipient-bits-1023', 'recipient.bits', { recipient: { ...OK_REQUEST_BODY.recipient, bits: 1023 } }],
    ['recipient-spki-not-base64', 'recipient.spki', { recipient: { ...OK_REQUEST_BODY.recipient, spki: b64url(RECIPIENT_SPKI) + '-' } }],
    ['policy-text-missing', 'policy.text', { policy: { name: 'spec-vectors.yaml', sha256: sha256Hex(utf8(POLICY_TEXT)) } }],
    ['created-not-a-time', 'created', { created: 'yesterday' }],
    ['created-with-offset', 'created', { created: '2026-11-28T11:00:00.000+01:00' }],
    ['noticeGiven-not-a-time', 'noticeGiven', { noticeGiven: 'last Tuesday' }],
    ['noticeGiven-no-milliseconds', 'noticeGiven', { noticeGiven: '2026-11-28T09:00:00Z' }],
    ['noticeGiven-date-only', 'noticeGiven', { noticeGiven: '2026-11-28' }],
    ['noticeGiven-february-30', 'noticeGiven', { noticeGiven: '2026-02-30T09:00:00.000Z' }],
  ];
  for (const [name, field, over2] of rfield) R(`bad-field-${name}`, requestFile(requestBody(over2)), 'R2', 'E_HANDOVER_FORMAT', { field });
  const one = `--- approval ${JSON.stringify(approve(REQUEST_DIGEST)[0])}\n`;
  R('bad-approval-not-json', Buffer.concat([signed, utf8(one.replace('{"role"', '{role'))]), 'R1', 'E_HANDOVER_FORMAT');
  R('bad-approval-tag', Buffer.concat([signed, utf8(one.replace('--- approval ', '--- approved '))]), 'R1', 'E_HANDOVER_FORMAT');
  R('bad-approval-not-an-object', Buffer.concat([signed, utf8('--- approval ["general-counsel"]\n')]), 'R1', 'E_HANDOVER_FORMAT');
  R('bad-approval-time-missing', Buffer.concat([signed, utf8(one.replace(/"time":"[^"]*",/, ''))]), 'R1', 'E_HANDOVER_FORMAT');
  R('bad-approval-signature-base64url', Buffer.concat([signed, utf8(`--- approval ${JSON.stringify({ ...APPROVALS[0], signature: '-_-_' })}\n`)]), 'R1', 'E_HANDOVER_FORMAT');
  // R1: an approval line is exactly the line custos writes, its signature CB64(64).
  {
    const a = approve(REQUEST_DIGEST)[0];
    const line = (value) => Buffer.concat([signed, utf8(`--- approval ${value}\n`)]);
    const json = JSON.stringify(a);
    R('bad-approval-extra-member', line(JSON.stringify({ ...a, note: 'checked' })), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-members-reordered', line(JSON.stringify({ approver: a.approver, role: a.role, time: a.time, signature: a.signature })), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-whitespace', line(json.replace(/","/g, '", "')), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-unicode-escape', line(json.replace('"role":"general-counsel"', '"role":"\\u0067eneral-counsel"')), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-crlf', line(`${json}\r`), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-signature-not-canonical-base64', line(JSON.stringify({ ...a, signature: nonCanonicalB64(a.signature) })), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-signature-no-padding', line(JSON.stringify({ ...a, signature: a.signature.replace(/=+$/, '') })), 'R1', 'E_HANDOVER_FORMAT');
    R('bad-approval-signature-63-bytes', line(JSON.stringify({ ...a, signature: b64(Buffer.from(a.signature, 'base64').subarray(0, 63)) })), 'R1', 'E_HANDOVER_FORMAT');
  }
  R('bad-approval-before-body-end', Buffer.concat([utf8('custos-handover-request/1\n'), utf8(one), signed.subarray('custos-handover-request/1\n'.length)]), 'E5', 'E_HANDOVER_FORMAT');
  // R4-R6: the request parses; what it carries does not hold together.
  const otherPolicy = POLICY_TEXT.replace('notice: 72h', 'notice: 1h');
  R('bad-policy-text-edited', requestFile(requestBody({ policy: { ...OK_REQUEST_BODY.policy, text: otherPolicy } })), 'R4', 'E_HANDOVER_FORMAT', { check: 'approvals' });
  R('bad-recipient-sha256-not-the-spki', requestFile(requestBody({ recipient: { ...OK_REQUEST_BODY.recipient, sha256: sha256Hex(utf8('another key')) } })), 'R5', 'E_HANDOVER_FORMAT', { check: 'approvals' });
  R('bad-recipient-bits-not-the-spki', requestFile(requestBody({ recipient: { ...OK_REQUEST_BODY.recipient, bits: 3072 } })), 'R5', 'E_HANDOVER_FORMAT', { check: 'approvals' });
  const brokenPolicy = POLICY_TEXT.replace('threshold: 2\n', 'threshold: 9\n');
  R('bad-policy-not-a-policy', requestFile(requestBody({ policy: { name: 'spec-vectors.yaml', sha256: sha256Hex(utf8(brokenPolicy)), text: brokenPolicy } })), 'R6', 'E_POLICY', { check: 'approvals' });
  // R7: approvals that do not count.
  const ok3 = approve(REQUEST_DIGEST);
  R('bad-approval-edited-time', serialiseRequest(signed, ok3.map((a, i) => (i === 0 ? { ...a, time: '2026-11-28T11:30:00.000Z' } : a))), 'R7', 'E_HANDOVER_REFUSED', withApprovals(['general-counsel']));
  {
    const edited = requestBody({ matter: 'DFS-2026-0143' });
    R('bad-approvals-after-request-edited', serialiseRequest(requestSignedBytes(edited), ok3), 'R7', 'E_HANDOVER_REFUSED', withApprovals(['general-counsel', 'hale-llp', 'okafor-law']));
  }
  R('bad-approval-unknown-approver', serialiseRequest(signed, [...ok3, ...approve(REQUEST_DIGEST, [{ role: 'general-counsel', approver: 'mallory', time: '2026-11-28T14:00:00.000Z' }], () => OTHER_SIGNER)]), 'R7', 'E_HANDOVER_REFUSED', withApprovals(['mallory']));
  R('bad-approval-role-not-the-approvers', serialiseRequest(signed, [...ok3, ...approve(REQUEST_DIGEST, [{ role: 'general-counsel', approver: 'hale-llp', time: '2026-11-28T14:00:00.000Z' }])]), 'R7', 'E_HANDOVER_REFUSED', withApprovals(['hale-llp']));
  R('bad-approval-signed-by-other-key', serialiseRequest(signed, approve(REQUEST_DIGEST, APPROVALS.slice(0, 1), () => OTHER_SIGNER)), 'R7', 'E_HANDOVER_REFUSED', withApprovals(['general-counsel']));
}

// ====================================================================== handover package

function handoverCeremonyBody(request = OK_REQUEST_BODY, digest = REQUEST_DIGEST) {
  return clone({
    nonce: '5cc1a384b397b1609fdf3340e5396f8a',
    purpose: 'handover',
    created: '2026-12-02T09:00:00.000Z',
    expires: '2026-12-02T11:00:00.000Z',
    openedBy: 'ceremony-lead',
    subject: { kind: 'bundle', file: '../bundle/ok-keys.bundle', bundleId: keysBody().bundleId, bundleDigest: BUNDLE_DIGEST, source: SOURCE, keys: [keySummary(AES_RECORD)] },
    request: digest,
    threshold: 2,
    total: 3,
    custodians: CEREMONY_CUSTODIANS,
    dealer: b64(DEALER.publicKey),
    recipient: HANDOVER_CEREMONY_AGE.recipient,
    signingKey: b64(HANDOVER_CEREMONY_KEY.publicKey),
    handover: { matter: request.matter, authority: request.authority, basis: request.basis, keys: ['payments-aes-01'], recipient: sha256Hex(RECIPIENT_SPKI), quorum: 2 },
  });
}
const HANDOVER_CEREMONY = ceremonyFile(handoverCeremonyBody(), HANDOVER_CEREMONY_KEY);
C('ok-handover', HANDOVER_CEREMONY, 'valid', 'ok');
{
  const b = handoverCeremonyBody();
  b.handover.keys = ['payments-aes-01', 7];
  C('bad-field-handover-keys-not-strings', ceremonyFile(b, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'handover.keys[]' });
  const q = handoverCeremonyBody();
  q.handover.quorum = 1;
  C('bad-field-handover-quorum-1', ceremonyFile(q, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'handover.quorum' });
  const above = handoverCeremonyBody();
  above.handover.quorum = 4;
  C('bad-field-handover-quorum-above-total', ceremonyFile(above, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'handover.quorum' });
  const below = handoverCeremonyBody();
  below.threshold = 3;
  C('bad-field-handover-quorum-below-threshold', ceremonyFile(below, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'handover.quorum' });
  const noRequest = handoverCeremonyBody();
  delete noRequest.request;
  C('bad-field-handover-without-request', ceremonyFile(noRequest, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'request' });
  const noSummary = handoverCeremonyBody();
  delete noSummary.handover;
  C('bad-field-handover-without-summary', ceremonyFile(noSummary, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'handover' });
  const drill = handoverCeremonyBody();
  drill.purpose = 'drill';
  C('bad-field-handover-in-drill', ceremonyFile(drill, HANDOVER_CEREMONY_KEY), 'C2', 'E_CEREMONY_FORMAT', { field: 'request' });
  const summaryOnly = restoreBody();
  summaryOnly.handover = handoverCeremonyBody().handover;
  C('bad-field-handover-summary-in-restore', ceremonyFile(summaryOnly), 'C2', 'E_CEREMONY_FORMAT', { field: 'handover' });
}

const WRAPPED_AES = Buffer.concat([oaepSha256(RECIPIENT_PUBLIC, seed('ephemeral aes key 1'), seed('oaep seed 1')), kwp(seed('ephemeral aes key 1'), AES_KEY)]);
function packageBody({ request = OK_REQUEST, requestDigest = REQUEST_DIGEST, ceremony = HANDOVER_CEREMONY, ...over } = {}) {
  return clone({
    created: '2026-12-02T10:30:00.000Z',
    request: request.toString('utf8'),
    requestDigest,
    ceremony: ceremony.toString('utf8'),
    transcript: [sha256Hex(utf8('ceremony-open line')), sha256Hex(utf8('submission-accepted line 1')), sha256Hex(utf8('submission-accepted line 2'))],
    recipientSha256: sha256Hex(RECIPIENT_SPKI),
    oaep: { hash: 'SHA-256', mgf: 'MGF1-SHA-256', label: '' },
    keys: [{ class: 'secret', keyType: 'AES', label: 'payments-aes-01', id: '01', bits: 256, checkValue: AES_RECORD.checkValue, wrapped: b64(WRAPPED_AES) }],
    ...over,
  });
}
const packageFile = (body, signer = HANDOVER_CEREMONY_KEY) => {
  const signed = packageSignedBytes(body);
  return serialisePackage(signed, signer.sign(signed));
};
const packageOver = (text, signer = HANDOVER_CEREMONY_KEY) => {
  const signed = utf8(`custos-handover/1\n${text}\n`);
  return serialisePackage(signed, signer.sign(signed));
};
/** A request, the handover ceremony bound to it and the package made under both, for a request body. */
function handoverChain(body) {
  const request = requestFile(body);
  const digest = sha256Hex(requestSignedBytes(body));
  const ceremony = ceremonyFile(handoverCeremonyBody(body, digest), HANDOVER_CEREMONY_KEY);
  return { request, digest, ceremony, pkg: packageFile(packageBody({ request, requestDigest: digest, ceremony })) };
}
const K = (name, bytes, rule, expect, more) => put(`handover-package/${name}.package`, bytes, 'custos-handover/1', rule, expect, { check: 'verify', ...more });
const OK_PACKAGE = packageFile(packageBody());
K('ok-three-approvals', OK_PACKAGE, 'valid', 'ok', { withKey: true });
{
  const sig = OK_PACKAGE.toString('utf8').split('\n').at(-2).slice('--- ed25519 '.length);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  K('bad-signature-edited-created', edit(OK_PACKAGE, '"created": "2026-12-02T10:30:00.000Z"', '"created": "2026-12-02T10:31:00.000Z"'), 'K5', 'E_PACKAGE_INVALID');
  K('bad-signature-by-restore-ceremony-key', packageFile(packageBody(), CEREMONY_KEY), 'K5', 'E_PACKAGE_INVALID');
  K('bad-signature-not-canonical-base64', edit(OK_PACKAGE, sig, `${sig.slice(0, 85)}${alphabet[alphabet.indexOf(sig[85]) ^ 1]}==`), 'K1', 'E_PACKAGE_INVALID');
  K('bad-no-signature-line', OK_PACKAGE.subarray(0, OK_PACKAGE.lastIndexOf(utf8('--- ed25519 '))), 'E4', 'E_PACKAGE_INVALID');
  K('bad-not-canonical-indent-2', packageOver(JSON.stringify(packageBody(), null, 2)), 'K3', 'E_PACKAGE_INVALID');
  K('bad-not-canonical-unknown-field', packageFile({ ...packageBody(), note: 'x' }), 'K3', 'E_PACKAGE_INVALID');
  const kfield = [
    ['requestDigest-uppercase', 'requestDigest', { requestDigest: REQUEST_DIGEST.toUpperCase() }],
    ['transcript-not-digests', 'transcript[]', { transcript: ['ceremony-open'] }],
    ['oaep-hash-md5', 'oaep.hash', { oaep: { hash: 'MD5', mgf: 'MGF1-SHA-256', label: '' } }],
    ['oaep-label-not-empty', 'oaep.label', { oaep: { hash: 'SHA-256', mgf: 'MGF1-SHA-256', label: 'custos' } }],
    ['key-bits-fraction', 'keys[].bits', { keys: [{ ...packageBody().keys[0], bits: 255.5 }] }],
    ['key-wrapped-missing', 'keys[].wrapped', { keys: [{ ...packageBody().keys[0], wrapped: undefined }] }],
    ['created-not-a-time', 'created', { created: 'the morning of the handover' }],
    ['created-with-offset', 'created', { created: '2026-12-02T10:30:00.000+00:00' }],
    ['created-no-milliseconds', 'created', { created: '2026-12-02T10:30:00Z' }],
  ];
  for (const [name, field, over] of kfield) K(`bad-field-${name}`, packageFile(packageBody(over)), 'K2', 'E_PACKAGE_INVALID', { field });
  // K4 and K6: what the package carries, each signed again by the ceremony key so only that is broken.
  K('bad-ceremony-inside-edited', packageFile(packageBody({ ceremony: edit(HANDOVER_CEREMONY, '"expires": "2026-12-02T11:00:00.000Z"', '"expires": "2026-12-09T11:00:00.000Z"') })), 'K4', 'E_PACKAGE_INVALID');
  K('bad-request-inside-not-canonical', packageFile(packageBody({ request: utf8(OK_REQUEST.toString('utf8').replace('\n "requestId"', '\n  "requestId"')) })), 'K6', 'E_PACKAGE_INVALID');
  K('bad-request-digest-not-the-requests', packageFile(packageBody({ requestDigest: sha256Hex(utf8('another request')) })), 'K7', 'E_PACKAGE_INVALID');
  K('bad-ceremony-not-for-this-request', packageFile(packageBody({ ceremony: OK_CEREMONY }), CEREMONY_KEY), 'K8', 'E_PACKAGE_INVALID');
  K('bad-created-after-expiry', packageFile(packageBody({ created: '2026-12-02T11:00:00.000Z' })), 'K9', 'E_PACKAGE_INVALID');
  K('bad-recipient-not-the-requests', packageFile(packageBody({ recipientSha256: sha256Hex(utf8('another recipient')) })), 'K10', 'E_PACKAGE_INVALID');
  K('bad-notice-not-over', packageFile(packageBody({ created: '2026-11-30T09:00:00.000Z' })), 'K11', 'E_PACKAGE_INVALID');
  {
    const twoApprovals = serialiseRequest(requestSignedBytes(OK_REQUEST_BODY), approve(REQUEST_DIGEST).slice(1));
    K('bad-approval-missing', packageFile(packageBody({ request: twoApprovals })), 'K11', 'E_PACKAGE_INVALID');
  }
  {
    const broken = POLICY_TEXT.replace('threshold: 2\n', 'threshold: 9\n');
    const { pkg } = handoverChain(requestBody({ policy: { name: 'spec-vectors.yaml', sha256: sha256Hex(utf8(broken)), text: broken } }));
    K('bad-policy-inside-not-a-policy', pkg, 'K6', 'E_PACKAGE_INVALID');
  }
  for (const [name, noticeGiven] of [['not-a-time', 'last Tuesday'], ['no-milliseconds', '2026-11-28T09:00:00Z']]) {
    const { pkg } = handoverChain(requestBody({ noticeGiven }));
    K(`bad-request-inside-notice-${name}`, pkg, 'K6', 'E_PACKAGE_INVALID');
  }
  {
    const b = handoverCeremonyBody();
    b.custodians = clone(b.custodians);
    b.custodians[2].index = 1;
    K('bad-ceremony-inside-repeats-an-index', packageFile(packageBody({ ceremony: ceremonyFile(b, HANDOVER_CEREMONY_KEY) })), 'K4', 'E_PACKAGE_INVALID');
  }
  K('bad-keys-not-the-scope', packageFile(packageBody({ keys: [{ ...packageBody().keys[0], label: 'payments-aes-02' }] })), 'K12', 'E_PACKAGE_INVALID');
  {
    const other = Buffer.concat([oaepSha256(RECIPIENT_PUBLIC, seed('ephemeral aes key 2'), seed('oaep seed 2')), kwp(seed('ephemeral aes key 2'), HMAC_KEY)]);
    K('bad-wrapped-not-the-recorded-key', packageFile(packageBody({ keys: [{ ...packageBody().keys[0], wrapped: b64(other) }] })), 'K13', 'E_PACKAGE_INVALID', { withKey: true });
  }
}

// ===================================================================== envelope, per format

{
  const reMac = (mutate, textEdit) => {
    const b = keysBody();
    if (mutate) mutate(b);
    let text = JSON.stringify(b, null, 1);
    if (textEdit) text = textEdit(text);
    return macFile(bundleAuth(text));
  };
  envelopeVectors('bundle', 'custos-bundle/1', OK_BUNDLE, 'SoftHSM project', { format: 'E_BUNDLE_FORMAT', damaged: 'E_BUNDLE_TAMPERED' }, reMac, 'B1');
  const nest = (n) => (n === 0 ? 'deep' : [nest(n - 1)]);
  put('envelope/ok-depth-32.bundle', reMac((b) => { b.deep = nest(31); }), 'custos-bundle/1', 'valid', 'ok', { check: 'mac', kek: 'kek', note: '32 levels of nesting: the most a reader accepts' });
  put('envelope/bad-trailer-no-value.bundle', Buffer.concat([OK_AUTH, utf8('--- hmac-sha256\n')]), 'custos-bundle/1', 'E5', 'E_BUNDLE_FORMAT');
  put('envelope/bad-trailer-before-body-end.bundle', edit(OK_BUNDLE, '\n "keys": [', '\n--- hmac-sha256 x\n "keys": ['), 'custos-bundle/1', 'E5', 'E_BUNDLE_FORMAT');
  put('envelope/bad-required-trailer-not-last.bundle', Buffer.concat([OK_BUNDLE, utf8('--- note checked by hand\n')]), 'custos-bundle/1', 'E6', 'E_BUNDLE_FORMAT');
  put('envelope/bad-format-line-other-format.bundle', edit(OK_BUNDLE, 'custos-bundle/1\n', 'custos-ceremony/1\n'), 'custos-bundle/1', 'E3', 'E_BUNDLE_FORMAT');
  put('envelope/bad-no-trailer.bundle', OK_AUTH, 'custos-bundle/1', 'E4', 'E_BUNDLE_FORMAT');
  put('envelope/bad-empty-file.bundle', Buffer.alloc(0), 'custos-bundle/1', 'E3', 'E_BUNDLE_FORMAT');

  const reSign = (mutate, textEdit) => {
    const b = restoreBody();
    if (mutate) mutate(b);
    let text = JSON.stringify(b, null, 1);
    if (textEdit) text = textEdit(text);
    return ceremonyOver(text);
  };
  envelopeVectors('ceremony', 'custos-ceremony/1', OK_CEREMONY, 'SoftHSM project', { format: 'E_CEREMONY_FORMAT', damaged: 'E_CEREMONY_FORMAT' }, reSign, 'C1');

  // The request: zero or more approval trailers; the approval values are JSON.
  const reRequest = (mutate, textEdit) => {
    const b = requestBody();
    if (mutate) mutate(b);
    let text = JSON.stringify(b, null, 1);
    if (textEdit) text = textEdit(text);
    const signed = utf8(`custos-handover-request/1\n${text}\n`);
    return serialiseRequest(signed, approve(sha256Hex(signed)));
  };
  envelopeVectors('request', 'custos-handover-request/1', OK_REQUEST, 'NY Department of Financial Services', { format: 'E_HANDOVER_FORMAT', damaged: 'E_HANDOVER_FORMAT' }, reRequest, null);
  {
    const lines = approve(REQUEST_DIGEST).map((a) => `--- approval ${JSON.stringify(a)}\n`);
    put('envelope/bad-blank-line-between-trailers.request', Buffer.concat([requestSignedBytes(OK_REQUEST_BODY), utf8(`${lines[0]}\n${lines[1]}${lines[2]}`)]), 'custos-handover-request/1', 'E5', 'E_HANDOVER_FORMAT');
    // The real forgery: a request whose matter holds U+FFFD, and a copy with that character's three bytes replaced by FF.
    const fffd = requestBody({ matter: 'DFS-2026-0142 \uFFFD' });
    const file = requestFile(fffd);
    put('handover-request/ok-matter-with-replacement-character.request', file, 'custos-handover-request/1', 'valid', 'ok', withApprovals());
    put('envelope/bad-utf8-ff-for-replacement-character.request', edit(file, hex('efbfbd'), hex('ff')), 'custos-handover-request/1', 'E2', 'E_HANDOVER_FORMAT',
      { note: 'the same text as ok-matter-with-replacement-character.request once invalid bytes are replaced by U+FFFD: a reader that decodes leniently sees the same digest, and the approvals verify' });
  }

  // The package, checked in full (K1-K15).
  const rePackage = (mutate, textEdit) => {
    const b = packageBody();
    if (mutate) mutate(b);
    let text = JSON.stringify(b, null, 1);
    if (textEdit) text = textEdit(text);
    return packageOver(text);
  };
  envelopeVectors('package', 'custos-handover/1', OK_PACKAGE, 'payments-aes-01', { format: 'E_PACKAGE_INVALID', damaged: 'E_PACKAGE_INVALID' }, rePackage, 'K1');
  for (const v of vectors) if (v.file.startsWith('envelope/') && v.file.endsWith('.package')) v.check = 'verify';
  {
    // A whole second chain whose request's matter holds U+FFFD; then the package with FF in its place.
    const { pkg } = handoverChain(requestBody({ matter: 'DFS-2026-0142 \uFFFD' }));
    put('handover-package/ok-matter-with-replacement-character.package', pkg, 'custos-handover/1', 'valid', 'ok', { check: 'verify' });
    const forged = edit(edit(pkg, hex('efbfbd'), hex('ff')), hex('efbfbd'), hex('ff'));
    put('envelope/bad-utf8-ff-for-replacement-character.package', forged, 'custos-handover/1', 'E2', 'E_PACKAGE_INVALID', {
      check: 'verify',
      note: 'the same text as handover-package/ok-matter-with-replacement-character.package once invalid bytes are replaced by U+FFFD: a reader that decodes leniently accepts it under the same signature',
    });
  }
}

// ========================================================================= token identity

// SPEC.md "Token identity files": the recipient is the RSA-2048 TEST key above, as an ssh-rsa line.
{
  const { serialiseTokenStub } = await load('core/token-stub.js');
  rmSync(join(HERE, 'token-identity'), { recursive: true, force: true });
  const FORMAT = 'custos-token-identity/1';
  const sshString = (b) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(b.length);
    return Buffer.concat([length, b]);
  };
  const mpint = (b) => sshString(b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
  const sshLine = (n, e) => `ssh-rsa ${b64(Buffer.concat([sshString(utf8('ssh-rsa')), mpint(e), mpint(n)]))}`;
  const jwk = RECIPIENT_PUBLIC.export({ format: 'jwk' });
  const RSA_LINE = sshLine(Buffer.from(jwk.n, 'base64url'), Buffer.from(jwk.e, 'base64url'));
  const stub = {
    module: '/usr/lib/softhsm/libsofthsm2.so',
    profile: 'hale-token',
    token: { label: 'Hale LLP', serial: '9f3c1a2b4d5e6f70' },
    key: { id: '5c0e1d2f3a4b5c6d7e8f90a1b2c3d4e5', label: 'custos-custodian' },
    recipient: RSA_LINE,
    created: '2026-12-04T10:00:00.000Z',
  };
  const T = (name, bytes, rule, expect, more = {}) => put(`token-identity/${name}.token-identity`, bytes, FORMAT, rule, expect, more);
  const body = (o) => utf8(`${FORMAT}\n${JSON.stringify(o, null, 1)}\n`);
  T('ok-softhsm', utf8(serialiseTokenStub(stub)), 'valid', 'ok', { note: 'the recipient is the public half of keys.recipientPrivateKeyPem' });
  const nss = { ...stub, libraryParameters: "flags=noCertDB,noModDB tokens=<0x04=[configdir='sql:/home/hale/.custos-nss' tokenDescription='hale']>", profile: undefined, token: { label: 'hale', serial: '0000000000000000' } };
  delete nss.profile;
  T('ok-nss-no-profile', utf8(serialiseTokenStub(nss)), 'valid', 'ok');
  T('ok-hand-spaced', utf8(`${FORMAT}\n${JSON.stringify(stub)}\n`), 'valid', 'ok', { note: 'not canonical: a token identity file is not signed, so its spelling is free' });
  T('bad-trailer', Buffer.concat([utf8(serialiseTokenStub(stub)), utf8('--- ed25519 AAAA\n')]), 'T1', 'E_IDENTITY');
  T('bad-format-2', utf8(`custos-token-identity/2\n${JSON.stringify(stub, null, 1)}\n`), 'E3', 'E_IDENTITY');
  T('bad-utf8', Buffer.concat([utf8(`${FORMAT}\n{"module": "/usr/lib/`), hex('ff'), utf8('"}\n')]), 'E2', 'E_IDENTITY');
  T('bad-too-large', Buffer.concat([utf8(`${FORMAT}\n`), Buffer.alloc(65536, 0x20), utf8('{}\n')]), 'T1', 'E_IDENTITY');
  T('bad-unknown-member', body({ ...stub, pin: '123456' }), 'T2', 'E_IDENTITY', { field: 'pin' });
  T('bad-relative-module', body({ ...stub, module: 'libsofthsm2.so' }), 'T2', 'E_IDENTITY', { field: 'module' });
  T('bad-missing-created', body({ ...stub, created: undefined }), 'T2', 'E_IDENTITY', { field: 'created' });
  T('bad-created-offset', body({ ...stub, created: '2026-12-04T10:00:00+00:00' }), 'T2', 'E_IDENTITY', { field: 'created' });
  T('bad-empty-key-id', body({ ...stub, key: { id: '', label: 'x' } }), 'T2', 'E_IDENTITY', { field: 'key.id' });
  T('bad-upper-case-key-id', body({ ...stub, key: { id: '5C0E', label: 'x' } }), 'T2', 'E_IDENTITY', { field: 'key.id' });
  T('bad-control-in-label', body({ ...stub, token: { label: 'Hale\u001b[2J', serial: '1' } }), 'T2', 'E_IDENTITY', { field: 'token.label' });
  T('bad-recipient-comment', body({ ...stub, recipient: `${RSA_LINE} hale@laptop` }), 'T2', 'E_IDENTITY', { field: 'recipient' });
  T('bad-recipient-x25519', body({ ...stub, recipient: CUSTODIANS[0].age.recipient }), 'T2', 'E_IDENTITY', { field: 'recipient' });
  // T3: the line has the ssh-rsa form but not a usable key
  const n1024 = Buffer.concat([hex('c0'), Buffer.alloc(126, 0x5a), hex('01')]);
  T('bad-recipient-1024-bits', body({ ...stub, recipient: sshLine(n1024, hex('010001')) }), 'T3', 'E_IDENTITY');
  T('bad-recipient-even-exponent', body({ ...stub, recipient: sshLine(Buffer.from(jwk.n, 'base64url'), hex('010000')) }), 'T3', 'E_IDENTITY');
  const wire = Buffer.from(RSA_LINE.split(' ')[1], 'base64');
  T('bad-recipient-trailing-bytes', body({ ...stub, recipient: `ssh-rsa ${b64(Buffer.concat([wire, hex('00000000')]))}` }), 'T3', 'E_IDENTITY');
}

// ================================================================================== manifest

const keys = {
  kek: KEK.toString('hex'),
  otherKek: OTHER_KEK.toString('hex'),
  pinSecret: PIN_SECRET.toString('hex'),
  /** The escrowed PIN of bundle/ok-pin-escrow.bundle: RFC 4648 base32 of pinSecret, cut to pinLength (52). */
  pin: (() => {
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bits = [...PIN_SECRET].map((b) => b.toString(2).padStart(8, '0')).join('');
    return bits.padEnd(Math.ceil(bits.length / 5) * 5, '0').match(/.{5}/g).map((g) => A[parseInt(g, 2)]).join('').slice(0, 52);
  })(),
  dealer: { seed: DEALER.seed.toString('hex'), publicKey: b64(DEALER.publicKey), note: 'RFC 8032 7.1 TEST 1' },
  restoreCeremony: { seed: CEREMONY_KEY.seed.toString('hex'), publicKey: b64(CEREMONY_KEY.publicKey), note: 'RFC 8032 7.1 TEST 2', ageIdentity: CEREMONY_AGE.identity, ageRecipient: CEREMONY_AGE.recipient },
  handoverCeremony: { seed: HANDOVER_CEREMONY_KEY.seed.toString('hex'), publicKey: b64(HANDOVER_CEREMONY_KEY.publicKey), note: 'RFC 8032 7.1 TEST 3', ageIdentity: HANDOVER_CEREMONY_AGE.identity },
  custodians: Object.fromEntries(CUSTODIANS.map((c) => [c.id, { ageIdentity: c.age.identity, ageRecipient: c.age.recipient }])),
  approvers: Object.fromEntries(Object.entries(APPROVERS).map(([id, k]) => [id, { seed: k.seed.toString('hex'), publicKey: b64(k.publicKey) }])),
  recipientPrivateKeyPem: RECIPIENT_PEM,
};
const manifest = {
  about: 'Test vectors for SPEC.md. Written by spec/vectors/make.mjs; checked by test/unit/spec-vectors.test.ts. expect is the outcome the rule calls for: "ok", or the error code. known, where present, is what custos gives today instead.',
  keys,
  vectors,
};
writeFileSync(join(HERE, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 1)}\n`);
const count = {};
for (const v of vectors) count[v.file.split('/')[0]] = (count[v.file.split('/')[0]] ?? 0) + 1;
process.stdout.write(`${vectors.length} vectors: ${Object.entries(count).map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
// The Shamir vectors computed apart from this script (and from secrets.js-grempe) go back in, with
// their manifest entries: the shamir directory and the manifest were just rewritten.
execFileSync('python3', [join(HERE, '..', 'shamir-independent.py')], { stdio: 'inherit' });
