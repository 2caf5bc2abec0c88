/**
 * A scratch SoftHSM token made for one run (a drill, a handover): its store lives in a fresh 0700
 * temporary directory with random PINs known only to this process, and is deleted afterwards,
 * also on failure.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { EMPTY_CONFIG } from '../core/config.js';
import { initEmbeddedToken } from '../hsm/embedded.js';
import { EMBEDDED_PIN_ENV, type Context } from './context.js';

export const SCRATCH_TOKEN = 'custos-scratch';

/**
 * Runs `use` with a context whose embedded store holds only the scratch token; reports whether it
 * was destroyed.
 */
export async function withScratchToken<T>(
  ctx: Context,
  use: (scratch: Context, token: string) => Promise<T>,
): Promise<{ result: T; destroyed: boolean }> {
  const dir = mkdtempSync(resolve(tmpdir(), 'custos-scratch-'));
  try {
    const pin = randomBytes(18).toString('base64url');
    initEmbeddedToken(dir, SCRATCH_TOKEN, randomBytes(18).toString('base64url'), pin);
    const scratch: Context = {
      ...ctx,
      cwd: dir,
      config: EMPTY_CONFIG,
      env: { ...ctx.env, [EMBEDDED_PIN_ENV]: pin },
      pinOverride: undefined,
    };
    const result = await use(scratch, SCRATCH_TOKEN);
    rmSync(dir, { recursive: true, force: true });
    return { result, destroyed: !existsSync(dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
