/** Small renderers shared by the command outputs. */
import type { CheckValue, KeyClass } from '../core/keys.js';

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
      return `SPKI ${cv.value}`;
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
