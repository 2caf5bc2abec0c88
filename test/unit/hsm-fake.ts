/**
 * A small in-memory stand-in for the pkcs11js calls the wrapping, proof and transport code makes,
 * for unit tests that pin down decisions and error mapping without a token. It does no crypto of
 * its own: AES key wrap with padding is OpenSSL's id-aesNNN-wrap-pad, the RFC 3394 + PKCS#7 variant
 * (NSS softoken's CKM_AES_KEY_WRAP_PAD) is OpenSSL's id-aesNNN-wrap over PKCS#7-padded bytes,
 * and check values and signatures are node:crypto's. Each call is logged, and any call can be made
 * to fail with a return code, thrown as pkcs11js throws it.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  sign as nodeSign,
  type KeyObject as NodeKey,
} from 'node:crypto';
import { P } from '../../src/hsm/call.js';
import type { Attr } from '../../src/hsm/attributes.js';

export type WrapKind =
  /** RFC 5649, as OpenSSL's id-aesNNN-wrap-pad. */
  | 'rfc5649'
  /** RFC 3394 over PKCS#7 padding to 8 bytes (NSS softoken's CKM_AES_KEY_WRAP_PAD). */
  | 'rfc3394-pkcs7'
  /** Wraps and unwraps as if every key were one fixed key (a module that gets it wrong). */
  | 'careless';

export interface FakeObject {
  template: Attr[];
  value?: Buffer;
  /** For RSA private keys: the node:crypto key that signs for it. */
  privateKey?: NodeKey;
}

export interface FakeOptions {
  /** Mechanisms the token lists, with their CKF_* flags. */
  mechanisms?: Record<number, number>;
  /** How each wrapping mechanism wraps and unwraps. */
  wrapKinds?: Record<number, WrapKind>;
  /**
   * Makes a call fail: given the function name and its arguments, a return code to throw (as a
   * pkcs11js Pkcs11Error) or undefined to let it run.
   */
  fail?: (fn: string, args: unknown[]) => number | undefined;
  label?: string;
  manufacturer?: string;
  model?: string;
}

const CKR_NAMES = new Map<number, string>();
for (const [n, v] of Object.entries(P as unknown as Record<string, unknown>))
  if (n.startsWith('CKR_') && typeof v === 'number' && !CKR_NAMES.has(v)) CKR_NAMES.set(v, n);

export function pkcs11Error(code: number, fn = 'C_Fake'): Error {
  return new P.Pkcs11Error(`${CKR_NAMES.get(code) ?? 'CKR_VENDOR'}:${code}`, code, fn);
}

const CARELESS_KEY = Buffer.alloc(32, 0x5a);
const KWP_IV = Buffer.from('a65959a6', 'hex');
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

export function rfc5649Wrap(kek: Buffer, key: Buffer): Buffer {
  const c = createCipheriv(`id-aes${kek.length * 8}-wrap-pad`, kek, KWP_IV);
  return Buffer.concat([c.update(key), c.final()]);
}
export function rfc5649Unwrap(kek: Buffer, blob: Buffer): Buffer {
  const d = createDecipheriv(`id-aes${kek.length * 8}-wrap-pad`, kek, KWP_IV);
  return Buffer.concat([d.update(blob), d.final()]);
}
function pkcs7Wrap(kek: Buffer, key: Buffer): Buffer {
  const n = 8 - (key.length % 8);
  const c = createCipheriv(`id-aes${kek.length * 8}-wrap`, kek, KW_IV);
  return Buffer.concat([c.update(Buffer.concat([key, Buffer.alloc(n, n)])), c.final()]);
}
function pkcs7Unwrap(kek: Buffer, blob: Buffer): Buffer {
  const d = createDecipheriv(`id-aes${kek.length * 8}-wrap`, kek, KW_IV);
  const padded = Buffer.concat([d.update(blob), d.final()]);
  return padded.subarray(0, padded.length - (padded[padded.length - 1] as number));
}
export function aesEcbZeroBlock(key: Buffer): Buffer {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  c.setAutoPadding(false);
  return c.update(Buffer.alloc(16));
}

export interface Call {
  fn: string;
  args: unknown[];
}

export class FakeModule {
  readonly objects = new Map<number, FakeObject>();
  readonly calls: Call[] = [];
  readonly destroyed: number[] = [];
  private next = 1;
  private active?: { mechanism: number; key: number };

  constructor(readonly options: FakeOptions = {}) {}

  add(object: FakeObject): Buffer {
    const id = this.next++;
    this.objects.set(id, object);
    return handle(id);
  }

  get(h: Buffer): FakeObject {
    const o = this.objects.get(h.readUInt32LE(0));
    if (!o) throw pkcs11Error(P.CKR_OBJECT_HANDLE_INVALID);
    return o;
  }

  count(fn: string): number {
    return this.calls.filter((c) => c.fn === fn).length;
  }

  private enter(fn: string, args: unknown[]): void {
    this.calls.push({ fn, args });
    const code = this.options.fail?.(fn, args);
    if (code !== undefined) throw pkcs11Error(code, fn);
  }

  private kind(mechanism: number): WrapKind {
    const kind = this.options.wrapKinds?.[mechanism];
    if (!kind || !(mechanism in (this.options.mechanisms ?? {})))
      throw pkcs11Error(P.CKR_MECHANISM_INVALID);
    return kind;
  }

