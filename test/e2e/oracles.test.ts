/**
 * Outside oracles: the standard age CLI opens every share file; secrets.js-grempe (used directly)
 * reassembles the KEK from the share plaintexts; node:crypto's id-aes256-wrap-pad (OpenSSL)
 * unwraps the bundle's key blobs and their check values match the bundle; and keys restored into
 * a second token sign, encrypt and MAC exactly like the originals, checked with OpenSSL and
 * pkcs11-tool on the original token.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHmac, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import secrets from 'secrets.js-grempe';
import {
  TIMEOUT,
  aesCbcArgs,
  aesKcv,
  ageDecrypt,
  ageEncrypt,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  expectNoSecrets,
  expectOk,
  json,
  kwpUnwrap,
  mustRun,
  openShare,
  p11,
  p11Raw,
  publicKeyDer,
  publicKeyPem,
  shareValue,
  signEcdsa,
  signRsa,
  type Custodian,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { sourceAndTarget } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let source: TokenRef;
let target: TokenRef;
let custodians: Custodian[];
let body: any;
const plaintexts = new Map<string, string>();
const sharePath = (id: string) => join(ws.dir, 'vault.bundle.shares', `${id}.share`);

beforeAll(() => {
  ({ ws, source, target, custodians } = sourceAndTarget({
    workspace: 'oracles',
    source: 'origin',
    target: 'replica',
    custodians: ['c1', 'c2', 'c3', 'c4', 'c5'],
    threshold: 3,
    backups: ['vault.bundle'],
  }));
  body = bundleBody(join(ws.dir, 'vault.bundle'));
});

afterAll(() => cleanup(ws));

const record = (label: string) => {
  const r = body.keys.find((k: { label: string }) => k.label === label);
  expect(r, label).toBeDefined();
  return r;
};

describe('share files against the age CLI and secrets.js-grempe', () => {
  it('every share file opens with `age -d -i IDENTITY` and holds a custos-share/1 document for that custodian', () => {
    for (const [i, c] of custodians.entries()) {
      const text = openShare(ws, sharePath(c.id), c.identity);
      plaintexts.set(c.id, text);
      expect(text.startsWith('custos-share/1\n'), c.id).toBe(true);
      expect(text).toContain(`\nbundle: ${body.bundleId}\n`);
      expect(text).toContain(`\ncustodian: ${c.id}\n`);
      expect(text).toContain(`\nindex: ${i + 1}\n`);
      expect(text).toContain('\nthreshold: 3\n');
      expect(shareValue(text)).toMatch(/^8[0-9a-f]+$/);
    }
  });

  it("a share file does not open with another custodian's identity", () => {
    const r = ageDecrypt(ws, sharePath('c1'), custodians[1]!.identity);
    expect(r.status).not.toBe(0);
    expect(r.stdout.length).toBe(0);
  });

  it('any threshold subset of share values reassembles one KEK whose KCV the bundle records; fewer do not', () => {
    const [a, b, c, d, e] = custodians.map((x) => plaintexts.get(x.id) as string) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const kek = combineKek(ws, [a, c, e]);
    expect(kek.length).toBe(32);
    expect(aesKcv(kek)).toBe(body.kek.kcv);
    expect(combineKek(ws, [b, d, e]).equals(kek)).toBe(true);
    expect(combineKek(ws, [e, a, b]).equals(kek)).toBe(true);
    // two of a 3-of-5 split are not enough: secrets.js returns something else
    const tooFew = secrets.combine([shareValue(a), shareValue(b)]);
    expect(tooFew).not.toBe(kek.toString('hex'));
  });

  it("OpenSSL's RFC 5649 unwrap opens each key blob under that KEK, and the key material matches its recorded check value", () => {
    const kek = combineKek(
      ws,
      [1, 2, 3].map((i) => plaintexts.get(`c${i}`) as string),
    );
    expect(body.wrap).toEqual({ mechanism: 'AES-KEY-WRAP-PAD', standard: 'RFC 5649' });

    const aes = record('aes-key');
    const aesKey = kwpUnwrap(kek, Buffer.from(aes.wrapped, 'base64'));
    expect(aesKey.length).toBe(32);
    expect(aes.checkValue.method).toBe('aes-ecb-zero');
    expect(aesKcv(aesKey)).toBe(aes.checkValue.value);

    const hmac = record('hmac-key');
    const hmacKey = kwpUnwrap(kek, Buffer.from(hmac.wrapped, 'base64'));
    expect(hmacKey.length).toBe(32);
    expect(hmac.checkValue.method).toBe('hmac-sha256');
    expect(
      createHmac('sha256', hmacKey).update('custos check value').digest('hex').slice(0, 6),
    ).toBe(hmac.checkValue.value);

    // private keys travel as PKCS#8 under KWP; their public half is the source token's public key
    for (const [label, id] of [
      ['rsa-key', '03'],
      ['ec-key', '04'],
    ] as const) {
      const pkcs8 = kwpUnwrap(kek, Buffer.from(record(label).wrapped, 'base64'));
      const pub = createPublicKey(
        createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }),
      ).export({ format: 'der', type: 'spki' });
      expect(pub.equals(publicKeyDer(ws, source, id)), label).toBe(true);
    }
    for (const k of [aesKey, hmacKey]) {
      ws.secrets.add(k.toString('hex'));
      ws.secrets.add(k.toString('base64'));
    }

    // a wrong KEK does not unwrap (the integrity check of RFC 5649 holds)
    const wrong = Buffer.from(kek);
    wrong[0] = (wrong[0] as number) ^ 1;
    expect(() => kwpUnwrap(wrong, Buffer.from(aes.wrapped, 'base64'))).toThrow();
  });
});

describe('keys restored into a second token behave like the originals', () => {
  beforeAll(() => {
    // custodian c4 re-encrypts their share with the age CLI (binary format, not armored): still
    // accepted
    const reencrypted = join(ws.dir, 'c4-reencrypted.age');
    ageEncrypt(ws, custodians[3]!.recipient, plaintexts.get('c4') as string, reencrypted);
    expectOk(
      custos(ws, [
        'shares',
        'verify',
        '--bundle',
        'vault.bundle',
        '--share',
        reencrypted,
        '--identity',
        custodians[3]!.identity,
      ]),
    );
    const out = json(
      custos(ws, [
        'restore',
        '--bundle',
        'vault.bundle',
        '--hsm',
        'replica',
        '--json',
        '--share',
        sharePath('c2'),
        '--share',
        reencrypted,
        '--share',
        sharePath('c5'),
        '--identity',
        custodians[1]!.identity,
        '--identity',
        custodians[3]!.identity,
        '--identity',
        custodians[4]!.identity,
      ]),
    );
    expect(out.custodians.sort()).toEqual(['c2', 'c4', 'c5']);
    expect(out.keys).toHaveLength(4);
  });

  it("an RSA signature made on the restored token verifies with the ORIGINAL token's public key (openssl dgst -verify)", () => {
    const data = join(ws.dir, 'message.txt');
    const sig = join(ws.dir, 'message.sig');
    writeFileSync(data, `signed on the replica at ${new Date().toISOString()}\n`);
    signRsa(ws, target, '03', data, sig);
    const pem = publicKeyPem(ws, source, '03', join(ws.dir, 'origin-rsa.pem'));
    const ok = mustRun('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', sig, data], {
      env: { PATH: process.env.PATH ?? '' },
      cwd: ws.dir,
    });
    expect(ok.toString()).toMatch(/Verified OK/);
    // and the check can fail: the same signature over other data does not verify
    const other = join(ws.dir, 'other.txt');
    writeFileSync(other, 'something else\n');
    const bad = spawnOpenssl(['dgst', '-sha256', '-verify', pem, '-signature', sig, other]);
    expect(bad.status).not.toBe(0);
  });

  it('an ECDSA signature made on the restored token verifies with the original public key', () => {
    const data = join(ws.dir, 'ec-message.txt');
    const sig = join(ws.dir, 'ec-message.sig');
    const digest = join(ws.dir, 'ec-message.sha256');
    writeFileSync(data, 'ecdsa across tokens\n');
    signEcdsa(ws, target, '04', data, digest, sig);
    const pem = publicKeyPem(ws, source, '04', join(ws.dir, 'origin-ec.pem'));
    expect(
      spawnOpenssl(['dgst', '-sha256', '-verify', pem, '-signature', sig, data]).stdout.toString(),
    ).toMatch(/Verified OK/);
  });

  it('the restored AES and generic secret keys encrypt and MAC exactly like the originals', () => {
    const input = join(ws.dir, 'block.bin');
    writeFileSync(input, Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
    const results = [source, target].map((t) => {
      const enc = join(ws.dir, `enc-${t.label}.bin`);
      const mac = join(ws.dir, `mac-${t.label}.bin`);
      p11(ws, t, [...aesCbcArgs('01', input, '0f'.repeat(16)), '-o', enc]);
      p11(ws, t, ['--sign', '-m', 'SHA256-HMAC', '--id', '02', '-i', input, '-o', mac]);
      return { enc: readFileSync(enc).toString('hex'), mac: readFileSync(mac).toString('hex') };
    });
    expect(results[0]!.enc).toMatch(/^[0-9a-f]{32}$/);
    expect(results[1]).toEqual(results[0]);
  });

  it('the restored keys cannot be read out in plaintext', () => {
    const r = p11Raw(ws, target, [
      '--read-object',
      '--type',
      'secrkey',
      '--id',
      '01',
      '-o',
      join(ws.dir, 'leak.bin'),
    ]);
    expect(r.status).not.toBe(0);
  });

  it('no PIN, identity, share value, KEK or key material appears in any output', () => {
    expectNoSecrets(ws);
  });
});

function spawnOpenssl(args: string[]) {
  return spawnSync('openssl', args, { env: { PATH: process.env.PATH ?? '' }, cwd: ws.dir });
}
