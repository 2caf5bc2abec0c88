/** Opening the token a command names: a custos.yaml profile, or a token in the embedded store. */
import { embeddedLocation } from '../hsm/embedded.js';
import { Token } from '../hsm/token.js';
import { hsmTarget, pinReader, type Context } from './context.js';

export async function openHsm(ctx: Context, name: string, readWrite: boolean): Promise<Token> {
  const target = hsmTarget(ctx, name);
  const location = target.module ? { module: target.module, token: target.token } : embeddedLocation(ctx.cwd, target.token);
  return Token.open(location, pinReader(ctx, target), readWrite);
}
