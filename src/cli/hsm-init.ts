/** custos hsm init LABEL: create a token in the embedded SoftHSM2 store. */
import { initEmbeddedToken, embeddedStoreDir } from '../hsm/embedded.js';
import { askSecret, record } from '../io/terminal.js';
import { fitLines } from '../core/layout.js';
import { EMBEDDED_PIN_ENV, EMBEDDED_SO_PIN_ENV, type Context } from '../ops/context.js';

/**
 * SoftHSM2's PIN length limits (its token info's ulMinPinLen and ulMaxPinLen), checked at the first
 * entry.
 */
const PIN_LENGTH = { min: 4, max: 255 } as const;

function pinLengthProblem(what: string, pin: string): string | true {
  const n = Buffer.byteLength(pin, 'utf8');
  return n >= PIN_LENGTH.min && n <= PIN_LENGTH.max
    ? true
    : `the ${what} must have ${PIN_LENGTH.min} to ${PIN_LENGTH.max} characters (this one has ${n})`;
}

async function newPin(ctx: Context, envName: string, what: string): Promise<string> {
  const fromEnv = ctx.env[envName] || undefined; // set but empty means "ask", as everywhere else
  // A PIN from the environment is checked with the token's own limits before anything is created.
  if (fromEnv) return fromEnv;
  for (;;) {
    const pin = await askSecret(
      `new ${what}:`,
      `set ${envName} to give the ${what} without a terminal`,
      undefined,
      (answer) => pinLengthProblem(what, answer),
    );
    if ((await askSecret(`repeat the ${what}:`, '')) === pin) return pin;
    record('✘', `the two entries differ: type the new ${what} again`);
  }
}

export async function run(ctx: Context, label: string): Promise<void> {
  const soPin = await newPin(ctx, EMBEDDED_SO_PIN_ENV, 'security officer PIN');
  const userPin = await newPin(ctx, EMBEDDED_PIN_ENV, 'user PIN');
  const { serial } = initEmbeddedToken(ctx.cwd, label, soPin, userPin);
  ctx.out.data(
    fitLines(
      [`created token "${label}" (serial ${serial}) in ${embeddedStoreDir(ctx.cwd)}`],
      ctx.out.width,
      4,
    ),
  );
}
