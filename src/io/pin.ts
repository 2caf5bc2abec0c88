/** PINs come from a file, an environment variable or a prompt; never from the command line. */
import { statSync } from 'node:fs';
import { CustosError } from '../core/errors.js';
import type { PinSource } from '../core/config.js';
import { readInputFile } from './files.js';
import { askSecret } from './terminal.js';

export type DirectPinSource = Exclude<PinSource, { kind: 'escrow' }>;

const USER_PIN_HINT =
  'give the PIN non-interactively: pin: env:VARNAME or pin: file:PATH in custos.yaml (CUSTOS_PIN for the embedded store)';

export async function readPin(
  source: DirectPinSource,
  what: string,
  warn: (message: string) => void,
  env: NodeJS.ProcessEnv = process.env,
  noTerminalHint = USER_PIN_HINT,
): Promise<string> {
  switch (source.kind) {
    case 'env': {
      const v = env[source.name];
      if (v === undefined || v === '') {
        throw new CustosError(
          'E_PIN_SOURCE',
          `the PIN of ${what} should be in $${source.name}, which is not set`,
          `export ${source.name}, or change the pin source`,
        );
      }
      return v;
    }
    case 'file': {
      const text = readInputFile(source.path, `PIN file of ${what}`)
        .toString('utf8')
        .replace(/\r?\n$/, '');
      if (text === '')
        throw new CustosError(
          'E_PIN_SOURCE',
          `the PIN file ${source.path} of ${what} is empty`,
          'write the PIN into it',
        );
      if (statSync(source.path).mode & 0o077) {
        warn(`PIN file ${source.path} can be read by other users: chmod 600 it`);
      }
      return text;
    }
    case 'prompt':
      return askSecret(`PIN for ${what}:`, noTerminalHint);
  }
}
