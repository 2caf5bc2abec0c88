/** What every command runs with: the working directory, the configuration, the environment and output. */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EMPTY_CONFIG, parseConfig, type Config, type PinSource } from '../core/config.js';
import { readInputFile } from '../io/files.js';
import { readPin } from '../io/pin.js';
import type { Output } from '../io/output.js';

export interface Context {
  cwd: string;
  env: NodeJS.ProcessEnv;
  config: Config;
  out: Output;
}

export function loadConfig(cwd: string, explicit?: string): Config {
  const path = explicit ? resolve(cwd, explicit) : resolve(cwd, 'custos.yaml');
  if (!explicit && !existsSync(path)) return EMPTY_CONFIG;
  const config = parseConfig(explicit ?? 'custos.yaml', readInputFile(path, 'configuration file').toString('utf8'));
  // Paths in custos.yaml are relative to the file, not to wherever custos happens to run.
  const base = dirname(path);
  for (const profile of config.hsms.values()) {
    profile.module = resolve(base, profile.module);
    if (profile.pin.kind === 'file') profile.pin = { kind: 'file', path: resolve(base, profile.pin.path) };
  }
  return config;
}

export interface HsmTarget {
  name: string;
  /** A profile's PKCS#11 module; none means the embedded store. */
  module?: string;
  token: string;
  pinSource: PinSource;
}

export const EMBEDDED_PIN_ENV = 'CUSTOS_PIN';

export function hsmTarget(ctx: Context, name: string): HsmTarget {
  const profile = ctx.config.hsms.get(name);
  if (profile) return { name, module: profile.module, token: profile.token, pinSource: profile.pin };
  const pinSource: PinSource = ctx.env[EMBEDDED_PIN_ENV] ? { kind: 'env', name: EMBEDDED_PIN_ENV } : { kind: 'prompt' };
  return { name, token: name, pinSource };
}

export function pinReader(ctx: Context, target: HsmTarget): () => Promise<string> {
  return () => readPin(target.pinSource, `token "${target.token}"`, (m) => ctx.out.warn(m), ctx.env);
}
