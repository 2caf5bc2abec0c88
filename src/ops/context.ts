/**
 * What every command runs with: the working directory, the configuration, the environment and
 * output.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { EMPTY_CONFIG, parseConfig, type Config, type PinSource } from '../core/config.js';
import { CustosError } from '../core/errors.js';
import { hasUnsafeText } from '../core/text.js';
import { readInputFile } from '../io/files.js';
import { readPin, type DirectPinSource } from '../io/pin.js';
import type { TokenIdentity } from '../core/bundle.js';
import type { Output } from '../io/output.js';

export interface Context {
  cwd: string;
  env: NodeJS.ProcessEnv;
  config: Config;
  out: Output;
  /** Custodian shares and identities that unlock a token whose profile says `pin: escrow:DIR`. */
  escrow?: { shares: string[]; identities: string[] };
  /**
   * Reassembles a PIN escrowed in DIR for a token (ops/escrowed-pin.ts). Given by whoever makes the
   * context: unlocking an escrow opens shares, which may open a custodian's token, so the HSM layer
   * cannot import it without a cycle.
   */
  unlockEscrowedPin?: (ctx: Context, dir: string, token: TokenIdentity) => Promise<string>;
  /**
   * A PIN reassembled by a ceremony, for the one token it unlocks (checked against the token
   * first).
   */
  pinOverride?: { hsm: string; pin: (token: TokenIdentity) => Promise<string> };
  /** The audit log every operation appends to (absolute path). */
  auditLog: string;
  /**
   * Who is acting, as given (--actor, CUSTOS_ACTOR, or the login name): recorded, not
   * authenticated.
   */
  actor: string;
}

export const AUDIT_LOG_ENV = 'CUSTOS_AUDIT_LOG';
export const ACTOR_ENV = 'CUSTOS_ACTOR';

/** --audit-log, else CUSTOS_AUDIT_LOG, else .custos/audit.jsonl in the working directory. */
export function auditLogPath(cwd: string, env: NodeJS.ProcessEnv, explicit?: string): string {
  return resolve(cwd, explicit ?? (env[AUDIT_LOG_ENV] || join('.custos', 'audit.jsonl')));
}

export function actorName(env: NodeJS.ProcessEnv, explicit?: string): string {
  const given = explicit ?? env[ACTOR_ENV];
  if (given !== undefined && given !== '') {
    // Recorded in the audit log and shown to custodians: plain text only.
    if (hasUnsafeText(given))
      throw new CustosError(
        'E_USAGE',
        'the actor name must be printable text (no control characters or line breaks)',
        'give --actor (or CUSTOS_ACTOR) as plain text',
      );
    return given;
  }
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function loadConfig(cwd: string, explicit?: string): Config {
  const path = explicit ? resolve(cwd, explicit) : resolve(cwd, 'custos.yaml');
  if (!explicit && !existsSync(path)) return EMPTY_CONFIG;
  const config = parseConfig(
    explicit ?? 'custos.yaml',
    readInputFile(path, 'configuration file').toString('utf8'),
  );
  // Paths in custos.yaml are relative to the file, not to wherever custos happens to run.
  const base = dirname(path);
  for (const profile of config.hsms.values()) {
    profile.module = resolve(base, profile.module);
    if (profile.pin.kind === 'file')
      profile.pin = { kind: 'file', path: resolve(base, profile.pin.path) };
    if (profile.pin.kind === 'escrow')
      profile.pin = { kind: 'escrow', dir: resolve(base, profile.pin.dir) };
    if (profile.soPin.kind === 'file')
      profile.soPin = { kind: 'file', path: resolve(base, profile.soPin.path) };
  }
  return config;
}

export interface HsmTarget {
  name: string;
  /** A profile's PKCS#11 module; none means the embedded store. */
  module?: string;
  /** A profile's library-parameters, for C_Initialize. */
  libraryParameters?: string;
  token: string;
  pinSource: PinSource;
  soPinSource: DirectPinSource;
}

export const EMBEDDED_PIN_ENV = 'CUSTOS_PIN';
export const EMBEDDED_SO_PIN_ENV = 'CUSTOS_SO_PIN';

export function hsmTarget(ctx: Context, name: string): HsmTarget {
  const profile = ctx.config.hsms.get(name);
  if (profile) {
    return {
      name,
      module: profile.module,
      libraryParameters: profile.libraryParameters,
      token: profile.token,
      pinSource: profile.pin,
      soPinSource: profile.soPin as DirectPinSource,
    };
  }
  const fromEnv = (variable: string): DirectPinSource =>
    ctx.env[variable] ? { kind: 'env', name: variable } : { kind: 'prompt' };
  return {
    name,
    token: name,
    pinSource: fromEnv(EMBEDDED_PIN_ENV),
    soPinSource: fromEnv(EMBEDDED_SO_PIN_ENV),
  };
}

export function pinReader(
  ctx: Context,
  target: HsmTarget,
): (token: TokenIdentity) => Promise<string> {
  if (ctx.pinOverride?.hsm === target.name) return ctx.pinOverride.pin;
  const source = target.pinSource;
  if (source.kind === 'escrow') {
    const unlock = ctx.unlockEscrowedPin;
    if (!unlock) {
      return async () => {
        throw new CustosError(
          'E_CONFIG',
          `the PIN of token "${target.token}" is escrowed in ${source.dir}, and this command cannot unlock an escrow`,
          'give the token a PIN source this command can read (env:, file: or prompt)',
        );
      };
    }
    return (token) => unlock(ctx, source.dir, token);
  }
  return () => readPin(source, `token "${target.token}"`, (m) => ctx.out.warn(m), ctx.env);
}

export function soPinReader(ctx: Context, target: HsmTarget): () => Promise<string> {
  const source = target.soPinSource;
  return () =>
    readPin(
      source,
      `the security officer of token "${target.token}"`,
      (m) => ctx.out.warn(m),
      ctx.env,
      'give the SO PIN non-interactively: so-pin: env:VARNAME or so-pin: file:PATH in custos.yaml (CUSTOS_SO_PIN for the embedded store)',
    );
}
