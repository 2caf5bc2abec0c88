/** What a token says it offers (C_GetMechanismList, C_GetMechanismInfo), and mechanisms by name. */
import { P, attempt, call, Refused, type Handle, type Pkcs11 } from './call.js';

/** CKM_AES_KEY_WRAP_KWP (PKCS#11 2.40): RFC 5649. pkcs11js has no constant for it. */
export const CKM_AES_KEY_WRAP_KWP = 0x210b;
/** CKM_RSA_AES_KEY_WRAP (PKCS#11 2.40). */
export const CKM_RSA_AES_KEY_WRAP = 0x1054;

const EXTRA_NAMES: Record<number, string> = {
  [CKM_AES_KEY_WRAP_KWP]: 'CKM_AES_KEY_WRAP_KWP',
  0x210c: 'CKM_AES_KEY_WRAP_PKCS7',
  [CKM_RSA_AES_KEY_WRAP]: 'CKM_RSA_AES_KEY_WRAP',
};
const names = new Map<number, string>();
for (const [name, value] of Object.entries(P)) {
  if (name.startsWith('CKM_') && typeof value === 'number' && !names.has(value))
    names.set(value, name);
}

export function mechanismName(code: number): string {
  return EXTRA_NAMES[code] ?? names.get(code) ?? `0x${code.toString(16)}`;
}

interface Where {
  lib: Pkcs11;
  slot: Handle;
  identity: { label: string };
}

/** The mechanism's flags, or null when the token does not list it. */
export function mechanismFlags(token: Where, mechanism: number): number | null {
  const info = attempt(
    `read what token "${token.identity.label}" offers (${mechanismName(mechanism)})`,
    [P.CKR_MECHANISM_INVALID],
    () => token.lib.C_GetMechanismInfo(token.slot, mechanism),
  );
  return info instanceof Refused ? null : info.flags;
}

/** True if the token lists the mechanism with the given flag (CKF_WRAP, CKF_UNWRAP, ...). */
export function offers(token: Where, mechanism: number, flag: number): boolean {
  const flags = mechanismFlags(token, mechanism);
  return flags !== null && (flags & flag) !== 0;
}

/**
 * What the token offers for moving keys, for a refusal to show: each mechanism it lists with the
 * wrap or unwrap flag, or, when there is none, how many mechanisms it lists and their names.
 */
export function wrappingOffer(token: Where): string {
  const list = call(`list the mechanisms of token "${token.identity.label}"`, () =>
    token.lib.C_GetMechanismList(token.slot),
  );
  const wrapping: string[] = [];
  for (const m of list) {
    const flags = mechanismFlags(token, m) ?? 0;
    const uses = [flags & P.CKF_WRAP ? 'wrap' : '', flags & P.CKF_UNWRAP ? 'unwrap' : ''].filter(
      Boolean,
    );
    if (uses.length) wrapping.push(`${mechanismName(m)} (${uses.join(', ')})`);
  }
  if (wrapping.length)
    return `token "${token.identity.label}" offers for wrapping keys: ${wrapping.join(', ')}`;
  return `token "${token.identity.label}" offers no mechanism that wraps or unwraps keys; its ${list.length} mechanisms are: ${list.map(mechanismName).join(', ') || 'none'}`;
}
