#!/usr/bin/env node
// An outside tool for NSS softoken tokens in the end-to-end tests, as pkcs11-tool is for SoftHSM2
// (pkcs11-tool cannot give NSS its initialisation parameters). Raw pkcs11js, none of custos's code:
// it makes keys, encrypts and signs with them, reads their attributes and public keys, and logs in.
//   node nss-tool.mjs '{"module":…,"params":…,"token":…,"pin":…,"op":…, …}'
// Prints one JSON value on stdout.
import { createRequire } from 'node:module';
import { createHash, createPublicKey } from 'node:crypto';

const require = createRequire(import.meta.url);
const P = require('pkcs11js');
const req = JSON.parse(process.argv[2]);
const lib = new P.PKCS11();
lib.load(req.module);
lib.C_Initialize({ libraryParameters: req.params });
const print = (v) => process.stdout.write(`${JSON.stringify(v)}\n`);

function find(s, template) {
  lib.C_FindObjectsInit(s, template);
  const out = [];
  for (let b; (b = lib.C_FindObjects(s, 256)).length;) out.push(...b);
  lib.C_FindObjectsFinal(s);
  return out;
}

const CLASSES = {
  secret: P.CKO_SECRET_KEY,
  private: P.CKO_PRIVATE_KEY,
  public: P.CKO_PUBLIC_KEY,
  certificate: P.CKO_CERTIFICATE,
};
const one = (s, cls, id) => {
  const found = find(s, [
    { type: P.CKA_CLASS, value: CLASSES[cls] },
    { type: P.CKA_ID, value: Buffer.from(id, 'hex') },
    { type: P.CKA_TOKEN, value: true },
  ]);
  if (found.length !== 1)
    throw new Error(`${found.length} ${cls} objects with id ${id} on ${req.token}`);
  return found[0];
};
const attr = (s, h, type) => {
  try {
    return lib.C_GetAttributeValue(s, h, [{ type }])[0].value;
  } catch {
    return undefined;
  }
};

