#!/usr/bin/env node
// An outside tool for the custodian-token tests: imports an RSA key made by OpenSSL (a PEM file)
// into a token with the usage flags asked for, or reads a key's attributes. Raw pkcs11js, none of
// custos's code (pkcs11-tool --write-object sets sign and unwrap on every private key it writes).
//   node rsa-key-tool.mjs '{"module":…,"params":…,"token":…,"pin":…,"op":"import"|"attrs", …}'
// Prints one JSON value on stdout.
import { createRequire } from 'node:module';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const P = require('pkcs11js');
const req = JSON.parse(process.argv[2]);
const lib = new P.PKCS11();
lib.load(req.module);
lib.C_Initialize(req.params ? { libraryParameters: req.params } : undefined);
const slot = lib
  .C_GetSlotList(true)
  .find((s) => lib.C_GetTokenInfo(s).label.replace(/[\s\0]+$/, '') === req.token);
if (!slot) throw new Error(`no token ${req.token}`);
const s = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
lib.C_Login(s, P.CKU_USER, req.pin);
const print = (v) => process.stdout.write(`${JSON.stringify(v)}\n`);

if (req.op === 'import') {
  const jwk = createPrivateKey(readFileSync(req.pem)).export({ format: 'jwk' });
  const b = (x) => Buffer.from(x, 'base64url');
  const id = Buffer.from(req.id, 'hex');
  const f = { sign: false, extractable: false, sensitive: true, unwrap: false, ...req.flags };
  lib.C_CreateObject(s, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: f.sensitive },
    { type: P.CKA_EXTRACTABLE, value: f.extractable },
    { type: P.CKA_DECRYPT, value: true },
    { type: P.CKA_SIGN, value: f.sign },
    { type: P.CKA_SIGN_RECOVER, value: false },
    { type: P.CKA_UNWRAP, value: f.unwrap },
    { type: P.CKA_DERIVE, value: false },
    { type: P.CKA_ID, value: id },
    { type: P.CKA_LABEL, value: req.label },
    { type: P.CKA_MODULUS, value: b(jwk.n) },
    { type: P.CKA_PUBLIC_EXPONENT, value: b(jwk.e) },
    { type: P.CKA_PRIVATE_EXPONENT, value: b(jwk.d) },
    { type: P.CKA_PRIME_1, value: b(jwk.p) },
    { type: P.CKA_PRIME_2, value: b(jwk.q) },
    { type: P.CKA_EXPONENT_1, value: b(jwk.dp) },
    { type: P.CKA_EXPONENT_2, value: b(jwk.dq) },
    { type: P.CKA_COEFFICIENT, value: b(jwk.qi) },
  ]);
  lib.C_CreateObject(s, [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_RSA },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_ENCRYPT, value: true },
    { type: P.CKA_VERIFY, value: false },
    { type: P.CKA_WRAP, value: f.wrap ?? false },
    { type: P.CKA_ID, value: id },
    { type: P.CKA_LABEL, value: req.label },
    { type: P.CKA_MODULUS, value: b(jwk.n) },
    { type: P.CKA_PUBLIC_EXPONENT, value: b(jwk.e) },
  ]);
  print(true);
} else if (req.op === 'attrs') {
  lib.C_FindObjectsInit(s, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_LABEL, value: req.label },
  ]);
  const found = lib.C_FindObjects(s, 10);
  lib.C_FindObjectsFinal(s);
  const names = ['SIGN', 'DECRYPT', 'UNWRAP', 'DERIVE', 'EXTRACTABLE', 'SENSITIVE', 'PRIVATE'];
  print(
    found.map((h) =>
      Object.fromEntries(
        names.map((n) => [
          n,
          lib.C_GetAttributeValue(s, h, [{ type: P[`CKA_${n}`] }])[0].value[0] === 1,
        ]),
      ),
    ),
  );
}
lib.C_Logout(s);
lib.C_Finalize();
