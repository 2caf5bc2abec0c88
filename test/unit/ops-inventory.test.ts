// What `custos inventory` lists (src/ops/inventory.ts), with the token replaced by a stand-in that
// has the contents and check values a module would give: the rows, their order, the check value of
// each class of key, how the token is named, and that the session is closed whatever happens.
import { describe, expect, test, vi } from 'vitest';
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from '../../src/hsm/token.js';
import type { Context } from '../../src/ops/context.js';

const opened = vi.hoisted(() => ({ token: undefined as unknown, names: [] as string[] }));
vi.mock('../../src/ops/hsm.js', () => ({
  openHsm: async (_ctx: unknown, name: string, readWrite: boolean) => {
    opened.names.push(`${name}:${readWrite}`);
    return opened.token;
  },
}));
const { inventory } = await import('../../src/ops/inventory.js');

const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const jwk = rsa.publicKey.export({ format: 'jwk' });
const hex = (s: unknown) => Buffer.from(s as string, 'base64url').toString('hex');
const RSA_PARTS = { modulus: hex(jwk.n), publicExponent: hex(jwk.e) };
const RSA_CHECK = createHash('sha256')
  .update(rsa.publicKey.export({ type: 'spki', format: 'der' }))
  .digest()
  .subarray(0, 8)
  .toString('hex');

function key(label: string, id: string, cls: KeyObject['class'], more: Partial<KeyObject> = {}) {
  return {
    handle: Buffer.alloc(8),
    label,
    id,
    class: cls,
    objectClass: 0,
    keyType: 'AES',
    bits: 256,
    usage: {},
    private: true,
    sensitive: true,
    extractable: true,
    labelIsText: true,
    onToken: true,
    ...more,
  } as KeyObject;
}

function stand(keys: KeyObject[], serial = '5d8e3a1f9c0b2e47', fail?: Error) {
  const token = {
    closed: 0,
    identity: { label: 'vault', serial, manufacturer: 'Mozilla Foundation', model: 'NSS 3' },
    contents: () => {
      if (fail) throw fail;
      return { keys, certificates: [] };
    },
    secretCheckValue: (k: KeyObject) => ({ method: 'aes-ecb-zero', value: `kcv-${k.label}` }),
    close() {
      token.closed++;
    },
  };
  opened.token = token;
  return token;
}

const ctx = {} as Context;

describe('inventory', () => {
  test('every key, sorted by label, then id, then class, each with its check value', async () => {
    const token = stand([
      key('zeta', '02', 'secret'),
      key('alpha', '02', 'private', { keyType: 'RSA', ...RSA_PARTS }),
      key('alpha', '02', 'public', { keyType: 'RSA', ...RSA_PARTS }),
      key('alpha', '01', 'secret', { extractable: false }),
      key('Beta', '', 'secret'),
    ]);
    const out = await inventory(ctx, 'lab');
    expect(opened.names).toEqual(['lab:false']);
    expect(out.rows.map((r) => `${r.label}/${r.id}/${r.class}`)).toEqual([
      'alpha/01/secret',
      'alpha/02/private',
      'alpha/02/public',
      'Beta//secret',
      'zeta/02/secret',
    ]);
    expect(out.rows[0]).toEqual({
      label: 'alpha',
      id: '01',
      class: 'secret',
      keyType: 'AES',
      bits: 256,
      extractable: false,
      sensitive: true,
      checkValue: { method: 'aes-ecb-zero', value: 'kcv-alpha' },
    });
    // asymmetric keys: SHA-256 of the SPKI, as node:crypto encodes it
    expect(out.rows[1]?.checkValue).toEqual({ method: 'spki-sha256', value: RSA_CHECK });
    expect(out.rows[2]?.checkValue).toEqual({ method: 'spki-sha256', value: RSA_CHECK });
    expect(out).toMatchObject({
      token: 'vault',
      serial: '5d8e3a1f9c0b2e47',
      name: '"vault" (serial 5d8e3a1f9c0b2e47)',
    });
    expect(token.closed).toBe(1);
  });

  test('an EC private key takes its check value from the public key that pairs with it', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const e = ec.publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(e.x as string, 'base64url'),
      Buffer.from(e.y as string, 'base64url'),
    ]);
    const ecParts = {
      keyType: 'EC',
      ecParams: '06082a8648ce3d030107',
      ecPoint: Buffer.concat([Buffer.from([4, 65]), point]).toString('hex'),
    };
    stand([
      key('signer', '07', 'private', { keyType: 'EC', ecParams: ecParts.ecParams }),
      key('signer', '07', 'public', ecParts),
      key('lonely', '08', 'private', { keyType: 'EC', ecParams: ecParts.ecParams }),
    ]);
    const want = createHash('sha256')
      .update(ec.publicKey.export({ type: 'spki', format: 'der' }))
      .digest()
      .subarray(0, 8)
      .toString('hex');
    const rows = (await inventory(ctx, 'lab')).rows;
    expect(rows.map((r) => [r.label, r.class, r.checkValue])).toEqual([
      ['lonely', 'private', { method: 'none', value: '' }],
      ['signer', 'private', { method: 'spki-sha256', value: want }],
      ['signer', 'public', { method: 'spki-sha256', value: want }],
    ]);
  });

  test('a token whose serial says nothing is named by model and maker', async () => {
    stand([], '0000000000000000');
    const out = await inventory(ctx, 'nss');
    expect(out.rows).toEqual([]);
    expect(out.name).toBe('"vault" (NSS 3, Mozilla Foundation; no serial number)');
  });

  test('the session is closed when reading the token fails', async () => {
    const token = stand([], undefined, new Error('device gone'));
    await expect(inventory(ctx, 'lab')).rejects.toThrow('device gone');
    expect(token.closed).toBe(1);
  });
});
