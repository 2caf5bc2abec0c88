/** Opening the token a command names: a custos.yaml profile, or a token in the embedded store. */
import type { TokenIdentity } from '../core/bundle.js';
import { CustosError } from '../core/errors.js';
import { embeddedLocation } from '../hsm/embedded.js';
import { lookForToken, Token, type TokenLocation } from '../hsm/token.js';
import { hsmTarget, pinReader, soPinReader, type Context, type HsmTarget } from './context.js';

export async function openHsm(ctx: Context, name: string, readWrite: boolean): Promise<Token> {
  const target = hsmTarget(ctx, name);
  try {
    return await Token.open(locate(ctx, target), pinReader(ctx, target), readWrite);
  } catch (e) {
    const source = target.pinSource;
    if (source.kind === 'escrow' && e instanceof CustosError && e.code === 'E_PIN_INCORRECT') {
      throw new CustosError(
        'E_PIN_INCORRECT',
        `token "${target.token}" did not accept the PIN reassembled from the escrow in ${source.dir} (CKR_PIN_INCORRECT)`,
        'a later custos escrow-pin may have replaced that escrow: point the profile at the newest escrow directory (each wrong try counts towards locking the token)',
      );
    }
    if (e instanceof CustosError && e.code === 'E_PIN_INCORRECT') {
      // Said as the person who gave the PIN knows it: typed, in a variable, or in a file.
      const where =
        source.kind === 'prompt'
          ? 'the PIN typed was wrong'
          : source.kind === 'env'
            ? `$${source.name} holds a wrong PIN`
            : source.kind === 'file'
              ? `the PIN file ${source.path} holds a wrong PIN`
              : '';
      if (where)
        throw new CustosError(
          'E_PIN_INCORRECT',
          e.message,
          `${where}: find the right PIN before trying again (each wrong PIN counts towards locking the token)`,
          e.details,
        );
    }
    throw e;
  }
}

/**
 * Finds each named token without opening it or asking for a PIN (E_TOKEN_NOT_FOUND if one is not
 * there, E_PIN_LOCKED if its user PIN is locked): before a command opens two, see lookForToken;
 * and before a ceremony's last question.
 */
export function lookForHsms(ctx: Context, names: string[]): void {
  for (const name of names) lookForHsm(ctx, name);
}

/** The named token, found and described without opening it or asking for a PIN. */
export function lookForHsm(ctx: Context, name: string): TokenIdentity {
  return lookForToken(locate(ctx, hsmTarget(ctx, name)));
}

/**
 * A read-write session allowed to replace the user PIN: logged in as the token's security officer,
 * or, on a module without one (NSS softoken, quirk `user-sets-own-pin`), as the user with the
 * current PIN from the profile's pin source.
 */
export async function openHsmAsSecurityOfficer(ctx: Context, name: string): Promise<Token> {
  const target = hsmTarget(ctx, name);
  return Token.openForPinChange(
    locate(ctx, target),
    soPinReader(ctx, target),
    pinReader(ctx, target),
  );
}

function locate(ctx: Context, target: HsmTarget): TokenLocation {
  return target.module
    ? {
        module: target.module,
        token: target.token,
        ...(target.libraryParameters !== undefined
          ? { libraryParameters: target.libraryParameters }
          : {}),
      }
    : embeddedLocation(ctx.cwd, target.token);
}
