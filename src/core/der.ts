/** Just enough DER to build a SubjectPublicKeyInfo from PKCS#11 public key attributes. */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const bitString = (body: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), body]));

function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

const RSA_ENCRYPTION = Buffer.from('06092a864886f70d0101010500', 'hex'); // OID rsaEncryption + NULL
const EC_PUBLIC_KEY = Buffer.from('06072a8648ce3d0201', 'hex'); // OID id-ecPublicKey

export function rsaSpki(modulus: Buffer, publicExponent: Buffer): Buffer {
  return seq(
    seq(RSA_ENCRYPTION),
    bitString(seq(unsignedInteger(modulus), unsignedInteger(publicExponent))),
  );
}

/** Named curves by their DER-encoded OID (the usual CKA_EC_PARAMS), with field size in bits. */
export const NAMED_CURVES: Record<string, { name: string; bits: number }> = {
  '06082a8648ce3d030107': { name: 'P-256', bits: 256 },
  '06052b81040022': { name: 'P-384', bits: 384 },
  '06052b81040023': { name: 'P-521', bits: 521 },
  '06052b8104000a': { name: 'secp256k1', bits: 256 },
};

export function curveBits(ecParams: Buffer): number {
  return NAMED_CURVES[ecParams.toString('hex')]?.bits ?? 0;
}

/**
 * CKA_EC_POINT is meant to be a DER OCTET STRING around the point, but some modules store the
 * raw point. Returns the raw point either way.
 */
export function rawEcPoint(ecPoint: Buffer, ecParams: Buffer): Buffer {
  const bits = curveBits(ecParams);
  const rawLength = bits ? 1 + 2 * Math.ceil(bits / 8) : -1;
  if (ecPoint.length === rawLength) return ecPoint;
  if (ecPoint[0] === 0x04 && ecPoint.length > 2) {
    const lenByte = ecPoint[1] as number;
    const lengthBytes = lenByte < 0x80 ? 0 : lenByte & 0x7f;
    let declared = lenByte < 0x80 ? lenByte : 0;
    for (let i = 0; i < lengthBytes; i++) declared = declared * 256 + (ecPoint[2 + i] ?? 0);
    const inner = ecPoint.subarray(2 + lengthBytes);
    if (declared === inner.length && (inner[0] === 0x04 || inner[0] === 0x02 || inner[0] === 0x03))
      return inner;
  }
  return ecPoint;
}

export function ecSpki(ecParams: Buffer, ecPoint: Buffer): Buffer {
  return seq(seq(EC_PUBLIC_KEY, ecParams), bitString(rawEcPoint(ecPoint, ecParams)));
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow. */
export const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
