/** custos hsm init LABEL: create a token in the embedded SoftHSM2 store. */
import { CustosError } from '../core/errors.js';
import { initEmbeddedToken, embeddedStoreDir } from '../hsm/embedded.js';
import { askSecret } from '../io/terminal.js';
import { EMBEDDED_PIN_ENV, EMBEDDED_SO_PIN_ENV, type Context } from '../ops/context.js';


async function newPin(ctx: Context, envName: string, what: string): Promise<string> {
  const fromEnv = ctx.env[envName] || undefined; // set but empty means "ask", as everywhere else
  const pin = fromEnv ?? await askSecret(`new ${what}:`, `set ${envName} to give the ${what} without a terminal`);
  if (!fromEnv && (await askSecret(`repeat the ${what}:`, '')) !== pin) {
    throw new CustosError('E_USAGE', `the two ${what}s differ`, 'run the command again');
  }
  return pin;
}

export async function run(ctx: Context, label: string): Promise<void> {
  const soPin = await newPin(ctx, EMBEDDED_SO_PIN_ENV, 'security officer PIN');
  const userPin = await newPin(ctx, EMBEDDED_PIN_ENV, 'user PIN');
  const { serial } = initEmbeddedToken(ctx.cwd, label, soPin, userPin);
  ctx.out.data(`created token "${label}" (serial ${serial}) in ${embeddedStoreDir(ctx.cwd)}`);
}
