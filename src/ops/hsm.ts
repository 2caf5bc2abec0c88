/** Opening the token a command names: a custos.yaml profile, or a token in the embedded store. */
import { CustosError } from '../core/errors.js';
import { embeddedLocation } from '../hsm/embedded.js';
import { Token, type TokenLocation } from '../hsm/token.js';
import { hsmTarget, pinReader, soPinReader, type Context, type HsmTarget } from './context.js';

export async function openHsm(ctx: Context, name: string, readWrite: boolean): Promise<Token> {
  const target = hsmTarget(ctx, name);
  try {
    return await Token.open(locate(ctx, target), pinReader(ctx, target), readWrite);
  } catch (e) {
    const source = target.pinSource;
    if (source.kind === 'escrow' && e instanceof CustosError && e.code === 'E_PIN_INCORRECT') {
      throw new CustosError('E_PIN_INCORRECT', `token "${target.token}" did not accept the PIN reassembled from the escrow in ${source.dir}`,
        'a later custos escrow-pin may have replaced that escrow: point the profile at the newest escrow directory (each wrong try counts towards locking the token)');
    }
    throw e;
  }
}

/** A read-write session logged in as the token's security officer. */
export async function openHsmAsSecurityOfficer(ctx: Context, name: string): Promise<Token> {
  const target = hsmTarget(ctx, name);
  return Token.open(locate(ctx, target), soPinReader(ctx, target), true, 'so');
}

function locate(ctx: Context, target: HsmTarget): TokenLocation {
  return target.module ? { module: target.module, token: target.token } : embeddedLocation(ctx.cwd, target.token);
}