/** DER of an ECDSA signature from r ‖ s, as OpenSSL verifies it. */
function derSignature(raw) {
  const int = (b) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const half = raw.length / 2;
  const body = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

function run(s, r = req) {
  switch (r.op) {
    case 'keygen': {
      // r.keys: [{kind: aes|generic|rsa|ec, label, id, extractable}], every security attribute
      // explicit
      for (const k of r.keys) {
        const common = [
          { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_LABEL, value: k.label },
          { type: P.CKA_ID, value: Buffer.from(k.id, 'hex') },
        ];
        const secret = [
          ...common,
          { type: P.CKA_PRIVATE, value: true },
          { type: P.CKA_SENSITIVE, value: true },
          { type: P.CKA_EXTRACTABLE, value: k.extractable !== false },
        ];
        if (k.kind === 'aes' || k.kind === 'generic') {
          const aes = k.kind === 'aes';
          lib.C_GenerateKey(
            s,
            { mechanism: aes ? P.CKM_AES_KEY_GEN : P.CKM_GENERIC_SECRET_KEY_GEN },
            [
              ...secret,
              { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
              { type: P.CKA_KEY_TYPE, value: aes ? P.CKK_AES : P.CKK_GENERIC_SECRET },
              { type: P.CKA_VALUE_LEN, value: 32 },
              { type: P.CKA_ENCRYPT, value: aes },
              { type: P.CKA_DECRYPT, value: aes },
              { type: P.CKA_SIGN, value: !aes },
              { type: P.CKA_VERIFY, value: !aes },
              { type: P.CKA_WRAP, value: false },
              { type: P.CKA_UNWRAP, value: false },
              { type: P.CKA_DERIVE, value: false },
            ],
          );
        } else {
          const pub = [
            ...common,
            { type: P.CKA_PRIVATE, value: false },
            { type: P.CKA_VERIFY, value: true },
            { type: P.CKA_ENCRYPT, value: false },
            { type: P.CKA_WRAP, value: false },
          ];
          const priv = [
            ...secret,
            { type: P.CKA_SIGN, value: true },
            { type: P.CKA_DECRYPT, value: false },
            { type: P.CKA_UNWRAP, value: false },
            { type: P.CKA_SIGN_RECOVER, value: false },
            { type: P.CKA_DERIVE, value: false },
          ];
          if (k.kind === 'rsa') {
            lib.C_GenerateKeyPair(
              s,
              { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
              [
                ...pub,
                { type: P.CKA_MODULUS_BITS, value: 2048 },
                { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
              ],
              priv,
            );
          } else {
            lib.C_GenerateKeyPair(
              s,
              { mechanism: P.CKM_EC_KEY_PAIR_GEN },
              [
                ...pub,
                { type: P.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') },
              ],
              priv,
            );
          }
        }
      }
      return r.keys.length;
    }
    case 'objects':
      // every token object: class/label/id, sorted
      return Object.entries(CLASSES)
        .flatMap(([name, cls]) =>
          find(s, [
            { type: P.CKA_CLASS, value: cls },
            { type: P.CKA_TOKEN, value: true },
          ]).map(
            (h) =>
              `${name}/${attr(s, h, P.CKA_LABEL)?.toString('utf8') ?? ''}/${attr(s, h, P.CKA_ID)?.toString('hex') ?? ''}`,
          ),
        )
        .sort();
    case 'attributes': {
      // the security and usage attributes of the secret or private key with this id
      const h = one(s, r.class, r.id);
      const names = {
        encrypt: P.CKA_ENCRYPT,
        decrypt: P.CKA_DECRYPT,
        sign: P.CKA_SIGN,
        verify: P.CKA_VERIFY,
        signRecover: P.CKA_SIGN_RECOVER,
        wrap: P.CKA_WRAP,
        unwrap: P.CKA_UNWRAP,
        derive: P.CKA_DERIVE,
        sensitive: P.CKA_SENSITIVE,
        extractable: P.CKA_EXTRACTABLE,
        private: P.CKA_PRIVATE,
      };
      const out = {};
      for (const [name, type] of Object.entries(names)) {
        const v = attr(s, h, type);
        if (v !== undefined) out[name] = v[0] === 1;
      }
      return out;
    }
    case 'encrypt': {
      // AES-ECB of the given block(s) with the secret key of this id
      const h = one(s, 'secret', r.id);
      lib.C_EncryptInit(s, { mechanism: P.CKM_AES_ECB }, h);
      return Buffer.from(lib.C_Encrypt(s, Buffer.from(r.data, 'hex'), Buffer.alloc(1024))).toString(
        'hex',
      );
    }
    case 'hmac': {
      const h = one(s, 'secret', r.id);
      lib.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, h);
      return Buffer.from(lib.C_Sign(s, Buffer.from(r.data, 'hex'), Buffer.alloc(64))).toString(
        'hex',
      );
    }
    case 'sign': {
      // RSA PKCS#1 v1.5 with SHA-256, or ECDSA over SHA-256 (DER, as openssl dgst -verify wants it)
      const h = one(s, 'private', r.id);
      const data = Buffer.from(r.data, 'hex');
      if (r.kind === 'rsa') {
        lib.C_SignInit(s, { mechanism: P.CKM_SHA256_RSA_PKCS }, h);
        return Buffer.from(lib.C_Sign(s, data, Buffer.alloc(1024))).toString('hex');
      }
      lib.C_SignInit(s, { mechanism: P.CKM_ECDSA }, h);
      return derSignature(
        Buffer.from(lib.C_Sign(s, createHash('sha256').update(data).digest(), Buffer.alloc(256))),
      ).toString('hex');
    }
    case 'publicKey': {
      // the public key object of this id, as PEM (through node's own key parser)
      const h = one(s, 'public', r.id);
      const modulus = attr(s, h, P.CKA_MODULUS);
      if (modulus) {
        const b64 = (b) => Buffer.from(b).toString('base64url');
        return createPublicKey({
          key: { kty: 'RSA', n: b64(modulus), e: b64(attr(s, h, P.CKA_PUBLIC_EXPONENT)) },
          format: 'jwk',
        }).export({ type: 'spki', format: 'pem' });
      }
      // P-256: the point inside its DER OCTET STRING
      const point = attr(s, h, P.CKA_EC_POINT);
      const raw = point[0] === 0x04 && point[1] === point.length - 2 ? point.subarray(2) : point;
      const spki = Buffer.concat([
        Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
        raw,
      ]);
      return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({
        type: 'spki',
        format: 'pem',
      });
    }
    case 'oracle': {
      // all of the above for the standard keys (01 AES, 02 HMAC, 03 RSA, 04 EC) in one run
      const sub = (op, args) => run(s, { ...args, op });
      return {
        aes: sub('encrypt', { id: '01', data: r.block }),
        hmac: sub('hmac', { id: '02', data: r.data }),
        rsa: {
          signature: sub('sign', { id: '03', kind: 'rsa', data: r.data }),
          pem: sub('publicKey', { id: '03' }),
        },
        ec: {
          signature: sub('sign', { id: '04', kind: 'ec', data: r.data }),
          pem: sub('publicKey', { id: '04' }),
        },
      };
    }
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

try {
  const slot = lib
    .C_GetSlotList(true)
    .find((s) => lib.C_GetTokenInfo(s).label.replace(/[\s\0]+$/, '') === req.token);
  if (!slot) throw new Error(`no token ${req.token}`);
  const s = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  if (req.op === 'login') {
    try {
      lib.C_Login(s, P.CKU_USER, req.pin);
      print(true);
    } catch (e) {
      if (e.code !== P.CKR_PIN_INCORRECT) throw e;
      print(false);
    }
  } else {
    lib.C_Login(s, P.CKU_USER, req.pin);
    print(run(s));
  }
} finally {
  lib.C_Finalize();
}