  C_GetMechanismList(...args: unknown[]): number[] {
    this.enter('C_GetMechanismList', args);
    return Object.keys(this.options.mechanisms ?? {}).map(Number);
  }

  C_GetMechanismInfo(...args: unknown[]): {
    flags: number;
    minKeySize: number;
    maxKeySize: number;
  } {
    this.enter('C_GetMechanismInfo', args);
    const flags = this.options.mechanisms?.[args[1] as number];
    if (flags === undefined) throw pkcs11Error(P.CKR_MECHANISM_INVALID);
    return { flags, minKeySize: 0, maxKeySize: 0 };
  }

  C_CreateObject(...args: unknown[]): Buffer {
    this.enter('C_CreateObject', args);
    const template = args[1] as Attr[];
    const value = template.find((a) => a.type === P.CKA_VALUE)?.value as Buffer | undefined;
    return this.add({ template, value });
  }

  C_DestroyObject(...args: unknown[]): void {
    this.enter('C_DestroyObject', args);
    const id = (args[1] as Buffer).readUInt32LE(0);
    this.objects.delete(id);
    this.destroyed.push(id);
  }

  C_WrapKey(...args: unknown[]): Buffer {
    this.enter('C_WrapKey', args);
    const [, mech, kek, key, out] = args as [
      unknown,
      { mechanism: number },
      Buffer,
      Buffer,
      Buffer,
    ];
    const kind = this.kind(mech.mechanism);
    const kekValue = this.get(kek).value as Buffer;
    const keyValue = this.get(key).value as Buffer;
    const blob =
      kind === 'rfc3394-pkcs7'
        ? pkcs7Wrap(kekValue, keyValue)
        : rfc5649Wrap(kekValue, kind === 'careless' ? CARELESS_KEY : keyValue);
    if (out.length < blob.length) throw pkcs11Error(P.CKR_BUFFER_TOO_SMALL, 'C_WrapKey');
    blob.copy(out);
    return out.subarray(0, blob.length);
  }

  C_UnwrapKey(...args: unknown[]): Buffer {
    this.enter('C_UnwrapKey', args);
    const [, mech, kek, blob, template] = args as [
      unknown,
      { mechanism: number },
      Buffer,
      Buffer,
      Attr[],
    ];
    const kind = this.kind(mech.mechanism);
    const kekValue = this.get(kek).value as Buffer;
    let value: Buffer;
    try {
      value =
        kind === 'careless'
          ? CARELESS_KEY
          : kind === 'rfc3394-pkcs7'
            ? pkcs7Unwrap(kekValue, blob)
            : rfc5649Unwrap(kekValue, blob);
    } catch {
      throw pkcs11Error(P.CKR_WRAPPED_KEY_INVALID, 'C_UnwrapKey');
    }
    return this.add({ template, value });
  }

  C_EncryptInit(...args: unknown[]): void {
    this.enter('C_EncryptInit', args);
    const [, mech, key] = args as [unknown, { mechanism: number }, Buffer];
    if (mech.mechanism !== P.CKM_AES_ECB) throw pkcs11Error(P.CKR_MECHANISM_INVALID);
    this.get(key);
    this.active = { mechanism: mech.mechanism, key: key.readUInt32LE(0) };
  }

  C_Encrypt(...args: unknown[]): Buffer {
    this.enter('C_Encrypt', args);
    const [, data] = args as [unknown, Buffer];
    const key = this.objects.get(this.active?.key ?? 0)?.value as Buffer;
    const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
    c.setAutoPadding(false);
    return c.update(data);
  }

  C_SignInit(...args: unknown[]): void {
    this.enter('C_SignInit', args);
    const [, mech, key] = args as [unknown, { mechanism: number }, Buffer];
    this.get(key);
    this.active = { mechanism: mech.mechanism, key: key.readUInt32LE(0) };
  }

  C_Sign(...args: unknown[]): Buffer {
    this.enter('C_Sign', args);
    const [, data] = args as [unknown, Buffer];
    const key = this.objects.get(this.active?.key ?? 0) as FakeObject;
    switch (this.active?.mechanism) {
      case P.CKM_SHA256_HMAC:
        return createHmac('sha256', key.value as Buffer)
          .update(data)
          .digest();
      case P.CKM_SHA256_RSA_PKCS:
        return nodeSign('sha256', data, key.privateKey as NodeKey);
      default:
        throw pkcs11Error(P.CKR_MECHANISM_INVALID);
    }
  }
}

export function handle(id: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(id, 0);
  return b;
}

/** A session as the wrapping, proof and transport code sees one, on a FakeModule. */
export function fakeSession(lib: FakeModule, options: FakeOptions = lib.options) {
  return {
    lib: lib as unknown as import('../../src/hsm/call.js').Pkcs11,
    session: handle(900),
    slot: handle(901),
    noCheckValue: new Set<string>(),
    wrapChoice: new Map(),
    wrapBuffer: Buffer.alloc(64),
    identity: {
      label: options.label ?? 'vault',
      serial: '5d8e3a1f9c0b2e47',
      manufacturer: options.manufacturer ?? 'SoftHSM project',
      model: options.model ?? 'SoftHSM v2',
    },
  };
}

/** The value of an attribute in a template, or undefined. */
export function attr(template: readonly Attr[], type: number): Attr['value'] | undefined {
  return template.find((a) => a.type === type)?.value;
}
