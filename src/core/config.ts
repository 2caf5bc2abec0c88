/** custos.yaml: named HSM profiles (module, token label, where the PIN comes from). */
import { YamlSource } from './yaml-source.js';

export type PinSource =
  | { kind: 'file'; path: string }
  | { kind: 'env'; name: string }
  | { kind: 'prompt' }
  /** Reassembled from a quorum of custodian shares in this directory (see `custos escrow-pin`). */
  | { kind: 'escrow'; dir: string };

export interface HsmProfile {
  name: string;
  module: string;
  token: string;
  pin: PinSource;
  /** The security officer's PIN, for `custos escrow-pin`; never from escrow. */
  soPin: Exclude<PinSource, { kind: 'escrow' }>;
  /**
   * Initialisation parameters for the module, given to C_Initialize as written (NSS softoken
   * needs them: `configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=`).
   */
  libraryParameters?: string;
}

export interface Config {
  hsms: Map<string, HsmProfile>;
}

export const EMPTY_CONFIG: Config = { hsms: new Map() };

const HINT = 'fix custos.yaml at the line named; docs/configuration.md describes it';

export function parsePinSource(text: string): PinSource | null {
  if (text === 'prompt') return { kind: 'prompt' };
  if (text.startsWith('file:') && text.length > 5) return { kind: 'file', path: text.slice(5) };
  if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return { kind: 'env', name: text.slice(4) };
  if (text.startsWith('escrow:') && text.length > 7) return { kind: 'escrow', dir: text.slice(7) };
  return null;
}

export function parseConfig(name: string, text: string): Config {
  const src = new YamlSource(name, text, 'E_CONFIG', HINT);
  if (src.root === null) return EMPTY_CONFIG;
  const top = src.map(src.root, 'custos.yaml', ['hsms']);
  const hsms = new Map<string, HsmProfile>();
  const hsmsNode = top.get('hsms');
  if (hsmsNode === undefined) return { hsms };
  const names = profileNames(hsmsNode);
  const profiles = src.map(hsmsNode, 'hsms', names);
  const empty = names.find((n) => !profiles.has(n));
  if (empty !== undefined)
    throw src.fail(src.lineOf(hsmsNode), `profile "${empty}" is empty: it needs module and token`);
  for (const [profileName, node] of profiles) {
    const what = `profile "${profileName}"`;
    const f = src.map(node, what, ['module', 'token', 'pin', 'so-pin', 'library-parameters']);
    const module = src.string(src.required(f, 'module', node, what), `${what} module`);
    const token = src.string(src.required(f, 'token', node, what), `${what} token`);
    const pinText = f.has('pin') ? src.string(f.get('pin'), `${what} pin`) : 'prompt';
    const pin = parsePinSource(pinText);
    if (!pin) {
      throw src.fail(
        src.lineOf(f.get('pin')),
        `${what} pin must be file:PATH, env:VARNAME, escrow:DIR or prompt (a PIN itself never goes in this file)`,
      );
    }
    const soPinText = f.has('so-pin') ? src.string(f.get('so-pin'), `${what} so-pin`) : 'prompt';
    const soPin = parsePinSource(soPinText);
    if (!soPin || soPin.kind === 'escrow') {
      throw src.fail(
        src.lineOf(f.get('so-pin')),
        `${what} so-pin must be file:PATH, env:VARNAME or prompt (a PIN itself never goes in this file)`,
      );
    }
    const libraryParameters = f.has('library-parameters')
      ? src.string(f.get('library-parameters'), `${what} library-parameters`)
      : undefined;
    if (
      libraryParameters !== undefined &&
      (libraryParameters.trim() === '' || /[\0\n\r]/.test(libraryParameters))
    ) {
      throw src.fail(
        src.lineOf(f.get('library-parameters')),
        `${what} library-parameters must be one line of text (the module's initialisation string), or left out`,
      );
    }
    hsms.set(profileName, {
      name: profileName,
      module,
      token,
      pin,
      soPin,
      ...(libraryParameters !== undefined ? { libraryParameters } : {}),
    });
  }
  return { hsms };
}

function profileNames(node: unknown): string[] {
  const items = (node as { items?: { key?: { value?: unknown } }[] }).items ?? [];
  return items.map((p) => String(p.key?.value ?? ''));
}
