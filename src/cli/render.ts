/** Small renderers shared by the command outputs. */
import { dirname } from 'node:path';
import type { CheckValue, KeyClass } from '../core/keys.js';
import { exposedDirectories } from '../io/files.js';
import type { Output } from '../io/output.js';

export function checkValueText(cv: CheckValue): string {
  switch (cv.method) {
    case 'none':
      return '-';
    case 'aes-ecb-zero':
      return `KCV ${cv.value}`;
    case 'hmac-sha256':
      return `HMAC ${cv.value}`;
    case 'token':
      return `token ${cv.value}`;
    case 'spki-sha256':
      // The SHA-256 of the public key (its SPKI DER): named for what it is.
      return `pubkey-sha256 ${cv.value}`;
  }
}

/** How a restored or copied key was proved, in plain words (--json keeps the method names). */
export function proofText(proof: string): string {
  switch (proof) {
    case 'check value + rewrap':
      return 'check value, same wrapped bytes';
    case 'rewrap':
      return 'same wrapped bytes';
    case 'check value + signature':
      return 'check value, test signature';
    case 'signature':
      return 'test signature';
    case 'none':
      return 'NOT PROVED';
    default:
      return proof;
  }
}

export function yesNo(value: boolean, cls: KeyClass): string {
  return cls === 'public' ? '-' : value ? 'yes' : 'no';
}

export { printable } from '../core/text.js';

/** "1 key", "2 keys". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * Warns, naming the directory, when share files were written where others on this host could
 * replace or remove them: a directory anyone may write to (even with the sticky bit, as /tmp has),
 * or below one anyone may write to without the sticky bit (docs/security-model.md).
 */
export function warnExposedShares(out: Output, paths: readonly string[]): void {
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    const exposed = exposedDirectories(dir);
    if (exposed.length === 0) continue;
    const why = exposed
      .map((d) =>
        d === dir
          ? `${d} is writable by anyone`
          : `${d} above it is writable by anyone and not sticky`,
      )
      .join('; ');
    out.warn(
      `share files were written to ${dir}, where others on this host can replace or remove them (${why}): move them to a directory only you can write to (chmod 700) before handing them out`,
    );
  }
}
